"""The job queue: RQ on the Redis at ``TASUKI_REDIS_URL``, or on an in-process stand-in.

With no Redis configured (the demo, a laptop), an in-process fakeredis server plays Redis and a
burst worker in the same process runs the jobs: the same job functions, the same RQ code path.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import fakeredis
import redis
from rq import Queue, Retry, get_current_job
from rq.exceptions import DuplicateJobError
from rq.executions import Execution, ExecutionRegistry
from rq.job import Job, JobStatus
from rq.utils import now

from tasuki.errors import QueueUnavailable
from tasuki.settings import Settings

SYNC_RETRY = Retry(max=5, interval=[10, 30, 60, 300, 900])
"""A failed sync (CRM down, rate limited) is retried with growing waits before it is parked."""

REDIS_TIMEOUT = 0.5
"""Seconds to connect to Redis and to wait for an answer. A frozen Redis (accepting
connections, answering nothing) then costs a webhook at most this long before its 503; RQ's
worker raises the read timeout of its own connection for its blocking dequeue."""

MONITORING_INTERVAL = 10
"""Seconds between the heartbeats a worker sends for the job it runs (RQ's default is 30)."""

EMBEDDED_HOST = "tasuki-embedded-queue"
"""The address of the in-process stand-in for Redis (the demo's): fakeredis keeps one server per
address, so every connection to it in this process sees the same queues, as with a real server."""


def connect(settings: Settings) -> redis.Redis:
    """A Redis connection: the real one when configured, else the process's in-memory stand-in."""
    if settings.redis_url:
        return redis.Redis.from_url(
            settings.redis_url,
            socket_connect_timeout=REDIS_TIMEOUT,
            socket_timeout=REDIS_TIMEOUT,
            health_check_interval=30,
        )
    conn: redis.Redis = fakeredis.FakeRedis(host=EMBEDDED_HOST)
    return conn


def job_queue(settings: Settings, connection: redis.Redis | None = None) -> Queue:
    """The queue tasuki's jobs go to."""
    return Queue(settings.config.queue_name, connection=connection or connect(settings))


_WAITING = (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED)


def rq_job_id(job_id: str) -> str:
    """``job_id`` as rq 3 takes it: only letters, digits, "_" and "-"."""
    return job_id.replace(":", "-")


def is_alive(queue: Queue, job_id: str, abandoned_after: float) -> bool:
    """True while the job ``job_id`` (or its follow-up ``<id>-next``) waits in the queue or runs
    on a worker that sent a heartbeat in the last ``abandoned_after`` seconds; False when Redis
    lost it, it finished or failed, or its worker died (recovery then queues the work again;
    RQ's own clean-up later retries the dead job, which finds nothing owed)."""
    for candidate in (rq_job_id(job_id), f"{rq_job_id(job_id)}-next"):
        job = queue.fetch_job(candidate)
        if job is None:
            continue
        status = job.get_status()
        if status in _WAITING:
            return True
        if status == JobStatus.STARTED and has_heartbeat(queue, job, abandoned_after):
            return True
    return False


def has_heartbeat(queue: Queue, job: Job, abandoned_after: float) -> bool:
    """True when a worker running ``job`` sent a heartbeat in the last ``abandoned_after``
    seconds."""
    now = time.time()
    registry = ExecutionRegistry(job.id, connection=queue.connection)
    for execution_id in registry.get_execution_ids():
        try:
            execution = Execution.fetch(execution_id, job.id, queue.connection)
        except ValueError:  # its hash expired with the worker's heartbeats
            continue
        if now - execution.last_heartbeat.timestamp() < abandoned_after:
            return True
    return False


def job_name(func: Callable[..., Any]) -> str:
    """The name rq stores for a job function (``worker.sync_records``), as owed work keeps it."""
    return f"{func.__module__}.{func.__qualname__}"


def enqueue_once(queue: Queue, job_id: str, func: Callable[..., Any], **kwargs: Any) -> Job | None:
    """:func:`enqueue_named` for a job function named in code, where mypy sees it."""
    return enqueue_named(queue, job_id, func, **kwargs)


def enqueue_named(
    queue: Queue, job_id: str, func: Callable[..., Any] | str, **kwargs: Any
) -> Job | None:
    """Enqueue unless an identical job is already waiting; ``None`` when merged into that one.
    ``func`` is a function, or the name of one read back from the store (owed work recovered
    after a restart).

    A job that already started (or failed) may have read the record before this change, so the
    work goes to a follow-up job, ``<id>-next``, which later notices merge into in turn; only
    when that one has started too does a job with a fresh id go in.
    """
    job_id = rq_job_id(job_id)
    options: dict[str, Any] = {
        "kwargs": kwargs,
        "result_ttl": 0,
        "failure_ttl": 7 * 24 * 3600,
        "retry": SYNC_RETRY,
        "description": describe(func, kwargs),
    }
    target: Any = func  # rq takes a function or its name alike
    try:
        for candidate in (job_id, f"{job_id}-next"):
            try:
                return queue.enqueue(target, job_id=candidate, unique=True, **options)
            except DuplicateJobError:
                existing = queue.fetch_job(candidate)
                if existing is not None and existing.get_status() in _WAITING:
                    return None
        return queue.enqueue(target, job_id=f"{job_id}-{uuid.uuid4().hex[:8]}", **options)
    except redis.RedisError as exc:
        raise QueueUnavailable(f"queue unreachable: {type(exc).__name__}: {exc}") from exc


@dataclass(frozen=True)
class JobSpec:
    """A job to queue with :func:`enqueue_many`: the id it is known by and what it runs."""

    job_id: str
    """Its id (rq's characters are enforced by :func:`rq_job_id`)."""
    func: Callable[..., Any] | str
    """The job function (a name only when read back from the store)."""
    kwargs: dict[str, Any] = field(default_factory=dict)


_ENQUEUE_MANY = """
-- KEYS[1] the queue's list, KEYS[2] rq's set of queues; ARGV[1] the queue's key, ARGV[2] the
-- job key prefix, then per job: id, fresh suffix, its hash fields and values joined by NUL
-- (all but "data"), its "data". Per job, the same choice as enqueue_once: the first of <id>,
-- <id>-next that does not exist is written and pushed; one that exists and still waits takes
-- the work (merged: ""); when both exist and neither waits, <id>-<suffix> goes in. Returns the
-- id queued per job, or "".
local waiting = {queued = true, scheduled = true, deferred = true}
local function split(blob)
    local out, start = {}, 1
    while true do
        local stop = string.find(blob, "\0", start, true)
        if not stop then
            out[#out + 1] = string.sub(blob, start)
            return out
        end
        out[#out + 1] = string.sub(blob, start, stop - 1)
        start = stop + 1
    end
end
redis.call("SADD", KEYS[2], ARGV[1])
local out = {}
for i = 3, #ARGV, 4 do
    local base, suffix = ARGV[i], ARGV[i + 1]
    local chosen = nil
    for _, candidate in ipairs({base, base .. "-next"}) do
        local key = ARGV[2] .. candidate
        if redis.call("EXISTS", key) == 0 then
            chosen = candidate
            break
        end
        if waiting[redis.call("HGET", key, "status") or ""] then
            chosen = ""
            break
        end
    end
    if chosen == nil then
        chosen = base .. "-" .. suffix
    end
    if chosen ~= "" then
        local key = ARGV[2] .. chosen
        redis.call("HSET", key, "data", ARGV[i + 3], unpack(split(ARGV[i + 2])))
        redis.call("RPUSH", KEYS[1], chosen)
    end
    out[#out + 1] = chosen
end
return out
"""


def enqueue_many(queue: Queue, specs: Sequence[JobSpec]) -> list[str | None]:
    """Queue every job of ``specs`` in one Redis round trip (one atomic script), each exactly as
    :func:`enqueue_once` would: the id actually queued per spec, or ``None`` when its work was
    merged into an identical job still waiting (or into a spec earlier in the same call).

    The job hashes are rq's own (``Queue.create_job`` and ``Job.to_dict``), so any rq worker
    runs them. Raises :class:`QueueUnavailable` when Redis does not answer.
    """
    if not specs:
        return []
    args: list[Any] = [queue.key, queue.job_class.redis_job_namespace_prefix]
    try:
        version = queue.get_redis_server_version()
        for spec in specs:
            func: Any = spec.func
            job = queue.create_job(
                func,
                kwargs=spec.kwargs,
                job_id=rq_job_id(spec.job_id),
                result_ttl=0,
                failure_ttl=7 * 24 * 3600,
                retry=SYNC_RETRY,
                description=describe(_func_name(spec.func), spec.kwargs),
            )
            job.redis_server_version = version
            job.origin = queue.name
            job.enqueued_at = now()
            job.timeout = job.timeout if job.timeout is not None else queue._default_timeout
            job._status = JobStatus.QUEUED
            fields = job.to_dict()
            data = fields.pop("data")
            # One argument for the fields: each argument costs redis-py more than Redis.
            blob = "\0".join(
                f"{k}\0{v.value if isinstance(v, Enum) else v}"
                for k, v in fields.items()
                if v is not None and v != ""
            )
            if blob.count("\0") % 2 == 0:  # a NUL inside a value (never: ids refuse NUL)
                raise ValueError(f"job {job.id}: a field holds a NUL character")
            args += [job.id, uuid.uuid4().hex[:8], blob, data]
        # Registering only hashes the text: the script is sent once per server (EVALSHA, and
        # SCRIPT LOAD when the server does not know it yet).
        script = queue.connection.register_script(_ENQUEUE_MANY)
        chosen = script(keys=[queue.key, Queue.redis_queues_keys], args=args)
    except redis.RedisError as exc:
        raise QueueUnavailable(f"queue unreachable: {type(exc).__name__}: {exc}") from exc
    return [(c.decode() if isinstance(c, bytes) else str(c)) or None for c in chosen]


def _func_name(func: str | Callable[..., Any]) -> str:
    if isinstance(func, str):
        return func
    return f"{func.__module__}.{func.__qualname__}"


def describe(func: Callable[..., Any] | str, kwargs: dict[str, Any]) -> str:
    """A job's description, as RQ logs it and ``rq info`` shows it: the function and its small
    arguments; a payload (a provider's whole delivery) is left out and an id list counted."""
    shown = []
    for key, value in sorted(kwargs.items()):
        if key == "payload":
            continue
        if isinstance(value, list | tuple) and len(value) > 3:
            shown.append(f"{key}=[{len(value)} ids]")
        else:
            shown.append(f"{key}={value!r}")
    name = func if isinstance(func, str) else job_name(func)
    return f"{name}({', '.join(shown)})"[:200]


def sync_job_id(object: str, ids: Sequence[str]) -> str:
    """The id of the job syncing ``ids`` of CRM object ``object`` (the same ids, the same job)."""
    key = hashlib.sha1("\0".join(sorted(set(ids))).encode()).hexdigest()[:16]
    return rq_job_id(f"sync:{object}:{key}")


def recording_key(provider: str, delivery_id: str) -> str:
    """A short, job-id-safe key of one MiiTel/Zoom delivery."""
    return hashlib.sha1(f"{provider}\0{delivery_id}".encode()).hexdigest()[:16]


def recording_job_id(provider: str, key: str) -> str:
    """The id of the job that keeps the delivery ``key`` of ``provider``."""
    return rq_job_id(f"recording:{provider}:{key}")


def current_job_id() -> str | None:
    """The id of the RQ job this code runs in, or None outside a job."""
    job = get_current_job()
    return None if job is None else str(job.id)
