"""job runs: the outcome of every job, kept in the store

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08 10:00:00

RQ keeps no job results (``result_ttl`` 0); ``job_runs`` holds one row per execution (what
ran, when, how long, its figures or its error) for ``tasuki runs`` and the metrics.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("func", sa.String(length=60), nullable=False),
        sa.Column("job_id", sa.String(length=120), nullable=True),
        sa.Column("queue", sa.String(length=80), nullable=True),
        sa.Column("worker", sa.String(length=120), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.Column("args", sa.JSON(), nullable=True),
        sa.Column("figures", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_runs")),
    )
    op.create_index("ix_job_runs_started_at", "job_runs", ["started_at"], unique=False)
    op.create_index("ix_job_runs_func_started_at", "job_runs", ["func", "started_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_job_runs_func_started_at", table_name="job_runs")
    op.drop_index("ix_job_runs_started_at", table_name="job_runs")
    op.drop_table("job_runs")
