"""The intake journal: webhook deliveries accepted in one Redis call, moved to the store in bulk.

A receiver answers within a Redis round trip. :meth:`Journal.append` runs one script that, for
each delivery id, remembers it (``SET NX`` with :data:`DELIVERY_MEMORY` to live: a retry inside
that window is answered as a duplicate) and adds the new ones, with the work they owe, as one
entry of a Redis stream. :meth:`Journal.take` then moves entries to the store in batches: one
transaction inserts their delivery ids (``INSERT … ON CONFLICT DO NOTHING RETURNING``, so the
store decides what is new, whoever else takes the same entry) with the work the new ones owe
(:mod:`tasuki.owed`), commits, queues the jobs in one script (:func:`tasuki.queue.enqueue_many`),
and only then acknowledges the entries. The guarantees:

1. Redis down: the script fails, the receiver answers 503 and nothing is recorded anywhere.
2. A 200 means the delivery is in the stream. Redis's append-only file keeps it across a Redis
   restart (run Redis with ``appendonly yes``, as ``deploy/compose.yaml`` does); ``tasuki serve``
   takes entries into the store within milliseconds of the answer.
3. Store down while Redis is up: the entries wait in the stream (nothing lost, still 200s) and
   are taken once the store answers.
4. A taker killed anywhere leaves its entries pending in the stream's consumer group: the next
   take claims them (``XAUTOCLAIM``) after :data:`CLAIM_AFTER_MS`. Taking an entry twice is
   harmless: the store's unique delivery ids make exactly one taker see each id as new, and
   only it owes and queues the work. Work committed but not queued (Redis lost between the two)
   is owed in the store, and ``worker.recover`` queues it.

This module belongs to the core: the sync job a taken notice owes is handed in (``sync_job``),
so the core names no job of the application's.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from rq import Queue
from sqlalchemy.orm import Session

from tasuki.errors import QueueUnavailable
from tasuki.owed import Owed, Owing, owe_all
from tasuki.queue import JobSpec, enqueue_many, job_name
from tasuki.store.db import Store
from tasuki.store.models import Delivery
from tasuki.store.upsert import dialect_insert
from tasuki.testhooks import checkpoint

log = logging.getLogger(__name__)

DELIVERY_MEMORY = timedelta(days=7)
"""How long delivery ids are remembered for dedupe (in Redis and in the store): past every
provider's retry window (HubSpot retries for 24 hours, Salesforce Outbound Messages for 24
hours, Zoom for 3 days)."""

SYNC_JOB_IDS = 200
"""Most record ids one sync job takes when taken notices are merged (one delivery's records of
one object always stay in one job)."""

TAKE_BATCH = 500
"""Most stream entries (requests) taken into the store in one transaction."""

CLAIM_AFTER_MS = 30_000
"""How long an entry another taker read may stay unacknowledged before it is taken over: that
taker was killed (a take of a full batch lasts well under a second)."""

WAIT_SLICE_MS = 250
"""Longest single blocking read of :meth:`Journal.wait`: under the connection's read timeout
(:data:`tasuki.queue.REDIS_TIMEOUT`), so a blocked read is never taken for a frozen Redis."""

GROUP = "store"
"""The stream's consumer group: every taker, in any process, reads through it."""

SyncJob = Callable[[str, Sequence[str]], JobSpec]
"""Builds the job syncing some records of one CRM object (``worker.sync_job``)."""

Entry = tuple[bytes, dict[bytes, bytes]]
"""A stream entry as redis-py reads it: its id and fields (``p`` provider, ``d`` notices)."""

Taking = tuple[str, "datetime", "Notice"]
"""One notice being taken: its provider, when Redis took it, the notice."""

