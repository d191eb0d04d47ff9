"""The match-key index: the keys of every live snapshot and of every recording, in the store.

``record_keys`` holds the keys (:mod:`tasuki.recordings.keys`) of each live CRM snapshot and is
written with the snapshot, in the sync's transaction (:func:`track_snapshots`, called by
:func:`tasuki.sync.apply_records`), which also marks the keys a re-match pass must look at
(:mod:`tasuki.recordings.marks`). ``recording_keys`` holds each recording's keys and is written
when the recording is kept (:func:`track_recording`). Migration 0014 filled both for what the
store held before.

Two syncs of one record at once can leave the keys of both in the index until the record's next
sync: the index may say too much, never too little, so a reader checks a record found through
it against the record's snapshot (:class:`tasuki.recordings.matching.IndexedDirectory` does).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tasuki.recordings import marks
from tasuki.recordings.capture import Kind
from tasuki.recordings.keys import (
    MARKED_KINDS,
    Key,
    KeyKind,
    match_fields_differ,
    record_keys,
    recording_keys,
)
from tasuki.store.models import Recording, RecordingKey, RecordKey
from tasuki.store.upsert import insert_ignore

CHUNK = 500
"""Values per ``IN (…)`` list."""


def _chunks(values: Collection[str]) -> Iterable[list[str]]:
    ordered = sorted(values)
    for start in range(0, len(ordered), CHUNK):
        yield ordered[start : start + CHUNK]


def track_snapshots(
    session: Session,
    system: str,
    obj: str,
    written: Mapping[str, Mapping[str, Any] | None],
    previous: Mapping[str, Mapping[str, Any] | None],
) -> int:
    """Bring the index up to date for the snapshots just ``written`` (record id → live fields,
    None for a deleted record) of logical object ``obj``, and mark the keys of every record
    that appeared, went or changed a field matching reads (``previous``: the live fields before,
    a missing id for none). In the caller's transaction; returns the keys marked."""
    old: dict[str, set[Key]] = defaultdict(set)
    for chunk in _chunks(written):
        rows = session.execute(
            select(RecordKey.record_id, RecordKey.kind, RecordKey.value).where(
                RecordKey.system == system,
                RecordKey.object == obj,
                RecordKey.record_id.in_(chunk),
            )
        )
        for rid, kind, value in rows:
            old[rid].add((kind, value))
    rewritten: list[str] = []
    rows_in: list[dict[str, str]] = []
    marked: set[Key] = set()
    for rid, fields in written.items():
        new = record_keys(obj, fields) if fields is not None else set()
        was = old.get(rid, set())
        if new != was:
            rewritten.append(rid)
            rows_in.extend(
                {"system": system, "object": obj, "record_id": rid, "kind": k, "value": v}
                for k, v in sorted(new)
            )
        if new != was or match_fields_differ(previous.get(rid), fields):
            marked.update(k for k in was | new if k[0] in MARKED_KINDS)
    for chunk in _chunks(rewritten):
        session.execute(
            delete(RecordKey).where(
                RecordKey.system == system,
                RecordKey.object == obj,
                RecordKey.record_id.in_(chunk),
            )
        )
    insert_ignore(session, RecordKey, rows_in, ["system", "object", "record_id", "kind", "value"])
    return marks.mark(session, system, marked)


def track_recording(session: Session, row: Recording) -> None:
    """Index the keys of a recording whose facts changed, and mark it for the next pass."""
    keys = recording_keys(row.kind, row.phones, row.emails, row.host_email, row.user_id)
    session.execute(delete(RecordingKey).where(RecordingKey.recording_id == row.id))
    insert_ignore(
        session,
        RecordingKey,
        [{"recording_id": row.id, "kind": k, "value": v} for k, v in sorted(keys)],
        ["recording_id", "kind", "value"],
    )
    marks.mark_recording(session, row.id)


def records_with(
    session: Session, system: str, kind: str, values: Collection[str], objects: Collection[str]
) -> set[tuple[str, str]]:
    """The (object, record id) of the records of ``objects`` with a key of ``kind`` among
    ``values``."""
    found: set[tuple[str, str]] = set()
    if not objects:
        return found
    for chunk in _chunks(values):
        rows = session.execute(
            select(RecordKey.object, RecordKey.record_id).where(
                RecordKey.system == system,
                RecordKey.kind == kind,
                RecordKey.value.in_(chunk),
                RecordKey.object.in_(sorted(objects)),
            )
        )
        found.update((o, r) for o, r in rows)
    return found


def key_values(
    session: Session, system: str, obj: str, record_ids: Collection[str], kind: str
) -> set[str]:
    """The values of the ``kind`` keys of records ``record_ids`` of ``obj``."""
    found: set[str] = set()
    for chunk in _chunks(record_ids):
        found.update(
            session.scalars(
                select(RecordKey.value).where(
                    RecordKey.system == system,
                    RecordKey.object == obj,
                    RecordKey.kind == kind,
                    RecordKey.record_id.in_(chunk),
                )
            )
        )
    return found


def recordings_with(session: Session, keys: Iterable[Key], statuses: Collection[str]) -> set[int]:
    """The ids of the recordings in ``statuses`` with one of ``keys``."""
    by_kind: dict[str, set[str]] = defaultdict(set)
    for kind, value in keys:
        by_kind[kind].add(value)
    found: set[int] = set()
    for kind, values in sorted(by_kind.items()):
        for chunk in _chunks(values):
            found.update(
                session.scalars(
                    select(RecordingKey.recording_id)
                    .join(Recording, Recording.id == RecordingKey.recording_id)
                    .where(
                        RecordingKey.kind == kind,
                        RecordingKey.value.in_(chunk),
                        Recording.status.in_(sorted(statuses)),
                    )
                )
            )
    return found


def meetings_hosted(
    session: Session, host_email: str, start: datetime, end: datetime, statuses: Collection[str]
) -> set[int]:
    """The ids of the meetings in ``statuses`` hosted by ``host_email`` that started in
    [``start``, ``end``)."""
    return set(
        session.scalars(
            select(RecordingKey.recording_id)
            .join(Recording, Recording.id == RecordingKey.recording_id)
            .where(
                RecordingKey.kind == KeyKind.HOST.value,
                RecordingKey.value == host_email,
                Recording.status.in_(sorted(statuses)),
                Recording.kind == Kind.MEETING.value,
                Recording.at >= start,
                Recording.at < end,
            )
        )
    )
