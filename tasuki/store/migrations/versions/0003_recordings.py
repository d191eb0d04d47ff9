"""recordings: call and meeting recordings and the CRM records they are linked to

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-28 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import tasuki.store.models

revision: str = "0003"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "recordings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("at", tasuki.store.models.UTCDateTime(), nullable=True),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("phones", sa.JSON(), nullable=False),
        sa.Column("emails", sa.JSON(), nullable=False),
        sa.Column("host_email", sa.String(length=200), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("system", sa.String(length=20), nullable=True),
        sa.Column("matched_object", sa.String(length=40), nullable=True),
        sa.Column("matched_record_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("received_at", tasuki.store.models.UTCDateTime(), nullable=False),
        sa.Column("matched_at", tasuki.store.models.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recordings")),
        sa.UniqueConstraint("provider", "external_id", name=op.f("uq_recordings_provider")),
    )
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.create_index("ix_recordings_status", ["status"], unique=False)
        batch_op.create_index(
            "ix_recordings_link",
            ["system", "matched_object", "matched_record_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("recordings", schema=None) as batch_op:
        batch_op.drop_index("ix_recordings_link")
        batch_op.drop_index("ix_recordings_status")
    op.drop_table("recordings")
