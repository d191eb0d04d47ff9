"""Write-back passes on many workers: one at a time, and after the work queued before them.

With one worker, jobs run in queue order: a write-back pass queued behind a burst's syncs runs
when they have all finished, and writes each record once. With N workers two things differ,
and this module puts them right:

- **One pass at a time.** Two write-back jobs can start together (one queued while the other
  ran): both would diff against the same ledger and send the CRM the same values twice. A pass
  therefore takes a lock in Redis, named after the queue (one deployment, one lock), holding its
  RQ job id (:func:`one_at_a_time`). A job that finds it held does not wait: its request stays
  owed in the store, and the holder, once done, queues one more pass if anything is still owed.
  A holder that died is recognised the way recovery recognises lost work (its job is no longer
  started on a worker that sends heartbeats) and the lock is taken over, so a crash never blocks
  write-back; :data:`LOCK_TTL_SECONDS` is only the last resort.
- **After the work ahead of it.** A pass queued behind syncs that other workers are still
  running would write verdicts and KPI figures those syncs are about to change, and write the
  same records again a moment later. So a pass first looks for sync and KPI jobs queued before
  it that a live worker is still doing, with their work still owed in the store
  (:func:`earlier_work_running`). If there are some it ends at once, its request still owed,
  and each of those jobs, once its work is settled, queues the pass again
  (:func:`write_back_waits`). Jobs queued after the pass never hold it back, so a steady stream
  of webhooks cannot starve write-back, and neither can a job whose worker died (recovery
  queues its work again).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from rq import Queue
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry
from rq.utils import as_text
from sqlalchemy import select
from sqlalchemy.orm import Session

from tasuki.owed import Owed, owed
from tasuki.queue import current_job_id, has_heartbeat, is_alive
from tasuki.store.models import OwedWork

LOCK_TTL_SECONDS = 3600
"""A lock Redis keeps no longer than this, whatever happened to its holder."""

_AHEAD = (Owed.SYNC.value, Owed.JUDGE.value, Owed.KPIS.value)
"""Work that changes what a write-back pass would write."""

_AHEAD_FUNCS = frozenset({"worker.sync_records", "worker.reconcile", "worker.compute_kpis"})
"""The jobs doing that work, whose end queues a waiting pass again."""

# Take the lock when it is free or still held by the holder found dead (compare and set).
_TAKE = """
local holder = redis.call('GET', KEYS[1])
if (holder == false and ARGV[3] == '') or holder == ARGV[3] then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    return 1
end
return 0
"""

# Release the lock only if this job still holds it.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


def lock_key(queue: Queue, name: str) -> str:
    """The Redis key of the lock ``name`` of the deployment whose queue is ``queue``."""
    return f"tasuki:{queue.name}:lock:{name}"


def runs(queue: Queue, job_id: str, abandoned_after: float) -> bool:
    """True while the job ``job_id`` (this id only) is started on a worker that sent a
    heartbeat in the last ``abandoned_after`` seconds."""
    job = queue.fetch_job(job_id)
    if job is None or job.get_status() != JobStatus.STARTED:
        return False
    return has_heartbeat(queue, job, abandoned_after)


@contextmanager
def one_at_a_time(queue: Queue, name: str, abandoned_after: float) -> Iterator[bool]:
    """Hold the lock ``name`` for the block and yield True; yield False, holding nothing, while
    a live job holds it. Outside an RQ job the holder is this process."""
    conn = queue.connection
    key = lock_key(queue, name)
    me = current_job_id() or f"process-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    ttl_ms = str(LOCK_TTL_SECONDS * 1000)
    held = bool(conn.eval(_TAKE, 1, key, me, ttl_ms, ""))
    if not held:
        holder = conn.get(key)
        found = "" if holder is None else as_text(holder)
        # A job RQ runs again after its worker died keeps its id: its own lock is not a rival's.
        if not found or found == me or not runs(queue, found, abandoned_after):
            held = bool(conn.eval(_TAKE, 1, key, me, ttl_ms, found))
    try:
        yield held
    finally:
        if held:
            conn.eval(_RELEASE, 1, key, me)


def _in_flight(queue: Queue, since: datetime, abandoned_after: float) -> list[Job]:
    """This queue's jobs taken by a live worker, of the kinds a pass waits for, that were queued
    before ``since`` (a handful: one per worker)."""
    registry = StartedJobRegistry(queue=queue)
    ids = set(registry.get_job_ids(cleanup=False))
    # Taken off the queue, not yet marked started: RQ keeps them in an intermediate list.
    taken = queue.connection.lrange(queue.intermediate_queue_key, 0, -1)
    ids |= {as_text(i) for i in taken}
    found = []
    for job_id in ids:
        job = queue.fetch_job(job_id)
        if job is None or job.origin != queue.name or job.func_name not in _AHEAD_FUNCS:
            continue
        queued_at = job.enqueued_at
        if queued_at is None or _aware(queued_at) >= since:
            continue
        if job.get_status() == JobStatus.STARTED and not has_heartbeat(queue, job, abandoned_after):
            continue  # its worker died: recovery takes its work on
        found.append(job)
    return found


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def earlier_work_running(
    session: Session, queue: Queue, since: datetime, abandoned_after: float
) -> bool:
    """True while a sync or KPI job queued before ``since`` is still being done on a live
    worker and its work is still owed: a write-back pass now would write what it is about to
    change, and that job queues the pass again when it has settled its work.

    A sync's debts name the job queued for it; the job that runs may carry that id with
    ``-next`` or a suffix of its own (:func:`tasuki.queue.enqueue_once`). KPI debts name no job:
    any KPI computation in flight with KPIs still owed counts."""
    ahead = _in_flight(queue, _aware(since), abandoned_after)
    if not ahead:
        return False
    rows = session.execute(
        select(OwedWork.kind, OwedWork.job_id).where(OwedWork.kind.in_(_AHEAD)).distinct()
    ).all()
    kpis_owed = any(kind == Owed.KPIS.value for kind, _ in rows)
    named = {job_id for kind, job_id in rows if kind != Owed.KPIS.value and job_id}
    for job in ahead:
        if job.func_name == "worker.compute_kpis":
            if kpis_owed:
                return True
        elif any(job.id == n or job.id.startswith(f"{n}-") for n in named):
            return True
    return False


def write_back_waits(session: Session, queue: Queue, abandoned_after: float) -> bool:
    """True when a write-back pass is owed that no job waits, is scheduled or runs for: one that
    ended waiting for this job's work, or whose request a locked pass left. (A pass deferred to
    a scheduled job, as when the CRM's daily budget is tight, is left to that job.)"""
    return any(
        debt.job_id is None or not is_alive(queue, debt.job_id, abandoned_after)
        for debt in owed(session, Owed.WRITE_BACK)
    )
