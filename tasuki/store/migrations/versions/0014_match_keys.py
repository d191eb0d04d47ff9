"""match keys: re-matching recordings in O(changed)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-12 10:00:00

``record_keys`` and ``recording_keys`` index the match keys (E.164 phones, emails, domains,
hosts, a deal's lead, account and owner) of every live snapshot and every recording
(:mod:`tasuki.recordings.keys`, :mod:`tasuki.recordings.index`); ``rematch_marks`` holds the keys
and recordings changed since the last re-match pass (:mod:`tasuki.recordings.marks`). Both
indexes are filled here from what the store holds, with the key functions of
``tasuki.recordings.keys`` (a later change to them needs a migration filling them again). No
mark is seeded: with no digest row, the first pass after this migration is full.
"""

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from tasuki.recordings.keys import record_keys, recording_keys

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000
"""Rows read and written at a time while filling the indexes."""


def upgrade() -> None:
    record_keys_table = op.create_table(
        "record_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("system", sa.String(length=20), nullable=False),
        sa.Column("object", sa.String(length=40), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_record_keys")),
        sa.UniqueConstraint(
            "system", "object", "record_id", "kind", "value", name=op.f("uq_record_keys_system")
        ),
    )
    op.create_index("ix_record_keys_value", "record_keys", ["system", "kind", "value"])
    recording_keys_table = op.create_table(
        "recording_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recording_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["recording_id"],
            ["recordings.id"],
            name=op.f("fk_recording_keys_recording_id_recordings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recording_keys")),
        sa.UniqueConstraint(
            "recording_id", "kind", "value", name=op.f("uq_recording_keys_recording_id")
        ),
    )
    op.create_index("ix_recording_keys_value", "recording_keys", ["kind", "value"])
    op.create_table(
        "rematch_marks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("system", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("marked_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rematch_marks")),
        sa.UniqueConstraint("system", "kind", "value", name=op.f("uq_rematch_marks_system")),
    )
    _fill(record_keys_table, _record_rows())
    _fill(recording_keys_table, _recording_rows())


def _fill(table: sa.Table, rows: Iterator[dict[str, Any]]) -> None:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH:
            op.bulk_insert(table, batch)
            batch = []
    if batch:
        op.bulk_insert(table, batch)


def _record_rows() -> Iterator[dict[str, Any]]:
    records = sa.table(
        "records",
        sa.column("system", sa.String),
        sa.column("object", sa.String),
        sa.column("record_id", sa.String),
        sa.column("fields", sa.JSON),
        sa.column("deleted", sa.Boolean),
    )
    result = op.get_bind().execute(
        sa.select(records.c.system, records.c.object, records.c.record_id, records.c.fields)
        .where(records.c.deleted.is_(False))
        .order_by(records.c.system, records.c.object, records.c.record_id),
        execution_options={"yield_per": BATCH},
    )
    for system, obj, rid, fields in result:
        for kind, value in sorted(record_keys(obj, fields or {})):
            yield {"system": system, "object": obj, "record_id": rid, "kind": kind, "value": value}


def _recording_rows() -> Iterator[dict[str, Any]]:
    recordings = sa.table(
        "recordings",
        sa.column("id", sa.Integer),
        sa.column("kind", sa.String),
        sa.column("phones", sa.JSON),
        sa.column("emails", sa.JSON),
        sa.column("host_email", sa.String),
        sa.column("user_id", sa.String),
    )
    result = op.get_bind().execute(
        sa.select(
            recordings.c.id,
            recordings.c.kind,
            recordings.c.phones,
            recordings.c.emails,
            recordings.c.host_email,
            recordings.c.user_id,
        ).order_by(recordings.c.id),
        execution_options={"yield_per": BATCH},
    )
    for rid, kind, phones, emails, host, user in result:
        for k, v in sorted(
            recording_keys(kind, phones or [], emails or [], host or "", user or "")
        ):
            yield {"recording_id": rid, "kind": k, "value": v}


def downgrade() -> None:
    op.drop_table("rematch_marks")
    op.drop_index("ix_recording_keys_value", table_name="recording_keys")
    op.drop_table("recording_keys")
    op.drop_index("ix_record_keys_value", table_name="record_keys")
    op.drop_table("record_keys")
