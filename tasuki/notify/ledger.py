"""The notification ledger: every message claimed before it is sent, completed after.

A message is identified by its :class:`Key` (rule, subject, occurrence, recipient). Sending one
is three steps, each its own transaction:

1. **claim**: insert the key with status ``sending`` (``INSERT … ON CONFLICT DO NOTHING``,
   RETURNING), or take back a row a transient failure left ``pending``
   (``UPDATE … WHERE status = 'pending'``). Exactly one worker wins; the others see the key
   and move on. Nothing is sent without a claim.
2. **send** through Slack or SMTP.
3. **finish** with what the service said: ``sent`` (Slack's channel and ``ts``, the SMTP
   reply), ``failed`` (Slack's error code, the SMTP reply: the message did not go and will not
   without a person's help), ``unknown`` (the request went out and no answer came back:
   perhaps delivered; never sent again blindly), or back to ``pending`` (the service said it
   did nothing, e.g. Slack's 503 or a mail server that refused the connection: the next sweep
   tries again).

A worker killed between 1 and 3 leaves ``sending``; after :data:`SEND_LEASE` the next sweep
marks it ``unknown`` (:func:`expire_claims`) rather than send it a second time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from sqlalchemy import ColumnElement, and_, or_, select, update

from tasuki.store.db import Store
from tasuki.store.models import NotificationEntry, utcnow
from tasuki.store.upsert import insert_ignore

SEND_LEASE = timedelta(minutes=15)
"""A claim older than this whose send never finished belonged to a worker that died: its
outcome is unknown. Far longer than one send may take (Slack's and SMTP's timeouts, retries)."""


class Status(str, Enum):
    """Where a message stands."""

    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"
    PENDING = "pending"
    SKIPPED = "skipped"
    """Nobody to send it to (a person with neither Slack nor e-mail): recorded, not sent."""


DONE = (Status.SENT, Status.FAILED, Status.UNKNOWN, Status.SKIPPED)
"""Statuses that end a message's life: it is never sent (again) by a sweep."""


@dataclass(frozen=True, order=True)
class Key:
    """What makes a message one message."""

    rule_id: str
    subject: str
    occurrence: str
    recipient: str

    def __str__(self) -> str:
        return f"{self.rule_id} {self.subject} {self.occurrence} → {self.recipient}"


def _stored(key: Key) -> Key:
    """``key`` as the ledger's columns hold it (each part cut to its column's size)."""
    return Key(key.rule_id[:80], key.subject[:200], key.occurrence[:120], key.recipient[:200])


def _row(key: Key) -> dict[str, str]:
    k = _stored(key)
    return {
        "rule_id": k.rule_id,
        "subject": k.subject,
        "occurrence": k.occurrence,
        "recipient": k.recipient,
    }


def _match(key: Key) -> ColumnElement[bool]:
    k = _stored(key)
    return and_(
        NotificationEntry.rule_id == k.rule_id,
        NotificationEntry.subject == k.subject,
        NotificationEntry.occurrence == k.occurrence,
        NotificationEntry.recipient == k.recipient,
    )


def statuses(store: Store, keys: Sequence[Key]) -> dict[Key, Status]:
    """The status of each of ``keys`` the ledger knows."""
    wanted = {_stored(k): k for k in keys}
    subjects: dict[str, set[str]] = {}
    for k in wanted:
        subjects.setdefault(k.rule_id, set()).add(k.subject)
    out: dict[Key, Status] = {}
    with store.session() as session:
        for rule_id, found in subjects.items():
            ordered = sorted(found)
            for start in range(0, len(ordered), 500):
                rows = session.execute(
                    select(
                        NotificationEntry.subject,
                        NotificationEntry.occurrence,
                        NotificationEntry.recipient,
                        NotificationEntry.status,
                    ).where(
                        NotificationEntry.rule_id == rule_id,
                        NotificationEntry.subject.in_(ordered[start : start + 500]),
                    )
                )
                for subject, occurrence, recipient, status in rows:
                    key = wanted.get(Key(rule_id, subject, occurrence, recipient))
                    if key is not None:
                        out[key] = Status(status)
    return out


