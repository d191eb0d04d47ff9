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
import threading
from collections.abc import Callable, Iterable, Sequence
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
from tasuki.owed import Owed, Owing, owe_all
from tasuki.queue import JobSpec, enqueue_many, job_name, recording_key
from tasuki.store.db import Store
from tasuki.store.models import Delivery
from tasuki.store.upsert import dialect_insert
from worker import sync_job

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30
"""What a 503 asks the provider to wait before retrying."""

_STORE_DOWN = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)
"""Store errors that mean "not reachable now" (a retry may succeed), unlike a bad statement."""

EnqueueNew = Callable[[list[str]], object]
"""Queues the work of the given new delivery ids; raises :class:`QueueUnavailable` (or a
``redis.RedisError``) when it cannot. Its return value is ignored."""

OweNew = Callable[[list[str]], Iterable[Owing]]
"""The work the given new delivery ids owe, recorded in the intake's transaction."""

RecordsNew = Callable[[list[str]], Iterable[tuple[str, str]]]
"""The (CRM object, record id) pairs the given new delivery ids say changed: each is synced."""

SYNC_JOB_IDS = 200
"""Most record ids one sync job takes when a batch's notices are merged (one request's records
of one object always stay in one job)."""

JobsNew = Callable[[list[str]], Sequence[JobSpec]]
"""The jobs that do the work of the given new delivery ids, queued once the ids are committed."""


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


_INSERT_NEW: dict[str, Any] = {}
"""The delivery-id insert per dialect, built once: building it costs more than running it."""


def _insert_new(session: Session, rows: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
    """Insert the (provider, delivery id) pairs not yet recorded; returns those that went in."""
    dialect = session.get_bind().dialect.name
    stmt = _INSERT_NEW.get(dialect)
    if stmt is None:
        stmt = _INSERT_NEW[dialect] = (
            dialect_insert(session, Delivery)
            .on_conflict_do_nothing(index_elements=["provider", "delivery_id"])
            .returning(Delivery.provider, Delivery.delivery_id)
        )
    values = [{"provider": p, "delivery_id": i} for p, i in rows]
    return {(p, i) for p, i in session.connection().execute(stmt, values)}


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


@dataclass(eq=False)
class _Ticket:
    """One request's part of a group commit, filled in by the thread that runs the batch."""

    provider: str
    ids: list[str]
    owes: OweNew | None = None
    jobs: JobsNew | None = None
    records: RecordsNew | None = None
    taken: bool = False
    new: list[str] = field(default_factory=list)
    syncs: dict[str, set[str]] = field(default_factory=dict)
    """The records of its new deliveries to sync, by CRM object."""
    sync_jobs: list[JobSpec] = field(default_factory=list)
    """The syncs of the transaction it was committed in (shared by its tickets)."""
    queued: list[str | None] = field(default_factory=list)
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)


