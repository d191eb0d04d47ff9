"""memberships: each person's department and team over time

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10 10:00:00

``memberships`` holds intervals ``[valid_from, valid_to)`` observed by people syncs or written
by the admin in the people file. Every person already known is given one observed interval
from the beginning of time holding their department and team now: what tasuki knew before.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEGINNING = datetime(1900, 1, 1)
"""Naive UTC, as the store keeps datetimes (tasuki.membership.BEGINNING)."""


def upgrade() -> None:
    memberships = op.create_table(
        "memberships",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("system", sa.String(length=20), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("department", sa.String(length=4), nullable=True),
        sa.Column("team", sa.String(length=80), nullable=True),
        sa.Column("valid_from", sa.DateTime(), nullable=False),
        sa.Column("valid_to", sa.DateTime(), nullable=True),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("observed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_memberships")),
        sa.UniqueConstraint(
            "system", "user_id", "source", "valid_from", name=op.f("uq_memberships_system")
        ),
    )
    people = sa.table(
        "people",
        sa.column("system", sa.String),
        sa.column("user_id", sa.String),
        sa.column("department", sa.String),
        sa.column("team", sa.String),
    )
    rows = op.get_bind().execute(
        sa.select(people.c.system, people.c.user_id, people.c.department, people.c.team)
    )
    now = datetime.now(UTC).replace(tzinfo=None)  # the store keeps naive UTC
    op.bulk_insert(
        memberships,
        [
            {
                "system": system,
                "user_id": user_id,
                "department": department,
                "team": team,
                "valid_from": BEGINNING,
                "valid_to": None,
                "source": "observed",
                "observed_at": now,
            }
            for system, user_id, department, team in rows
        ],
    )


def downgrade() -> None:
    op.drop_table("memberships")
