"""notifications: the ledger of messages sent or owed, and Slack users by e-mail

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-09 10:00:00

``notification_ledger`` holds one row per message tasuki owes a recipient, claimed before the
send and completed with its result, so no message goes out twice. ``slack_users`` caches
``users.lookupByEmail`` answers.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notification_ledger",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.String(length=80), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("occurrence", sa.String(length=120), nullable=False),
        sa.Column("recipient", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("medium", sa.String(length=10), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_ledger")),
        sa.UniqueConstraint(
            "rule_id",
            "subject",
            "occurrence",
            "recipient",
            name=op.f("uq_notification_ledger_rule_id"),
        ),
    )
    op.create_index(
        "ix_notification_ledger_status",
        "notification_ledger",
        ["status", "claimed_at"],
        unique=False,
    )
    op.create_table(
        "slack_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=200), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=True),
        sa.Column("looked_up_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slack_users")),
        sa.UniqueConstraint("email", name=op.f("uq_slack_users_email")),
    )


def downgrade() -> None:
    op.drop_table("slack_users")
    op.drop_index("ix_notification_ledger_status", table_name="notification_ledger")
    op.drop_table("notification_ledger")