_APPEND = """
-- KEYS[1] the journal stream, then one key per delivery id (its "seen" marker); ARGV[1]
-- seconds a marker lives, ARGV[2] the provider, then per delivery its JSON. An id not seen
-- before is marked and its JSON goes into one stream entry with the other new ones. Returns
-- 1 (new) or 0 (seen) per delivery.
local flags, parts = {}, {}
for i = 2, #KEYS do
    if redis.call("SET", KEYS[i], "1", "NX", "EX", ARGV[1]) then
        flags[#flags + 1] = 1
        parts[#parts + 1] = ARGV[i + 1]
    else
        flags[#flags + 1] = 0
    end
end
if #parts > 0 then
    redis.call("XADD", KEYS[1], "*", "p", ARGV[2], "d", "[" .. table.concat(parts, ",") .. "]")
end
return flags
"""


@dataclass(frozen=True)
class Notice:
    """One delivery as the journal keeps it: its id, the CRM records it says changed
    (``(object, id)`` pairs) and, for a delivery that is its own job (a recording), that job."""

    delivery_id: str
    records: Sequence[tuple[str, str]] = ()
    job: JobSpec | None = None
    """The job doing this delivery's work, owed as ``Owed.RECORDING`` under ``owed_key``."""
    owed_key: str = ""

    def to_json(self) -> str:
        out: dict[str, Any] = {"id": self.delivery_id}
        if self.records:
            out["r"] = [list(r) for r in self.records]
        if self.job is not None:
            func = self.job.func if isinstance(self.job.func, str) else job_name(self.job.func)
            out["j"] = {"id": self.job.job_id, "f": func, "k": self.job.kwargs, "o": self.owed_key}
        return json.dumps(out, separators=(",", ":"), default=str)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Notice:
        job = data.get("j")
        return cls(
            str(data["id"]),
            [(str(o), str(i)) for o, i in data.get("r", ())],
            None if job is None else JobSpec(str(job["id"]), str(job["f"]), dict(job["k"])),
            "" if job is None else str(job["o"]),
        )


@dataclass
class Stored:
    """What one :meth:`Journal.take` moved into the store."""

    entries: int = 0
    deliveries: int = 0
    new: int = 0
    jobs: int = 0