def entry(store: Store, key: Key) -> NotificationEntry | None:
    """The ledger row of ``key`` (detached), if any."""
    with store.session() as session:
        row = session.scalars(select(NotificationEntry).where(_match(key))).one_or_none()
        if row is not None:
            session.expunge(row)
        return row


def claim(store: Store, key: Key, now: datetime | None = None) -> int | None:
    """Claim ``key`` for sending: its row id when this caller may send it, else None (another
    worker has it, or it is done). Committed before returning."""
    now = now or utcnow()
    with store.session() as session:
        inserted = insert_ignore(
            session,
            NotificationEntry,
            [
                {
                    **_row(key),
                    "status": Status.SENDING.value,
                    "medium": "",
                    "address": "",
                    "attempts": 1,
                    "claimed_at": now,
                    "result": "",
                    "error": "",
                }
            ],
            ["rule_id", "subject", "occurrence", "recipient"],
        )
        if not inserted:
            taken = session.execute(
                update(NotificationEntry)
                .where(_match(key), NotificationEntry.status == Status.PENDING.value)
                .values(
                    status=Status.SENDING.value,
                    claimed_at=now,
                    attempts=NotificationEntry.attempts + 1,
                )
            ).rowcount  # type: ignore[attr-defined]
            if not taken:
                return None
        claimed: int = session.scalars(select(NotificationEntry.id).where(_match(key))).one()
        return claimed


def finish(
    store: Store,
    entry_id: int,
    status: Status,
    *,
    medium: str = "",
    address: str = "",
    result: str = "",
    error: str = "",
) -> None:
    """Record the outcome of a claimed send (``pending``: released for the next sweep)."""
    values: dict[str, object] = {
        "status": status.value,
        "medium": medium,
        "address": address[:200],
        "result": result,
        "error": error,
    }
    if status is Status.SENT:
        values["sent_at"] = utcnow()
    with store.session() as session:
        session.execute(
            update(NotificationEntry)
            .where(
                NotificationEntry.id == entry_id,
                NotificationEntry.status == Status.SENDING.value,
            )
            .values(**values)
        )


def record(store: Store, key: Key, status: Status, *, error: str = "") -> bool:
    """Note ``key`` as ``status`` without sending (a skipped message); False when the ledger
    already had it."""
    with store.session() as session:
        return bool(
            insert_ignore(
                session,
                NotificationEntry,
                [
                    {
                        **_row(key),
                        "status": status.value,
                        "medium": "",
                        "address": "",
                        "attempts": 0,
                        "claimed_at": utcnow(),
                        "result": "",
                        "error": error,
                    }
                ],
                ["rule_id", "subject", "occurrence", "recipient"],
            )
        )


def expire_claims(store: Store, now: datetime | None = None) -> int:
    """Mark ``unknown`` every claim older than :data:`SEND_LEASE` still ``sending`` (its worker
    died mid-send); returns how many."""
    cutoff = (now or utcnow()) - SEND_LEASE
    with store.session() as session:
        done = session.execute(
            update(NotificationEntry)
            .where(
                NotificationEntry.status == Status.SENDING.value,
                NotificationEntry.claimed_at < cutoff,
            )
            .values(
                status=Status.UNKNOWN.value,
                error="the worker sending it stopped before recording the outcome",
            )
        ).rowcount  # type: ignore[attr-defined]
    return int(done or 0)


def entries(
    store: Store,
    *,
    statuses: Iterable[Status] = (),
    since: datetime | None = None,
    rule_ids: Iterable[str] = (),
) -> list[NotificationEntry]:
    """Ledger rows (detached), oldest claim first, filtered by status, claim time and rule."""
    stmt = select(NotificationEntry)
    wanted = [s.value for s in statuses]
    if wanted:
        stmt = stmt.where(NotificationEntry.status.in_(wanted))
    if since is not None:
        stmt = stmt.where(NotificationEntry.claimed_at >= since)
    rules = list(rule_ids)
    if rules:
        stmt = stmt.where(or_(*(NotificationEntry.rule_id == r for r in rules)))
    with store.session() as session:
        rows = list(
            session.scalars(stmt.order_by(NotificationEntry.claimed_at, NotificationEntry.id))
        )
        session.expunge_all()
    return rows
