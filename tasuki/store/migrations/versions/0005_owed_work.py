"""owed work and write intents: the store's record of unfinished work

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 18:00:00

``owed_work`` holds what was accepted and not yet done (syncs a webhook asked for, handoffs to
detect and judge, KPI and write-back passes, recordings to keep), so a lost Redis or a killed
worker loses nothing. ``write_intents`` holds values about to be sent to the CRM, so a crash
between the call and the ledger is settled by reading back, not by writing again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "owed_work",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("object", sa.String(length=80), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("owed_at", sa.DateTime(), nullable=False),
        sa.Column("job_id", sa.String(length=120), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_owed_work")),
        sa.UniqueConstraint("kind", "object", "record_id", name=op.f("uq_owed_work_kind")),
    )
    op.create_index("ix_owed_work_owed_at", "owed_work", ["owed_at"], unique=False)
    op.create_table(
        "write_intents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("system", sa.String(length=20), nullable=False),
        sa.Column("object", sa.String(length=80), nullable=False),
        sa.Column("record_id", sa.String(length=255), nullable=False),
        sa.Column("field", sa.String(length=120), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("key_field", sa.String(length=120), nullable=True),
        sa.Column("intended_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_write_intents")),
        sa.UniqueConstraint(
            "system", "object", "record_id", "field", name=op.f("uq_write_intents_system")
        ),
    )


def downgrade() -> None:
    op.drop_table("write_intents")
    op.drop_index("ix_owed_work_owed_at", table_name="owed_work")
    op.drop_table("owed_work")
