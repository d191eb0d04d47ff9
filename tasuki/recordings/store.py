"""Recordings in the store: kept on arrival (merged per provider id), read back as artifacts.

Every delivery ends up in one :class:`~tasuki.store.models.Recording` row per provider id:
a second delivery of the same call or meeting fills in what the first lacked (a Zoom meeting's
participants arrive before its recording) and never erases what is known. A row whose facts
changed has its match keys indexed and is marked for the next re-match pass, in the same
transaction (:mod:`tasuki.recordings.index`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from enum import Enum

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from tasuki.recordings.capture import Capture
from tasuki.recordings.index import track_recording
from tasuki.store.models import Recording
from tasuki.store.upsert import insert_ignore
from tasuki.verdicts import Artifact


class Status(str, Enum):
    """Whether a recording is linked to a CRM record."""

    MATCHED = "matched"
    UNMATCHED = "unmatched"
    AMBIGUOUS = "ambiguous"


PENDING = (Status.UNMATCHED.value, Status.AMBIGUOUS.value)
"""Statuses tried again when records sync."""


def _merged(old: Sequence[str], new: Iterable[str]) -> list[str]:
    out = list(old)
    out.extend(x for x in new if x not in out)
    return out


def keep(session: Session, capture: Capture) -> tuple[Recording, bool]:
    """Store ``capture`` (or merge it into the row already kept for it); returns the row and
    whether anything about it changed."""
    insert_ignore(
        session,
        Recording,
        [
            {
                "provider": capture.provider,
                "external_id": capture.external_id,
                "kind": capture.kind.value,
                "url": "",
                "title": "",
                "phones": [],
                "emails": [],
                "host_email": "",
                "user_id": "",
                "status": Status.UNMATCHED.value,
                "reason": "not matched yet",
                "payload": {},
            }
        ],
        ["provider", "external_id"],
    )
    row = session.scalars(
        select(Recording)
        .where(
            Recording.provider == capture.provider,
            Recording.external_id == capture.external_id,
        )
        .with_for_update()
    ).one()
    before = _facts(row)
    if capture.url:
        row.url = capture.url
    if capture.at is not None:
        row.at = capture.at
    if capture.title:
        row.title = capture.title[:300]
    if capture.host_email:
        row.host_email = capture.host_email[:200]
    if capture.user_id:
        row.user_id = capture.user_id[:200]
    row.phones = _merged(row.phones, capture.phones)
    row.emails = _merged(row.emails, capture.emails)
    if capture.payload:
        row.payload = {**capture.payload, "_tasuki_missing": list(capture.missing)}
    changed = _facts(row) != before
    if changed and row.status == Status.MATCHED.value:
        # New facts may change the link: the row goes back to the queue of pending ones.
        row.status, row.reason = Status.UNMATCHED.value, "new facts arrived; matching again"
    if changed:
        track_recording(session, row)
    return row, changed


def _facts(row: Recording) -> tuple[object, ...]:
    return (
        row.url,
        row.at,
        row.title,
        row.host_email,
        row.user_id,
        list(row.phones),
        list(row.emails),
        row.payload,
    )


def has_pending(session: Session) -> bool:
    """True when some recording waits for a link (one indexed look-up)."""
    return (
        session.scalars(select(Recording.id).where(Recording.status.in_(PENDING)).limit(1)).first()
        is not None
    )


def artifacts_by_record(
    session: Session, system: str, records: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], list[Artifact]]:
    """The linked recordings of each of ``records`` ((logical object, record id) pairs),
    oldest first, as the rules see them; one query for all."""
    out: dict[tuple[str, str], list[Artifact]] = {}
    pairs = sorted(set(records))
    for start in range(0, len(pairs), 500):
        rows = session.scalars(
            select(Recording)
            .where(
                Recording.system == system,
                Recording.status == Status.MATCHED.value,
                Recording.url != "",
                tuple_(Recording.matched_object, Recording.matched_record_id).in_(
                    pairs[start : start + 500]
                ),
            )
            .order_by(Recording.at, Recording.id)
        ).all()
        for r in rows:
            key = (str(r.matched_object), str(r.matched_record_id))
            out.setdefault(key, []).append(
                Artifact(kind=r.kind, url=r.url, at=_when(r.at, r.received_at), source=r.provider)
            )
    return out


def artifacts_for(
    session: Session, system: str, records: Sequence[tuple[str, str]]
) -> list[Artifact]:
    """The linked recordings of ``records`` ((logical object, record id) pairs), oldest first,
    as the rules see them."""
    found = artifacts_by_record(session, system, records)
    merged = [a for pair in records for a in found.get(pair, [])]
    return sorted(merged, key=lambda a: a.at)


def _when(at: datetime | None, received: datetime) -> datetime:
    return at if at is not None else received
