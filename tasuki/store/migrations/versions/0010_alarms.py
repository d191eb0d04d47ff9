"""alarms: partial-optimisation alarms raised per period, subject and KPI pair

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 20:30:00

``alarms`` holds one row per (system, pair, subject, period) for which a department's own KPI
improved period over period while the neighbour KPI it feeds got worse (see
:mod:`tasuki.alarms`). The row carries both periods' figures and the thresholds crossed, so the
console and notifications can explain it without recomputing.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alarms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("system", sa.String(length=20), nullable=False),
        sa.Column("pair_id", sa.String(length=80), nullable=False),
        sa.Column("pair_label", sa.String(length=200), nullable=False),
        sa.Column("department", sa.String(length=4), nullable=False),
        sa.Column("subject_kind", sa.String(length=12), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("previous_period", sa.String(length=16), nullable=False),
        sa.Column("own_kpi_id", sa.String(length=80), nullable=False),
        sa.Column("own_label", sa.String(length=200), nullable=False),
        sa.Column("own_is_ratio", sa.Boolean(), nullable=False),
        sa.Column("own_previous", sa.Float(), nullable=False),
        sa.Column("own_current", sa.Float(), nullable=False),
        sa.Column("own_threshold", sa.Float(), nullable=False),
        sa.Column("neighbour_kpi_id", sa.String(length=80), nullable=False),
        sa.Column("neighbour_label", sa.String(length=200), nullable=False),
        sa.Column("neighbour_is_ratio", sa.Boolean(), nullable=False),
        sa.Column("neighbour_previous", sa.Float(), nullable=False),
        sa.Column("neighbour_current", sa.Float(), nullable=False),
        sa.Column("neighbour_threshold", sa.Float(), nullable=False),
        sa.Column("raised_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarms")),
        sa.UniqueConstraint(
            "system",
            "pair_id",
            "subject_kind",
            "subject_id",
            "period",
            name=op.f("uq_alarms_system"),
        ),
    )
    op.create_index("ix_alarms_period", "alarms", ["period", "subject_kind"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_alarms_period", table_name="alarms")
    op.drop_table("alarms")
