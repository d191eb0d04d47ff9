"""The shared path of every receiver: verify, record delivery ids, enqueue, in one transaction.

A delivery id is recorded in the store's ``deliveries`` table in the same transaction as the
enqueue of its work. If the queue (or the store) cannot take it, the transaction rolls back and
the receiver answers 503: the provider retries, and the retry is not mistaken for a duplicate.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from pydantic import SecretStr
from rq import Queue
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from tasuki.errors import QueueUnavailable, StoreUnavailable
from tasuki.queue import enqueue_once, enqueue_sync
from tasuki.store.db import Store
from tasuki.store.models import Delivery
from tasuki.store.upsert import insert_ignore

RETRY_AFTER_SECONDS = 30
"""What a 503 asks the provider to wait before retrying."""


def verify_hmac_sha256_hex(secret: SecretStr, body: bytes, signature: str | None) -> bool:
    """True when ``signature`` is the hex HMAC-SHA256 of ``body`` under ``secret`` (an optional
    ``sha256=`` prefix is accepted); compared in constant time."""
    if not signature:
        return False
    given = signature.strip().removeprefix("sha256=")
    expected = hmac.new(secret.get_secret_value().encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(given.lower(), expected)


@dataclass(frozen=True)
class Work:
    """One delivery: its id and the CRM records it says changed (``(object, id)`` pairs).

    A delivery with no records (an echo of our own write, an object tasuki ignores) is
    recorded, so its retries are duplicates, and counted as ignored.
    """

    delivery_id: str
    records: Sequence[tuple[str, str]] = ()


@dataclass
class Taken:
    """What a request's deliveries came to."""

    accepted: int = 0
    duplicates: int = 0
    ignored: int = 0
    jobs: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Intake:
    """The store and queue a receiver hands its deliveries to."""

    store: Store
    queue: Queue

    def _record_new(self, session: Any, provider: str, ids: Sequence[str]) -> set[str]:
        seen = set(
            session.scalars(
                select(Delivery.delivery_id).where(
                    Delivery.provider == provider, Delivery.delivery_id.in_(list(ids))
                )
            )
        )
        new = [i for i in dict.fromkeys(ids) if i not in seen]
        insert_ignore(
            session,
            Delivery,
            [{"provider": provider, "delivery_id": i} for i in new],
            ["provider", "delivery_id"],
        )
        return set(new)

    def take(self, provider: str, deliveries: Sequence[Work]) -> Taken:
        """Record the new deliveries and queue one sync per CRM object for their records.

        Raises :class:`QueueUnavailable` or :class:`StoreUnavailable` with nothing recorded.
        """
        result = Taken()
        try:
            with self.store.session() as session:
                new = self._record_new(session, provider, [d.delivery_id for d in deliveries])
                syncs: dict[str, set[str]] = {}
                counted: set[str] = set()
                for d in deliveries:
                    if d.delivery_id not in new or d.delivery_id in counted:
                        result.duplicates += 1
                        continue
                    counted.add(d.delivery_id)
                    if not d.records:
                        result.ignored += 1
                        continue
                    result.accepted += 1
                    for obj, rid in d.records:
                        syncs.setdefault(obj, set()).add(rid)
                try:
                    for obj, ids in sorted(syncs.items()):
                        job = enqueue_sync(self.queue, obj, sorted(ids))
                        if job is not None:
                            result.jobs.append(job.id)
                except redis.RedisError as exc:
                    raise QueueUnavailable(f"queue unreachable: {type(exc).__name__}") from None
                # Leaving the block commits the deliveries; any exception above rolls them back.
        except OperationalError as exc:
            raise StoreUnavailable(f"store unreachable: {type(exc.orig).__name__}") from None
        return result

    def accept(self, provider: str, delivery_id: str, func: str, kwargs: dict[str, Any]) -> bool:
        """Record one delivery and queue ``func(**kwargs)``; False when it was a duplicate."""
        try:
            with self.store.session() as session:
                if not self._record_new(session, provider, [delivery_id]):
                    return False
                key = hashlib.sha1(f"{provider}\0{delivery_id}".encode()).hexdigest()[:16]
                try:
                    job_id = f"{func.replace('.', '_')}-{provider}-{key}"
                    enqueue_once(self.queue, job_id, func, **kwargs)
                except redis.RedisError as exc:
                    raise QueueUnavailable(f"queue unreachable: {type(exc).__name__}") from None
        except OperationalError as exc:
            raise StoreUnavailable(f"store unreachable: {type(exc.orig).__name__}") from None
        return True
