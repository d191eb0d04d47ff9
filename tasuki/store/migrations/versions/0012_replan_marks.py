"""replan marks: incremental write-back planning; handoffs found by record

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 21:00:00

``replan_marks`` holds the records whose write-back values may have changed since the last
pass planned them (:mod:`tasuki.replan`). ``ix_handoffs_record`` finds a record's handoffs
without scanning them all (planning and judging a few records among a million). No row is
seeded: with no digest row, the first pass after this migration plans everything.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "replan_marks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("system", sa.String(length=20), nullable=False),
        sa.Column("object", sa.String(length=80), nullable=False),
        sa.Column("record_id", sa.String(length=255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("marked_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_replan_marks")),
        sa.UniqueConstraint("system", "object", "record_id", name=op.f("uq_replan_marks_system")),
    )
    op.create_index(
        "ix_handoffs_record", "handoffs", ["system", "object", "record_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_handoffs_record", table_name="handoffs")
    op.drop_table("replan_marks")
