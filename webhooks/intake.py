"""The shared path of every receiver: verify, record delivery ids and the work they owe, enqueue.

A receiver verifies the request itself (:func:`verify_hmac_sha256_hex` for the common HMAC
scheme), parses it into delivery ids and hands them to :meth:`Intake.admit` with the action
that queues the work of the new ones. The guarantees:

1. In one store transaction the ids are inserted (``INSERT … ON CONFLICT DO NOTHING
   RETURNING``: the rows that went in are exactly the new ones, even when two requests race)
   together with the work they owe (:mod:`tasuki.owed`), and the transaction commits.
2. Only then is the work queued, so no store lock is held while Redis is asked (a frozen Redis
   costs :data:`tasuki.queue.REDIS_TIMEOUT`, and never blocks the store for other requests).
3. If the queue cannot take the work, the ids are deleted again, so the provider's retry is
   taken as new rather than as a duplicate, and the receiver answers 503 (:func:`unavailable`).
   The owed work stays in the store: ``worker.recover`` queues it once Redis answers, whether
   or not the provider ever retries.
4. A 200 means the work is in the store: if Redis then loses the job (a restart without
   persistence), ``worker.recover`` finds the debt and queues it again within a minute.

``take`` (syncs of CRM records, one job per object) and ``accept`` (one job per delivery) are
the two shapes of work receivers have needed so far, both built on ``admit``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from flask import Response, jsonify
from pydantic import SecretStr
from rq import Queue
from sqlalchemy import delete
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from tasuki import logs
from tasuki.errors import QueueUnavailable, StoreUnavailable, TasukiError
from tasuki.owed import Owed, owe
from tasuki.queue import enqueue_once, enqueue_sync, recording_key, sync_job_id
from tasuki.store.db import Store
from tasuki.store.models import Delivery
from tasuki.store.upsert import dialect_insert

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30
"""What a 503 asks the provider to wait before retrying."""

_STORE_DOWN = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)
"""Store errors that mean "not reachable now" (a retry may succeed), unlike a bad statement."""

EnqueueNew = Callable[[list[str]], object]
"""Queues the work of the given new delivery ids; raises :class:`QueueUnavailable` (or a
``redis.RedisError``) when it cannot. Its return value is ignored."""

OweNew = Callable[[Session, list[str]], object]
"""Records, in the intake's transaction, the work the given new delivery ids owe."""


def sign_hmac_sha256_hex(secret: str, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``body`` under ``secret``: what a sender puts in its header."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_hmac_sha256_hex(secret: SecretStr, body: bytes, signature: str | None) -> bool:
    """True when ``signature`` is the hex HMAC-SHA256 of ``body`` under ``secret``.

    An optional ``sha256=`` prefix and upper-case hex are accepted. Compared in constant time;
    any other header value (empty, non-hex, non-ASCII) is simply False.
    """
    if not signature:
        return False
    given = signature.strip().removeprefix("sha256=").lower()
    expected = sign_hmac_sha256_hex(secret.get_secret_value(), body)
    # Bytes, not str: compare_digest refuses non-ASCII str, and a header may hold any latin-1.
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())


def unavailable(exc: TasukiError | str) -> tuple[Response, int, dict[str, str]]:
    """The 503 answer when the queue or the store cannot take work: a JSON error and
    ``Retry-After``, so the provider delivers again later."""
    return jsonify(error=str(exc)), 503, {"Retry-After": str(RETRY_AFTER_SECONDS)}


def _insert_new(session: Session, provider: str, ids: Sequence[str]) -> set[str]:
    """Insert the delivery ids not yet recorded; returns those that went in."""
    stmt = (
        dialect_insert(session, Delivery)
        .on_conflict_do_nothing(index_elements=["provider", "delivery_id"])
        .returning(Delivery.delivery_id)
    )
    rows = [{"provider": provider, "delivery_id": i} for i in ids]
    return set(session.connection().execute(stmt, rows).scalars())


@dataclass(frozen=True)
class Admitted:
    """What :meth:`Intake.admit` did with a request's delivery ids."""

    new: list[str]
    """Ids seen for the first time, in request order (their work is queued)."""
    duplicates: int
    """Ids recorded before, or repeated within the request (counted at each repeat)."""


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
    """Ids of the jobs queued (a sync merged into a waiting job adds none)."""