class GroupCommit:
    """Runs the intake of concurrent requests as one: one store transaction, one Redis call.

    Each request thread hands in a ticket. The first thread in takes every ticket waiting and
    runs them together: it inserts all their delivery ids in one statement (an id repeated
    across the batch counts for the first request that named it, as if they had come one after
    the other), records the work all the new ones owe in one more, commits, and only then queues
    every job in one atomic script (:func:`tasuki.queue.enqueue_many`). The records the batch's
    notices name are synced by one job per CRM object (of at most :data:`SYNC_JOB_IDS` ids), as
    if the notices had come in one request: the sync of a record fetches its current state, so
    one fetch serves every notice about it. Threads arriving
    meanwhile wait, and the next of them takes whatever gathered. So under load a commit (an
    fsync) and a Redis round trip serve many requests, and SQLite's write lock is taken once per
    batch instead of being fought over by every server thread.

    A batch that fails for a reason other than the store being down is run again one ticket at
    a time, so one request's fault is never another's.
    """

    def __init__(self, store: Store, queue: Queue) -> None:
        self.store = store
        self.queue = queue
        self._pending: list[_Ticket] = []
        self._running = False
        self._turn = threading.Condition()

    def run(self, ticket: _Ticket) -> _Ticket:
        """Record ``ticket`` (alone or with others) and return it filled in; raises its error."""
        with self._turn:
            self._pending.append(ticket)
            while self._running and not ticket.taken:
                self._turn.wait()
            batch: list[_Ticket] = []
            if not ticket.taken:  # nobody runs a batch: this thread runs the waiting tickets
                batch, self._pending = self._pending, []
                for t in batch:
                    t.taken = True
                self._running = True
        if batch:
            self._run_batch(batch)
        # A ticket taken by another thread's batch waits for that batch alone.
        ticket.done.wait()
        error = ticket.error
        if isinstance(error, QueueUnavailable | StoreUnavailable):  # each thread its own copy
            raise type(error)(str(error)) from error.__cause__ or error
        if error is not None:
            raise error
        return ticket

    def _run_batch(self, batch: list[_Ticket]) -> None:
        """Commit ``batch``, hand the store to the next batch, then queue this one's jobs (so
        one batch's Redis round trip overlaps the next one's commit)."""
        handed_over = False
        try:
            self._record_each(batch)
            self._hand_over()
            handed_over = True
            self._queue(batch)
        except BaseException as exc:  # a leader interrupted: nobody waits forever
            for t in batch:
                if t.error is None:
                    t.error = exc
            raise
        finally:
            if not handed_over:
                self._hand_over()
            for t in batch:
                t.done.set()

    def _hand_over(self) -> None:
        with self._turn:
            self._running = False
            self._turn.notify_all()

    def _record_each(self, batch: list[_Ticket]) -> None:
        try:
            self._record(batch)
            return
        except _STORE_DOWN as exc:
            reason = type(getattr(exc, "orig", None) or exc).__name__
            failure = StoreUnavailable(f"store unreachable: {reason}: {exc}")
            failure.__cause__ = exc
            for t in batch:
                t.error = failure
            return
        except Exception as exc:
            if len(batch) == 1:
                batch[0].error = exc
                return
        for t in batch:  # some request's own fault: each alone, so it fails alone
            self._record_each([t])

    def _record(self, batch: list[_Ticket]) -> None:
        """Insert the batch's ids and the work the new ones owe, in one transaction."""
        claims: dict[tuple[str, str], _Ticket] = {}
        for t in batch:
            for i in t.ids:
                claims.setdefault((t.provider, i), t)
        with self.store.session() as session:
            inserted = _insert_new(session, list(claims))
            owings: list[Owing] = []
            for t in batch:
                t.new = [
                    i for i in t.ids if claims[(t.provider, i)] is t and (t.provider, i) in inserted
                ]
                t.syncs = {}
                if t.new and t.records is not None:
                    for obj, rid in t.records(t.new):
                        t.syncs.setdefault(obj, set()).add(rid)
                if t.new and t.owes is not None:
                    owings.extend(t.owes(t.new))
            sync_jobs = self._sync_jobs(batch)
            for t in batch:
                t.sync_jobs = sync_jobs if t.syncs else []
            owings.extend(
                Owing(Owed.SYNC, spec.kwargs["object"], rid, job_id=spec.job_id)
                for spec in sync_jobs
                for rid in spec.kwargs["ids"]
            )
            if owings:
                owe_all(session, owings)

    @staticmethod
    def _sync_jobs(batch: list[_Ticket]) -> list[JobSpec]:
        """One sync per CRM object for the records of every ticket in ``batch``; a ticket's
        records of one object stay in one job, and a job takes more tickets up to
        :data:`SYNC_JOB_IDS` ids."""
        chunks: dict[str, list[set[str]]] = {}
        for t in batch:
            for obj, ids in sorted(t.syncs.items()):
                mine = chunks.setdefault(obj, [set()])
                if mine[-1] and len(mine[-1] | ids) > SYNC_JOB_IDS:
                    mine.append(set())
                mine[-1] |= ids
        return [sync_job(obj, sorted(ids)) for obj, sets in sorted(chunks.items()) for ids in sets]

    def _queue(self, batch: list[_Ticket]) -> None:
        """Queue the jobs of every ticket whose ids went in; on failure forget their ids."""
        specs: list[tuple[_Ticket, list[JobSpec]]] = []
        for t in batch:
            if t.error is None and t.new and t.jobs is not None:
                try:
                    specs.append((t, list(t.jobs(t.new))))
                except Exception as exc:
                    self._fail([t], exc)
        syncing = [t for t in batch if t.error is None and t.sync_jobs]
        # One list per transaction: the whole batch's, or each ticket's after a fallback.
        groups = {id(t.sync_jobs): t.sync_jobs for t in syncing}
        syncs = [spec for jobs in groups.values() for spec in jobs]
        if not specs and not syncs:
            return
        try:
            queued = enqueue_many(self.queue, syncs + [s for _, jobs in specs for s in jobs])
        except Exception as exc:
            self._fail([t for t, _ in specs] + [t for t in syncing if t.jobs is None], exc)
            return
        for t in syncing:
            t.queued = [
                q
                for spec, q in zip(syncs, queued, strict=False)
                if not t.syncs.get(spec.kwargs["object"], set()).isdisjoint(spec.kwargs["ids"])
            ]
        at = len(syncs)
        for t, jobs in specs:
            t.queued += queued[at : at + len(jobs)]
            at += len(jobs)

    def _fail(self, tickets: list[_Ticket], exc: BaseException) -> None:
        forget(self.store, [(t.provider, i) for t in tickets for i in t.new])
        for t in tickets:
            t.error = exc


