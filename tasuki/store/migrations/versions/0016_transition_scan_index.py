"""KPI scan index of field changes: a field's changes of a period read from one index range

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 04:00:00

A KPI counting a field's changes (``events: {transitions: deal.stage}``) reads the changes of one
object's field in a run of periods (:mod:`tasuki.kpis.crossings`); the only index on
``transitions`` was by record, so every such scan read the whole table. ``ix_transitions_changes``
holds the changes in the order they are searched (system, object, field, time) with the columns
the scan reads (record, id, author), so a period is one range of the index. ``new`` (the value
changed to, for ``to:``) stays in the table: it is free text, too long for an index entry.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANGES = ["system", "object", "field", "at", "record_id", "id", "by"]


def upgrade() -> None:
    op.create_index("ix_transitions_changes", "transitions", CHANGES, unique=False)


def downgrade() -> None:
    op.drop_index("ix_transitions_changes", table_name="transitions")
