"""console users: who may sign in to the Sales Ops console, and one-time sign-in links

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 21:00:00

``console_users`` holds local accounts (scrypt password hashes) and the people who sign in
through OpenID Connect (matched by e-mail), each with a role: viewer or ops.
``console_login_links`` keeps the SHA-256 of one-time sign-in tokens (``tasuki serve --demo``).
``violations`` gets an index on ``verdict_id``: the console joins a period's verdicts to their
violations (most common violations, the rule filter).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "console_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.Column("password_hash", sa.String(length=300), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_login_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_users")),
        sa.UniqueConstraint("username", name=op.f("uq_console_users_username")),
    )
    op.create_table(
        "console_login_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["console_users.id"],
            name=op.f("fk_console_login_links_user_id_console_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_login_links")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_console_login_links_token_sha256")),
    )

    op.create_index(op.f("ix_violations_verdict_id"), "violations", ["verdict_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_violations_verdict_id"), table_name="violations")
    op.drop_table("console_login_links")
    op.drop_table("console_users")
