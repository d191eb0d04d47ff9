"""kpis: a person's team, so KPI figures roll up per team

Revision ID: 0002
Revises: 0003
Create Date: 2026-11-28 18:00:00

Named 0002 as planned, but chained after 0003 (recordings), which was merged first: one head.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.add_column(sa.Column("team", sa.String(length=80), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.drop_column("team")