def forget(store: Store, ids: Sequence[tuple[str, str]]) -> None:
    """Delete (provider, delivery id) pairs whose work could not be queued, so the provider's
    retry is new. If even this fails the ids stay recorded, and their owed work is recovered
    anyway."""
    if not ids:
        return
    try:
        with store.session() as session:
            by_provider: dict[str, list[str]] = {}
            for p, i in ids:
                by_provider.setdefault(p, []).append(i)
            for provider, delivery_ids in by_provider.items():
                session.execute(
                    delete(Delivery).where(
                        Delivery.provider == provider, Delivery.delivery_id.in_(delivery_ids)
                    )
                )
    except sa_exc.SQLAlchemyError:
        log.exception("could not forget %d delivery ids", len(ids))


@dataclass(frozen=True)
class Intake:
    """The store and queue a receiver hands its deliveries to."""

    store: Store
    queue: Queue
    group: GroupCommit = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "group", GroupCommit(self.store, self.queue))

    def _submit(
        self,
        provider: str,
        delivery_ids: Sequence[str],
        owes: OweNew | None = None,
        jobs: JobsNew | None = None,
        records: RecordsNew | None = None,
    ) -> _Ticket:
        unique = list(dict.fromkeys(delivery_ids))
        if unique:
            # Stays bound for the rest of the request: the access-log line names the delivery.
            logs.bind(delivery_id=logs.ids_field(unique))
        ticket = _Ticket(provider, unique, owes, jobs, records)
        if not unique:
            return ticket
        try:
            return self.group.run(ticket)
        except redis.RedisError as exc:
            raise QueueUnavailable(f"queue unreachable: {type(exc).__name__}: {exc}") from exc

    def admit(
        self,
        provider: str,
        delivery_ids: Sequence[str],
        enqueue: EnqueueNew,
        owes: OweNew | None = None,
    ) -> Admitted:
        """Record the ids not seen before for ``provider`` and the work they owe (``owes``) in
        one transaction, then call ``enqueue(new ids)`` (not called when none is new).

        Raises :class:`QueueUnavailable` (the queue refused: the ids are forgotten again, the
        owed work is kept for recovery) or :class:`StoreUnavailable` (the store is unreachable:
        nothing recorded, nothing queued).
        """
        ticket = self._submit(provider, delivery_ids, owes)
        new = ticket.new
        if new:
            try:
                enqueue(new)
            except BaseException as exc:
                forget(self.store, [(provider, i) for i in new])
                if isinstance(exc, redis.RedisError):
                    raise QueueUnavailable(
                        f"queue unreachable: {type(exc).__name__}: {exc}"
                    ) from exc
                raise
        return Admitted(new, len(delivery_ids) - len(new))

    def take(self, provider: str, deliveries: Sequence[Work]) -> Taken:
        """Record the new deliveries and queue one sync per CRM object for their records
        (merged into an identical waiting job, as ``worker.enqueue_sync`` does).

        Raises :class:`QueueUnavailable` or :class:`StoreUnavailable` with nothing recorded.
        """
        first: dict[str, Work] = {}
        for d in deliveries:
            first.setdefault(d.delivery_id, d)

        def records(new: list[str]) -> list[tuple[str, str]]:
            return [r for delivery_id in new for r in first[delivery_id].records]

        ticket = self._submit(provider, [d.delivery_id for d in deliveries], records=records)
        accepted = sum(1 for i in ticket.new if first[i].records)
        jobs = [j for j in ticket.queued if j is not None]
        duplicates = len(deliveries) - len(ticket.new)
        return Taken(accepted, duplicates, len(ticket.new) - accepted, jobs)

    def accept(
        self, provider: str, delivery_id: str, func: Callable[..., Any], kwargs: dict[str, Any]
    ) -> bool:
        """Record one delivery and queue ``func(**kwargs)``; False when it was a duplicate.

        Raises :class:`QueueUnavailable` or :class:`StoreUnavailable` with nothing recorded.
        """
        key = recording_key(provider, delivery_id)
        name = job_name(func)
        job_id = f"{name.replace('.', '_')}-{provider}-{key}"
        payload = {"func": name, "kwargs": kwargs}
        ticket = self._submit(
            provider,
            [delivery_id],
            lambda _new: [Owing(Owed.RECORDING, provider, key, job_id=job_id, payload=payload)],
            lambda _new: [JobSpec(job_id, func, kwargs)],
        )
        return bool(ticket.new)
