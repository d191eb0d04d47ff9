"""Owed work: the store's record of what tasuki accepted and has not finished.

Redis holds the jobs, but Redis is a cache of work, not its only record. Whatever makes work due
writes an :class:`~tasuki.store.models.OwedWork` row in the same transaction as its own effect:

    webhook intake      delivery ids       + ``sync``  (object, record) per changed record
    a sync              record snapshots   + ``judge`` (logical object, record) per change
    detection/judging   handoffs, verdicts + ``kpis`` and ``write_back``
    recording intake    delivery id        + ``recording`` (the payload itself)
    recording ingest    recording          + ``match_recordings``

and the job that does the work deletes the rows it read (:func:`settle`) in the same transaction
as its own effects, matching each row's ``version`` so that work owed again meanwhile stays owed.
A job killed at any point therefore leaves either nothing done or its debt in the store, and
:func:`stale` finds debts whose job is gone (Redis restarted, a worker was SIGKILLed) so the
``recover`` job can queue them again (``worker.recover``, every minute).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from types import MappingProxyType
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tasuki.store.models import OwedWork, utcnow


class Owed(str, Enum):
    """The kinds of work the store keeps a record of."""

    SYNC = "sync"
    """Fetch a CRM record a webhook said changed: ``object`` is the CRM object name."""
    JUDGE = "judge"
    """Detect and judge the handoffs of a synced record: ``object`` is the logical name."""
    KPIS = "kpis"
    """Recompute the KPI figures (one row, no object)."""
    WRITE_BACK = "write_back"
    """Run a write-back pass (one row, no object)."""
    MATCH_RECORDINGS = "match_recordings"
    """Link pending recordings to records (one row, no object)."""
    RECORDING = "recording"
    """Keep one MiiTel/Zoom delivery: ``object`` is the provider, ``payload`` the delivery."""


SINGLE = ("", "")
"""The (object, record) of a kind that has one row (KPIs, write-back, matching)."""


@dataclass(frozen=True)
class Debt:
    """One owed row as read: enough to settle exactly this version of it."""

    id: int
    kind: Owed
    object: str
    record_id: str
    version: int
    owed_at: datetime
    job_id: str | None
    payload: dict[str, Any] | None


def owe(
    session: Session,
    kind: Owed,
    items: Iterable[tuple[str, str]] = (SINGLE,),
    *,
    job_id: str | None = None,
    payload: dict[str, Any] | None = None,
) -> int:
    """Record that ``kind`` work is owed for each (object, record) of ``items``, in the caller's
    transaction; work already owed is owed again (its version grows). Returns the rows."""
    now = utcnow()
    rows = [
        {
            "kind": kind.value,
            "object": obj,
            "record_id": rid,
            "version": 1,
            "owed_at": now,
            "job_id": job_id,
            "payload": payload,
        }
        for obj, rid in dict.fromkeys(items)
    ]
    if not rows:
        return 0
    session.connection().execute(_owe_statement(session), rows)
    return len(rows)


@dataclass(frozen=True)
class Owing:
    """One piece of work to record as owed (:func:`owe_all`), of any kind, with its own job."""

    kind: Owed
    object: str
    record_id: str
    job_id: str | None = None
    payload: dict[str, Any] | None = None


def owe_all(session: Session, owings: Iterable[Owing]) -> int:
    """Record every ``owings`` in one statement, in the caller's transaction: what several
    :func:`owe` calls in a row would record (the same work twice is owed again, the later
    job and payload kept). Returns the rows written."""
    now = utcnow()
    last: dict[tuple[str, str, str], Owing] = {}
    for o in owings:
        key = (o.kind.value, o.object, o.record_id)
        last.pop(key, None)  # the later one wins, in the order it came
        last[key] = o
    rows = [
        {
            "kind": o.kind.value,
            "object": o.object,
            "record_id": o.record_id,
            "version": 1,
            "owed_at": now,
            "job_id": o.job_id,
            "payload": o.payload,
        }
        for o in last.values()
    ]
    if not rows:
        return 0
    session.connection().execute(_owe_statement(session), rows)
    return len(rows)


def _owe_upsert(insert: Any) -> Any:
    """The upsert of an owed row in one dialect: a new debt, or one more version of it."""
    stmt = insert(OwedWork)
    return stmt.on_conflict_do_update(
        index_elements=["kind", "object", "record_id"],
        set_={
            "version": OwedWork.version + 1,
            "owed_at": stmt.excluded.owed_at,
            "job_id": stmt.excluded.job_id,
            "payload": stmt.excluded.payload,
        },
    )


_OWE: Mapping[str, Any] = MappingProxyType(
    {"sqlite": _owe_upsert(sqlite.insert), "postgresql": _owe_upsert(postgresql.insert)}
)
"""The upsert of owed rows per dialect, built at import (building it costs more than running
it); a constant, not a cache."""


def _owe_statement(session: Session) -> Any:
    return _OWE[session.get_bind().dialect.name]


def _debt(row: OwedWork) -> Debt:
    return Debt(
        row.id,
        Owed(row.kind),
        row.object,
        row.record_id,
        row.version,
        row.owed_at,
        row.job_id,
        row.payload,
    )


def owed(
    session: Session,
    kind: Owed,
    object: str | None = None,
    record_ids: Sequence[str] | None = None,
    *,
    before: datetime | None = None,
    limit: int | None = None,
) -> list[Debt]:
    """The debts of ``kind`` (for ``object`` and ``record_ids`` when given, owed before
    ``before`` when given), oldest first."""
    stmt = select(OwedWork).where(OwedWork.kind == kind.value)
    if object is not None:
        stmt = stmt.where(OwedWork.object == object)
    if before is not None:
        stmt = stmt.where(OwedWork.owed_at < before)
    stmt = stmt.order_by(OwedWork.owed_at, OwedWork.id)
    if record_ids is None:
        return [_debt(r) for r in session.scalars(stmt.limit(limit) if limit else stmt)]
    out: list[Debt] = []
    ids = sorted(set(record_ids))
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        out.extend(_debt(r) for r in session.scalars(stmt.where(OwedWork.record_id.in_(chunk))))
    return out


def settle(session: Session, debts: Iterable[Debt]) -> int:
    """Delete the given debts, in the caller's transaction, unless owed again since they were
    read (their version moved on). Returns how many were settled."""
    pairs = [(d.id, d.version) for d in debts]
    done = 0
    for start in range(0, len(pairs), 200):
        chunk = pairs[start : start + 200]
        result = session.execute(
            delete(OwedWork).where(
                or_(*(and_(OwedWork.id == i, OwedWork.version == v) for i, v in chunk))
            )
        )
        done += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return done


def assign(session: Session, debts: Iterable[Debt], job_id: str) -> None:
    """Note that ``job_id`` was queued to do ``debts`` (recovery leaves them to it while it
    lives)."""
    ids = [d.id for d in debts]
    for start in range(0, len(ids), 500):
        session.execute(
            update(OwedWork).where(OwedWork.id.in_(ids[start : start + 500])).values(job_id=job_id)
        )


def stale(session: Session, grace: timedelta, now: datetime | None = None) -> list[Debt]:
    """Every debt older than ``grace``, oldest first: candidates for recovery (younger ones are
    left to the job queued for them, which normally settles its debt within seconds)."""
    cutoff = (now or utcnow()) - grace
    rows = session.scalars(
        select(OwedWork).where(OwedWork.owed_at < cutoff).order_by(OwedWork.owed_at, OwedWork.id)
    )
    return [_debt(r) for r in rows]


def count(session: Session) -> dict[str, int]:
    """Owed rows by kind (for health checks and tests)."""
    out: dict[str, int] = {}
    for (kind,) in session.execute(select(OwedWork.kind)):
        out[kind] = out.get(kind, 0) + 1
    return out