@dataclass
class Journal:
    """The intake stream of one queue (its keys carry the queue's name, so deployments sharing
    a Redis keep apart) and its script, registered once per journal."""

    queue: Queue
    owner: str = "-"
    """The identity of the store the deliveries go to (:meth:`tasuki.store.db.Store.identity`):
    ids are remembered per store, so a store made anew beside an old Redis misses nothing."""
    consumer: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    """This process's name in the consumer group (a killed taker's entries are claimed from
    it by name)."""
    _append: Any = field(init=False, repr=False)
    _threads: threading.local = field(init=False, repr=False, default_factory=threading.local)
    """Each receiving thread's own Redis connection (:meth:`_run_append`)."""

    def __post_init__(self) -> None:
        self._append = self.connection.register_script(_APPEND)

    @property
    def connection(self) -> redis.Redis:
        return self.queue.connection

    @property
    def stream(self) -> str:
        return f"tasuki:intake:{self.queue.name}"

    def seen_key(self, provider: str, delivery_id: str) -> str:
        return f"tasuki:seen:{self.queue.name}:{self.owner}:{provider}:{delivery_id}"

    def append(self, provider: str, notices: Sequence[Notice]) -> list[bool]:
        """Record the notices not seen before for ``provider``, in one atomic script; per
        notice, whether it was new. Raises :class:`QueueUnavailable` with nothing recorded
        when Redis does not answer."""
        if not notices:
            return []
        keys = [self.stream, *(self.seen_key(provider, n.delivery_id) for n in notices)]
        args: list[Any] = [int(DELIVERY_MEMORY.total_seconds()), provider]
        args += [n.to_json() for n in notices]
        try:
            flags = self._run_append(keys, args)
        except redis.RedisError as exc:
            raise QueueUnavailable(f"queue unreachable: {type(exc).__name__}: {exc}") from exc
        return [bool(f) for f in flags]

    def _run_append(self, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """The script on this thread's own connection to Redis (made from the queue's pool's
        settings: same address, timeouts and health checks), kept for the thread's life.

        A receiver's one Redis call is the hottest line of intake. Through the client's pool it
        costs about three times the CPU of the command itself (a pool lock, a check for stale
        bytes, argument inspection, a retry wrapper). A connection that only its own thread uses
        needs none of that. A connection that fails is closed; one that was refused or reset
        (Redis restarted since its last use) is dialled again once, as the client's retry
        would. A timeout is not retried: a frozen Redis answers 503 at once.
        """
        conn = getattr(self._threads, "connection", None)
        if conn is None:
            conn = self._threads.connection = self.connection.connection_pool.make_connection()
        try:
            try:
                return self._send_append(conn, keys, args)
            except redis.ConnectionError:
                conn.disconnect()
                return self._send_append(conn, keys, args)  # dials again
        except redis.RedisError:
            conn.disconnect()
            raise

    def _send_append(self, conn: Any, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            conn.send_command("EVALSHA", self._append.sha, len(keys), *keys, *args)
            return conn.read_response()
        except redis.exceptions.NoScriptError:  # Redis restarted empty, or was flushed
            conn.send_command("EVAL", _APPEND, len(keys), *keys, *args)
            return conn.read_response()

    def persisted(self) -> bool | None:
        """Whether Redis keeps an append-only file (so a delivery answered 200 survives a Redis
        restart before it is stored); ``None`` when Redis does not say (``INFO`` refused)."""
        try:
            info: Any = self.connection.info("persistence")
        except redis.ResponseError:
            return None
        return bool(int(info.get("aof_enabled", 0)))

    def backlog(self) -> int:
        """Entries accepted and not yet acknowledged as taken into the store."""
        return int(self.connection.xlen(self.stream))

    def wait(self, seconds: float) -> bool:
        """Block until the stream holds an entry (True) or ``seconds`` pass (False): a taker in
        another process than the receivers is woken by Redis itself, the moment one appends.

        Blocks in slices of :data:`WAIT_SLICE_MS` (shorter than the connection's read timeout).
        The stream's last id is read before its length, so an entry appended between the two
        is either counted or read.
        """
        until = time.monotonic() + seconds
        while True:
            last = self._last_id()
            if self.backlog():
                return True
            left_ms = int(1000 * (until - time.monotonic()))
            if left_ms <= 0:
                return False
            got: Any = self.connection.xread(
                {self.stream: last}, count=1, block=min(left_ms, WAIT_SLICE_MS)
            )
            if got:
                return True

    def _last_id(self) -> bytes | str:
        """The id of the newest entry ever added (deleted or not); "0-0" before the first."""
        try:
            info: Any = self.connection.xinfo_stream(self.stream)
        except redis.ResponseError:  # no such key yet
            return "0-0"
        last: bytes | str = info["last-generated-id"]
        return last

    def take(
        self, store: Store, sync_job: SyncJob, *, claim_after_ms: int = CLAIM_AFTER_MS
    ) -> Stored:
        """Move every entry waiting (and every entry a killed taker left) into the store and
        queue its work, batch by batch, until the stream is empty; what was moved."""
        taken = Stored()
        self._ensure_group()
        own_pending = True  # first this consumer's own unacknowledged entries (a failed take)
        while True:
            entries = self._read(own_pending, claim_after_ms)
            own_pending = False
            if not entries:
                return taken
            self._take_batch(store, sync_job, entries, taken)

    def _ensure_group(self) -> None:
        try:
            self.connection.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _read(self, own_pending: bool, claim_after_ms: int) -> list[Entry]:
        """Up to :data:`TAKE_BATCH` entries: this consumer's own unacknowledged ones (after a
        failed take) when ``own_pending``, then those another taker left idle past
        ``claim_after_ms``, then new ones."""
        entries: list[Entry] = []
        if own_pending:
            entries += self._read_group("0", TAKE_BATCH)
        if len(entries) < TAKE_BATCH:
            claimed: Any = self.connection.xautoclaim(
                self.stream,
                GROUP,
                self.consumer,
                min_idle_time=claim_after_ms,
                start_id="0-0",
                count=TAKE_BATCH - len(entries),
            )
            entries += [e for e in claimed[1] if e[1]]  # a deleted entry is claimed as None
        if len(entries) < TAKE_BATCH:
            entries += self._read_group(">", TAKE_BATCH - len(entries))
        return list({e[0]: e for e in entries}.values())

    def _read_group(self, after: str, count: int) -> list[Entry]:
        got: Any = self.connection.xreadgroup(GROUP, self.consumer, {self.stream: after}, count)
        return [e for _stream, found in got or () for e in found if e[1]]

    def _take_batch(
        self,
        store: Store,
        sync_job: SyncJob,
        entries: Sequence[Entry],
        taken: Stored,
    ) -> None:
        batch: list[Taking] = []
        for entry_id, fields in entries:
            provider = fields[b"p"].decode()
            at = _entry_time(entry_id)
            batch += [(provider, at, Notice.from_json(d)) for d in json.loads(fields[b"d"])]
        with store.session() as session:
            new = _insert_new(session, batch)
            syncs = _sync_jobs([n for p, _at, n in batch if (p, n.delivery_id) in new], sync_job)
            owings = [
                Owing(Owed.SYNC, spec.kwargs["object"], rid, job_id=spec.job_id)
                for spec in syncs
                for rid in spec.kwargs["ids"]
            ]
            jobs: list[JobSpec] = []
            for provider, _at, n in batch:
                if n.job is not None and (provider, n.delivery_id) in new:
                    payload = {"func": n.job.func, "kwargs": n.job.kwargs}
                    owings.append(
                        Owing(Owed.RECORDING, provider, n.owed_key, n.job.job_id, payload)
                    )
                    jobs.append(n.job)
            if owings:
                owe_all(session, owings)
        # Committed: from here the work is owed in the store whatever happens to Redis.
        checkpoint("intake.committed")
        enqueue_many(self.queue, [*syncs, *jobs])
        checkpoint("intake.queued")
        ids = [e[0] for e in entries]
        pipe = self.connection.pipeline(transaction=False)
        pipe.xack(self.stream, GROUP, *ids)
        pipe.xdel(self.stream, *ids)
        pipe.execute()
        taken.entries += len(entries)
        taken.deliveries += len(batch)
        taken.new += len(new)
        taken.jobs += len(syncs) + len(jobs)


def _entry_time(entry_id: bytes) -> datetime:
    """When Redis took the entry: the milliseconds of its stream id (the delivery's arrival)."""
    ms = int(entry_id.split(b"-", 1)[0])
    return datetime.fromtimestamp(ms / 1000, UTC)


def _insert_new(session: Session, batch: Sequence[Taking]) -> set[tuple[str, str]]:
    """Insert the (provider, delivery id) pairs not yet in the store; returns those that went
    in (an id twice in the batch goes in once, at its first arrival)."""
    rows: dict[tuple[str, str], datetime] = {}
    for provider, at, n in batch:
        rows.setdefault((provider, n.delivery_id), at)
    if not rows:
        return set()
    stmt = (
        dialect_insert(session, Delivery)
        .on_conflict_do_nothing(index_elements=["provider", "delivery_id"])
        .returning(Delivery.provider, Delivery.delivery_id)
    )
    values = [{"provider": p, "delivery_id": i, "received_at": at} for (p, i), at in rows.items()]
    return {(p, i) for p, i in session.connection().execute(stmt, values)}


def _sync_jobs(notices: Sequence[Notice], sync_job: SyncJob) -> list[JobSpec]:
    """One sync per CRM object for the records of ``notices``: a notice's records of one object
    stay in one job, and a job takes more notices up to :data:`SYNC_JOB_IDS` ids. The sync of a
    record fetches its current state, so one fetch serves every notice about it."""
    chunks: dict[str, list[set[str]]] = {}
    for n in notices:
        mine: dict[str, set[str]] = {}
        for obj, rid in n.records:
            mine.setdefault(obj, set()).add(rid)
        for obj, ids in sorted(mine.items()):
            sets = chunks.setdefault(obj, [set()])
            if sets[-1] and len(sets[-1] | ids) > SYNC_JOB_IDS:
                sets.append(set())
            sets[-1] |= ids
    return [sync_job(obj, sorted(ids)) for obj, sets in sorted(chunks.items()) for ids in sets]