@dataclass(frozen=True)
class Intake:
    """The store and queue a receiver hands its deliveries to."""

    store: Store
    queue: Queue

    def admit(
        self,
        provider: str,
        delivery_ids: Sequence[str],
        enqueue: EnqueueNew,
        owe: OweNew | None = None,
    ) -> Admitted:
        """Record the ids not seen before for ``provider`` and the work they owe (``owe``) in
        one transaction, then call ``enqueue(new ids)`` (not called when none is new).

        Raises :class:`QueueUnavailable` (the queue refused: the ids are forgotten again, the
        owed work is kept for recovery) or :class:`StoreUnavailable` (the store is unreachable:
        nothing recorded, nothing queued).
        """
        unique = list(dict.fromkeys(delivery_ids))
        if not unique:
            return Admitted([], 0)
        # Stays bound for the rest of the request: the access-log line names the delivery.
        logs.bind(delivery_id=logs.ids_field(unique))
        try:
            with self.store.session() as session:
                inserted = _insert_new(session, provider, unique)
                new = [i for i in unique if i in inserted]
                if new and owe is not None:
                    owe(session, new)
        except _STORE_DOWN as exc:
            reason = type(getattr(exc, "orig", None) or exc).__name__
            raise StoreUnavailable(f"store unreachable: {reason}: {exc}") from exc
        if new:
            try:
                enqueue(new)
            except BaseException as exc:
                self._forget(provider, new)
                if isinstance(exc, redis.RedisError):
                    raise QueueUnavailable(
                        f"queue unreachable: {type(exc).__name__}: {exc}"
                    ) from exc
                raise
        return Admitted(new, len(delivery_ids) - len(new))

    def _forget(self, provider: str, delivery_ids: Sequence[str]) -> None:
        """Delete delivery ids whose work could not be queued, so the provider's retry is new.
        If even this fails the ids stay recorded, and their owed work is recovered anyway."""
        try:
            with self.store.session() as session:
                session.execute(
                    delete(Delivery).where(
                        Delivery.provider == provider, Delivery.delivery_id.in_(delivery_ids)
                    )
                )
        except sa_exc.SQLAlchemyError:
            log.exception("could not forget %d delivery ids of %s", len(delivery_ids), provider)

    def take(self, provider: str, deliveries: Sequence[Work]) -> Taken:
        """Record the new deliveries and queue one sync per CRM object for their records
        (``tasuki.queue.enqueue_sync``, which merges into an identical waiting job).

        Raises :class:`QueueUnavailable` or :class:`StoreUnavailable` with nothing recorded.
        """
        first: dict[str, Work] = {}
        for d in deliveries:
            first.setdefault(d.delivery_id, d)
        jobs: list[str] = []

        def syncs(new: list[str]) -> dict[str, list[str]]:
            by_object: dict[str, set[str]] = {}
            for delivery_id in new:
                for obj, rid in first[delivery_id].records:
                    by_object.setdefault(obj, set()).add(rid)
            return {obj: sorted(ids) for obj, ids in sorted(by_object.items())}

        def owe_syncs(session: Session, new: list[str]) -> None:
            for obj, ids in syncs(new).items():
                owe(session, Owed.SYNC, [(obj, i) for i in ids], job_id=sync_job_id(obj, ids))

        def enqueue(new: list[str]) -> None:
            for obj, ids in syncs(new).items():
                job = enqueue_sync(self.queue, obj, ids)
                if job is not None:
                    jobs.append(job.id)

        admitted = self.admit(provider, [d.delivery_id for d in deliveries], enqueue, owe_syncs)
        accepted = sum(1 for i in admitted.new if first[i].records)
        return Taken(accepted, admitted.duplicates, len(admitted.new) - accepted, jobs)

    def accept(self, provider: str, delivery_id: str, func: str, kwargs: dict[str, Any]) -> bool:
        """Record one delivery and queue ``func(**kwargs)``; False when it was a duplicate.

        Raises :class:`QueueUnavailable` or :class:`StoreUnavailable` with nothing recorded.
        """
        key = recording_key(provider, delivery_id)
        job_id = f"{func.replace('.', '_')}-{provider}-{key}"

        def owe_job(session: Session, _new: list[str]) -> None:
            owe(
                session,
                Owed.RECORDING,
                [(provider, key)],
                job_id=job_id,
                payload={"func": func, "kwargs": kwargs},
            )

        admitted = self.admit(
            provider,
            [delivery_id],
            lambda _new: enqueue_once(self.queue, job_id, func, **kwargs),
            owe_job,
        )
        return bool(admitted.new)
