"""The job queue: RQ on the Redis at ``TASUKI_REDIS_URL``, or on an in-process stand-in.

With no Redis configured (the demo, a laptop), an in-process fakeredis server plays Redis and a
burst worker in the same process runs the jobs: the same job functions, the same RQ code path.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from typing import Any

import redis
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError
from rq.job import Job, JobStatus

from tasuki.errors import QueueUnavailable
from tasuki.settings import Settings

SYNC_RETRY = Retry(max=5, interval=[10, 30, 60, 300, 900])
"""A failed sync (CRM down, rate limited) is retried with growing waits before it is parked."""

_fake_server: Any = None


def connect(settings: Settings) -> redis.Redis:
    """A Redis connection: the real one when configured, else the process's in-memory stand-in."""
    if settings.redis_url:
        return redis.Redis.from_url(
            settings.redis_url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30
        )
    import fakeredis

    global _fake_server
    if _fake_server is None:
        _fake_server = fakeredis.FakeServer()
    conn: redis.Redis = fakeredis.FakeRedis(server=_fake_server)
    return conn


def job_queue(settings: Settings, connection: redis.Redis | None = None) -> Queue:
    """The queue tasuki's jobs go to."""
    return Queue(settings.config.queue_name, connection=connection or connect(settings))


_WAITING = (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED)


def enqueue_once(queue: Queue, job_id: str, func: str, **kwargs: Any) -> Job | None:
    """Enqueue unless an identical job is already waiting; ``None`` when merged into that one.

    A job that already started (or failed) may have read the record before this change, so the
    work goes to a follow-up job, ``<id>-next``, which later notices merge into in turn; only
    when that one has started too does a job with a fresh id go in.
    """
    job_id = job_id.replace(":", "-")  # rq 3 takes only letters, digits, "_" and "-" in ids
    options: dict[str, Any] = {
        "kwargs": kwargs,
        "result_ttl": 0,
        "failure_ttl": 7 * 24 * 3600,
        "retry": SYNC_RETRY,
    }
    try:
        for candidate in (job_id, f"{job_id}-next"):
            try:
                return queue.enqueue(func, job_id=candidate, unique=True, **options)
            except DuplicateJobError:
                existing = queue.fetch_job(candidate)
                if existing is not None and existing.get_status() in _WAITING:
                    return None
        return queue.enqueue(func, job_id=f"{job_id}-{uuid.uuid4().hex[:8]}", **options)
    except redis.RedisError as exc:
        raise QueueUnavailable(f"queue unreachable: {type(exc).__name__}") from None


def enqueue_sync(queue: Queue, object: str, ids: Sequence[str]) -> Job | None:
    """Queue a sync of CRM records ``ids`` of the CRM object ``object``.

    Notices for the same records that arrive while this job waits are merged into it.
    """
    key = hashlib.sha1("\0".join(sorted(set(ids))).encode()).hexdigest()[:16]
    return enqueue_once(
        queue, f"sync:{object}:{key}", "worker.sync_records", object=object, ids=sorted(set(ids))
    )


def enqueue_write_back(queue: Queue) -> Job | None:
    """Queue one write-back pass; while one is waiting, more requests merge into it."""
    return enqueue_once(queue, "write_back", "worker.write_back")


def enqueue_kpis(queue: Queue) -> Job | None:
    """Queue one KPI computation; while one is waiting, more requests merge into it."""
    return enqueue_once(queue, "compute_kpis", "worker.compute_kpis")


def enqueue_recording(queue: Queue, provider: str, delivery_id: str, payload: Any) -> Job | None:
    """Queue keeping one MiiTel/Zoom delivery (``worker.ingest_recording``)."""
    key = hashlib.sha1(f"{provider}\0{delivery_id}".encode()).hexdigest()[:16]
    return enqueue_once(
        queue,
        f"recording:{provider}:{key}",
        "worker.ingest_recording",
        provider=provider,
        payload=payload,
    )


def enqueue_match_recordings(queue: Queue) -> Job | None:
    """Queue one pass linking pending recordings; while one waits, more requests merge into it."""
    return enqueue_once(queue, "match_recordings", "worker.match_recordings")
