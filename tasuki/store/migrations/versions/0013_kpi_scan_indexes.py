"""KPI scan indexes: a boundary's crossings and their verdicts read from indexes alone

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 01:00:00

The KPI computation reads each boundary's handoffs of a period once (:mod:`tasuki.kpis.crossings`):
``ix_handoffs_crossings`` holds every column that scan, the cohort windows of ``reached`` and
their probes read, in the order they are searched (system, boundary, time), so a month of a
million-record store is one range of the index instead of a row fetched from the table per
handoff. ``ix_verdicts_outcome`` answers "did this handoff pass" (pass rates, ``verdict:``
conditions) from the index too. Both are plain B-tree indexes on SQLite and PostgreSQL (on
PostgreSQL an index-only scan once vacuum has marked the table's pages visible).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CROSSINGS = [
    "system",
    "boundary",
    "handed_at",
    "record_id",
    "id",
    "sender_id",
    "receiver_id",
    "sender_department",
    "receiver_department",
]


def upgrade() -> None:
    op.create_index("ix_handoffs_crossings", "handoffs", CROSSINGS, unique=False)
    op.create_index("ix_verdicts_outcome", "verdicts", ["handoff_id", "outcome"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_verdicts_outcome", table_name="verdicts")
    op.drop_index("ix_handoffs_crossings", table_name="handoffs")
