"""Run history: every job execution recorded in the store's ``job_runs`` table.

RQ drops a job's result as soon as it finishes (``result_ttl`` 0: results are figures nobody
reads from Redis), so the outcome of a sync, a KPI computation or a write-back pass would
otherwise exist only in the tables it changed. :func:`recorded` wraps each job function of
:mod:`worker`: a row goes in when the job starts (``started``) and is completed when it ends,
``finished`` with the figures the job returned, or ``failed`` with the error, and the run's
duration. A row left ``started`` is a run whose process died (a killed worker, a timeout that
took the work horse). The wrapper works the same under ``tasuki worker``, the demo's
in-process worker and a direct call (a CLI write-back has no job id but is a run all the same).

It also keeps, per queue, two counters in Redis that the metrics read at scrape time (so the
figures of every worker on every host reach one scrape): runs by job and outcome, and seconds
spent per job; and the CRM's API usage when the connector reports it (:class:`ReportsApiUsage`).
Recording never fails a job: a store or Redis error while recording is logged and the job's own
outcome stands.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ParamSpec, Protocol, TypeVar, runtime_checkable

import redis
from rq import get_current_job
from rq.job import Job
from sqlalchemy import delete, select, update
from sqlalchemy.exc import SQLAlchemyError

from tasuki import logs
from tasuki.runtime import Runtime
from tasuki.store.db import Store
from tasuki.store.models import JobRun, WriteRejection, WriteRun, utcnow

log = logging.getLogger(__name__)

RUN_HISTORY = timedelta(days=30)
"""How long a run stays in ``job_runs`` (``worker.prune_deliveries`` forgets older ones)."""

METRICS_PREFIX = "tasuki:metrics"
"""Redis key prefix of the counters the metrics read: ``<prefix>:<queue>:runs`` …"""

ERROR_CHARS = 2000
"""Longest error text kept with a failed run (the traceback stays in RQ's failed registry)."""

KEPT_ARGS_EXCLUDED = frozenset({"payload"})
"""Job arguments not copied into the run: a recording's payload is the provider's whole
delivery (people's phone numbers and e-mail addresses); it is kept in its own table."""


class RunStatus:
    """What a recorded run came to."""

    STARTED = "started"
    FINISHED = "finished"
    FAILED = "failed"


@runtime_checkable
class ReportsApiUsage(Protocol):
    """A connector that knows how much of the CRM's daily API allowance is spent."""

    def api_usage(self) -> tuple[int, int] | None:
        """(calls used, daily allowance) as the CRM last reported, or None when unknown."""
        ...


def runs_key(queue: str) -> str:
    """The Redis hash counting runs of ``queue`` by ``job|status``."""
    return f"{METRICS_PREFIX}:{queue}:runs"


def seconds_key(queue: str) -> str:
    """The Redis hash summing the seconds the runs of ``queue`` took, by job."""
    return f"{METRICS_PREFIX}:{queue}:seconds"


def api_usage_key(queue: str) -> str:
    """The Redis hash of the CRM API usage the workers of ``queue`` last saw, by ``crm|what``."""
    return f"{METRICS_PREFIX}:{queue}:crm_api"


API_USAGE_TTL = 2 * 24 * 3600
"""Seconds an API usage reading is kept when no job reports a newer one."""


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _kept_args(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if k not in KEPT_ARGS_EXCLUDED}


def _log_fields(kwargs: Mapping[str, Any]) -> dict[str, object]:
    ids = kwargs.get("ids")
    return {
        "provider": kwargs.get("provider"),
        "object": kwargs.get("object"),
        "record_id": logs.ids_field(list(ids)) if isinstance(ids, list | tuple) else None,
    }


def _error_text(exc: BaseException, secrets: list[str]) -> str:
    text = f"{type(exc).__name__}: {exc}"[:ERROR_CHARS]
    for value in secrets:
        text = text.replace(value, logs.MASK)
    return text


@dataclass
class _Run:
    """One execution being recorded."""

    store: Store
    func: str
    job: Job | None
    args: dict[str, Any]
    started_at: datetime
    clock: float
    row_id: int | None = None

    def start(self) -> None:
        try:
            with self.store.session() as session:
                row = JobRun(
                    func=self.func,
                    job_id=self.job.id if self.job else None,
                    queue=self.job.origin if self.job else None,
                    worker=_worker_name(),
                    status=RunStatus.STARTED,
                    started_at=self.started_at,
                    args=self.args,
                    error="",
                )
                session.add(row)
                session.flush()
                self.row_id = row.id
        except SQLAlchemyError:
            log.warning("could not record the start of %s", self.func, exc_info=True)

    def finish(self, status: str, figures: Mapping[str, Any] | None, error: str) -> float:
        seconds = time.perf_counter() - self.clock
        if status == RunStatus.FAILED:
            log.warning("%s failed after %.2f s: %s", self.func, seconds, error)
        else:
            shown = " ".join(f"{k}={v}" for k, v in (figures or {}).items())
            log.info("%s finished in %.2f s: %s", self.func, seconds, shown or "nothing to do")
        values: dict[str, Any] = {
            "status": status,
            "ended_at": utcnow(),
            "seconds": seconds,
            "figures": dict(figures) if figures is not None else None,
            "error": error,
        }
        try:
            with self.store.session() as session:
                if self.row_id is None:
                    session.add(
                        JobRun(
                            func=self.func,
                            job_id=self.job.id if self.job else None,
                            queue=self.job.origin if self.job else None,
                            worker=_worker_name(),
                            started_at=self.started_at,
                            args=self.args,
                            **values,
                        )
                    )
                else:
                    session.execute(update(JobRun).where(JobRun.id == self.row_id).values(values))
        except SQLAlchemyError:
            log.warning("could not record the end of %s", self.func, exc_info=True)
        _count(self.job, self.func, status, seconds)
        return seconds


def _count(job: Job | None, func: str, status: str, seconds: float) -> None:
    """Add one run and its seconds to the queue's counters in Redis (only for RQ jobs)."""
    if job is None:
        return
    try:
        pipe = job.connection.pipeline(transaction=False)
        pipe.hincrby(runs_key(job.origin), f"{func}|{status}", 1)
        pipe.hincrbyfloat(seconds_key(job.origin), func, seconds)
        pipe.execute()
    except redis.RedisError:
        log.warning("could not count the run of %s in Redis", func, exc_info=True)


def _note_api_usage(job: Job | None, connector: object, system: str) -> None:
    """Keep the CRM's API usage where the metrics read it, when the connector reports it."""
    if job is None or not isinstance(connector, ReportsApiUsage):
        return
    usage = connector.api_usage()
    if usage is None:
        return
    key = api_usage_key(job.origin)
    try:
        pipe = job.connection.pipeline(transaction=False)
        pipe.hset(
            key,
            mapping={
                f"{system}|used": usage[0],
                f"{system}|limit": usage[1],
                f"{system}|at": time.time(),
            },
        )
        pipe.expire(key, API_USAGE_TTL)
        pipe.execute()
    except redis.RedisError:
        log.warning("could not keep the CRM API usage in Redis", exc_info=True)


P = ParamSpec("P")
R = TypeVar("R", bound=Mapping[str, Any])


def recorded(
    runtime_of: Callable[[], Runtime], *, idle: bool = True
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Record each execution of the decorated job in ``job_runs`` (see the module docstring),
    with the runtime ``runtime_of()`` gives (the worker's: :func:`tasuki.runtime.current`).

    ``idle=False``: a run that finished with nothing to show (all its figures zero) leaves no
    row, only the Redis counters (``recover`` runs every minute and usually finds nothing).
    """

    def decorate(job_function: Callable[P, R]) -> Callable[P, R]:
        name = job_function.__name__

        @functools.wraps(job_function)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            rt = runtime_of()
            job = get_current_job()
            if job is not None:
                # Rules or KPI files changed since this worker read them: judge with the new
                # ones (a broken new file fails the job with its problems, nothing is lost).
                rt.refresh()
            current = _Run(rt.store, name, job, _kept_args(kwargs), utcnow(), time.perf_counter())
            if idle:
                current.start()
            with logs.bound(job=name, **_log_fields(kwargs)):
                try:
                    figures = job_function(*args, **kwargs)
                except BaseException as exc:
                    if not idle:
                        current.start()
                    current.finish(
                        RunStatus.FAILED, None, _error_text(exc, logs.secret_values(rt.settings))
                    )
                    raise
                if idle or any(figures.values()):
                    if not idle:
                        current.start()
                    current.finish(RunStatus.FINISHED, figures, "")
                else:
                    _count(job, name, RunStatus.FINISHED, time.perf_counter() - current.clock)
                try:
                    _note_api_usage(job, rt.connector, rt.connector.system)
                except Exception:  # noqa: BLE001 - a usage reading never fails the job
                    log.warning("could not read the CRM API usage", exc_info=True)
            return figures

        return run

    return decorate


def recent(
    store: Store, *, limit: int = 20, failed: bool = False, job: str | None = None
) -> list[JobRun]:
    """The latest runs, newest first; only failed ones when ``failed``; only ``job``'s."""
    stmt = select(JobRun).order_by(JobRun.started_at.desc(), JobRun.id.desc()).limit(limit)
    if failed:
        stmt = stmt.where(JobRun.status == RunStatus.FAILED)
    if job:
        stmt = stmt.where(JobRun.func == job)
    with store.session() as session:
        rows = list(session.scalars(stmt))
        session.expunge_all()
    return rows


@dataclass(frozen=True)
class RunDetail:
    """One run and what it did record by record."""

    run: JobRun
    write_run: WriteRun | None
    rejections: list[WriteRejection]


def detail(store: Store, run_id: int) -> RunDetail | None:
    """The run ``run_id`` with, for a write-back, its write pass and the records the CRM refused
    (each with the CRM's own code and message); None when there is no such run."""
    with store.session() as session:
        run = session.get(JobRun, run_id)
        if run is None:
            return None
        write_run = None
        rejections: list[WriteRejection] = []
        write_run_id = (run.figures or {}).get("write_run")
        if isinstance(write_run_id, int) and write_run_id:
            write_run = session.get(WriteRun, write_run_id)
            rejections = list(
                session.scalars(
                    select(WriteRejection)
                    .where(WriteRejection.run_id == write_run_id)
                    .order_by(WriteRejection.id)
                )
            )
        session.expunge_all()
    return RunDetail(run, write_run, rejections)


def prune(store: Store, older_than: timedelta = RUN_HISTORY) -> int:
    """Forget runs that started more than ``older_than`` ago; returns how many."""
    with store.session() as session:
        gone = session.execute(
            delete(JobRun).where(JobRun.started_at < utcnow() - older_than)
        ).rowcount  # type: ignore[attr-defined]
    return int(gone or 0)
