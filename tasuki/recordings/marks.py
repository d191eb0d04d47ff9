"""Re-match marks: what changed since a re-match pass last looked, kept in the store.

Two things can change a pending recording's link, and both mark it here, in the same
transaction as the change:

    sync            a record's match keys (:mod:`tasuki.recordings.keys`), when it appears, goes
                    or changes a field matching reads (:mod:`tasuki.recordings.index`)
    recording kept  the recording itself (kind ``recording``, no system: a recording belongs
                    to no CRM until it is linked), when its facts change

A re-match pass reads the marks (:func:`pending`), tries the recordings they lead to, and clears
what it read at the version it read (:func:`clear`): a key marked again meanwhile stays marked.
A full pass is the reference and runs when the marks cannot be trusted to cover everything: on
a store never passed fully, and after the matching settings change (:func:`pending` returns
None when the digest row of the last full pass is missing or differs).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.orm import Session

from tasuki.store.models import RematchMark, utcnow
from tasuki.store.upsert import mark_again

FULL_PASS = "*"
"""The ``kind`` of the row keeping the digest of the settings the last full pass ran under."""
RECORDING = "recording"
"""The ``kind`` of a recording's own mark (its value the recording's id)."""
NO_SYSTEM = ""
"""The ``system`` of a recording's mark."""


@dataclass(frozen=True)
class Mark:
    """One mark as read: enough to clear exactly this version of it."""

    id: int
    kind: str
    value: str
    version: int


def mark(session: Session, system: str, keys: Iterable[tuple[str, str]]) -> int:
    """Mark (kind, value) keys of ``system`` for the next pass, in the caller's transaction; a
    key marked already is marked again (its version grows). Returns the keys written."""
    now = utcnow()
    rows = [
        {"system": system, "kind": k, "value": v, "version": 1, "marked_at": now}
        for k, v in sorted(set(keys))
    ]
    return mark_again(session, RematchMark, rows, ["system", "kind", "value"])


def mark_recording(session: Session, recording_id: int) -> None:
    """Mark one recording whose facts changed: the next pass tries it whatever else changed."""
    mark(session, NO_SYSTEM, [(RECORDING, str(recording_id))])


def pending(session: Session, system: str, digest: str) -> list[Mark] | None:
    """The marks of ``system`` and of recordings, or None when a full pass is due (none ran
    under the settings of ``digest``)."""
    rows = session.scalars(
        select(RematchMark).where(RematchMark.system.in_([system, NO_SYSTEM]))
    ).all()
    if not any(r.kind == FULL_PASS and r.system == system and r.value == digest for r in rows):
        return None
    return [Mark(r.id, r.kind, r.value, r.version) for r in rows if r.kind != FULL_PASS]


def every_mark(session: Session, system: str) -> list[Mark]:
    """Every mark a pass on ``system`` would clear (a full pass reads them before it starts)."""
    rows = session.scalars(
        select(RematchMark).where(
            RematchMark.system.in_([system, NO_SYSTEM]), RematchMark.kind != FULL_PASS
        )
    )
    return [Mark(r.id, r.kind, r.value, r.version) for r in rows]


def passed_fully(session: Session, system: str, digest: str) -> None:
    """Record that a full pass ran under ``digest``: from now on, marks are what may differ."""
    session.execute(
        delete(RematchMark).where(RematchMark.system == system, RematchMark.kind == FULL_PASS)
    )
    mark(session, system, [(FULL_PASS, digest)])


def clear(session: Session, marks: Sequence[Mark]) -> int:
    """Delete ``marks``, each only at the version read. Returns how many were cleared."""
    cleared = 0
    for start in range(0, len(marks), 200):
        chunk = marks[start : start + 200]
        result = session.execute(
            delete(RematchMark).where(
                or_(
                    *(and_(RematchMark.id == m.id, RematchMark.version == m.version) for m in chunk)
                )
            )
        )
        cleared += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return cleared
