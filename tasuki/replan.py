"""Incremental write-back planning: the records whose verdict fields may have to be written.

Planning a write-back used to read the verdict of every handed-over record (O(all handoffs)) to
find the few that differ from the ledger. Only two things change what a record should carry or
what the CRM holds, and both mark the record here, in the same transaction as the change:

    judging        a verdict judged anew (:func:`tasuki.judging.judge_handoffs`)
    sync           a field tasuki wrote changed in the CRM (``tasuki.sync``, stale ledger)

A write-back pass plans the marked records only (:func:`pending`), writes what differs, and
then clears the marks of the records that now need nothing more (:func:`clear`: re-planned,
and cleared only at the version it read, so a record marked again meanwhile stays marked). A
record the CRM refused, or whose write was deferred, keeps its mark and is planned again next
time, as the full plan would have done.

The full plan remains the reference, and runs whenever the marks cannot be trusted to cover
everything: the first pass on a store (nothing was ever marked), and after the write-back
settings change (other fields, other mapping: :func:`settings_digest`), so that a marked plan is
always the full plan restricted to what can differ. ``tests/test_replan.py`` holds them equal.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.orm import Session

from tasuki.settings import Config
from tasuki.store.models import ReplanMark, utcnow
from tasuki.store.upsert import mark_again

FULL_PLAN = "*"
"""The ``object`` of the row keeping the digest of the settings the last full plan ran under."""


@dataclass(frozen=True)
class Mark:
    """One marked record as read: enough to clear exactly this version of the mark."""

    id: int
    object: str
    record_id: str
    version: int


def mark(session: Session, system: str, records: Iterable[tuple[str, str]]) -> int:
    """Mark (logical object, record id) pairs for the next write-back plan, in the caller's
    transaction; a record marked already is marked again (its version grows)."""
    now = utcnow()
    rows = [
        {"system": system, "object": o, "record_id": r, "version": 1, "marked_at": now}
        for o, r in dict.fromkeys(records)
    ]
    return mark_again(session, ReplanMark, rows, ["system", "object", "record_id"])


def settings_digest(config: Config) -> str:
    """A digest of what decides which CRM fields verdicts are written to: the verdict fields and
    the mapping of every object. When it changes, the next pass plans everything."""
    verdict = config.writeback.verdict
    shape = {
        "crm": config.crm,
        "verdict": [verdict.outcome, verdict.score, verdict.violations],
        "mapping": {
            obj: m.model_dump(mode="json")
            for obj, systems in sorted(config.objects.items())
            if (m := systems.get(config.crm)) is not None
        },
    }
    return hashlib.sha256(json.dumps(shape, sort_keys=True, default=str).encode()).hexdigest()


def pending(session: Session, system: str, digest: str) -> list[Mark] | None:
    """The marked records of ``system``, or None when a full plan is due (never planned fully
    under the settings of ``digest``)."""
    rows = session.scalars(select(ReplanMark).where(ReplanMark.system == system)).all()
    if not any(r.object == FULL_PLAN and r.record_id == digest for r in rows):
        return None
    return [Mark(r.id, r.object, r.record_id, r.version) for r in rows if r.object != FULL_PLAN]


def planned_fully(session: Session, system: str, digest: str) -> None:
    """Record that a full plan ran under ``digest``: from now on, marks are what may differ.
    Marks older than the full plan's start are left for :func:`clear` to settle."""
    session.execute(
        delete(ReplanMark).where(ReplanMark.system == system, ReplanMark.object == FULL_PLAN)
    )
    mark(session, system, [(FULL_PLAN, digest)])


def clear(session: Session, marks: Sequence[Mark], still_differ: Iterable[tuple[str, str]]) -> int:
    """Delete ``marks`` except those of records that ``still_differ``, each only at the version
    read (a record marked again since stays marked). Returns how many were cleared."""
    keep = set(still_differ)
    done = [(m.id, m.version) for m in marks if (m.object, m.record_id) not in keep]
    cleared = 0
    for start in range(0, len(done), 200):
        chunk = done[start : start + 200]
        result = session.execute(
            delete(ReplanMark).where(
                or_(*(and_(ReplanMark.id == i, ReplanMark.version == v) for i, v in chunk))
            )
        )
        cleared += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return cleared


def all_marks(session: Session, system: str) -> list[Mark]:
    """Every record mark of ``system`` (for tests and the full plan's clean-up)."""
    rows = session.scalars(
        select(ReplanMark).where(ReplanMark.system == system, ReplanMark.object != FULL_PLAN)
    )
    return [Mark(r.id, r.object, r.record_id, r.version) for r in rows]
