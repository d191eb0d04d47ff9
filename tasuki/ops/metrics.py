"""Metrics of the whole deployment, computed at scrape time from the store and Redis.

Workers run on any number of hosts and processes, so their figures are not counted in any one
process's memory: :class:`DeploymentCollector` reads them, at each scrape, from where every
process leaves them (the store's tables, RQ's registries, the counters :mod:`tasuki.ops.runs`
keeps in Redis). One scrape of any ``tasuki serve`` process therefore sees the whole
deployment. Only the per-request webhook figures live in the serving process
(:mod:`webhooks.observe`).

Each query is an indexed or small aggregate: owed work is a handful of rows, the handoff counts
one grouped join, the write totals one grouped sum over ``write_runs``. A source that does not
answer is reported as ``tasuki_metrics_source_up{source=…} 0`` and the rest of the scrape still
comes back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator

import redis
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector
from rq import Queue, Worker
from rq.registry import (
    DeferredJobRegistry,
    FailedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)
from sqlalchemy import false, func, select
from sqlalchemy.exc import SQLAlchemyError

from tasuki.deliveries import Journal
from tasuki.ops.runs import RunStatus, api_usage_key, runs_key, seconds_key
from tasuki.settings import Settings
from tasuki.store.db import Store
from tasuki.store.models import Handoff, JobRun, OwedWork, SyncCursor, Verdict, WriteRun

log = logging.getLogger(__name__)

UNJUDGED = "unjudged"
"""The verdict label of a handoff not judged yet."""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class DeploymentCollector(Collector):
    """Every figure of the deployment that is not a per-request count (see the module doc)."""

    def __init__(self, settings: Settings, store: Store, connection: redis.Redis) -> None:
        self.settings = settings
        self.store = store
        self.connection = connection

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "tasuki_metrics_source_up",
            "1 when the source answered this scrape, 0 when its figures are missing",
            labels=["source"],
        )
        for source, produce in (("redis", self._from_redis), ("store", self._from_store)):
            try:
                families = list(produce())
            except (redis.RedisError, SQLAlchemyError) as exc:
                log.warning("metrics: %s unreachable: %s", source, type(exc).__name__)
                up.add_metric([source], 0)
                continue
            up.add_metric([source], 1)
            yield from families
        yield up

    # -- Redis: the queue and the workers' counters ----------------------------------------------

    def _from_redis(self) -> Iterator[Metric]:
        name = self.settings.config.queue_name
        queue = Queue(name, connection=self.connection)
        jobs = GaugeMetricFamily(
            "tasuki_queue_jobs",
            "Jobs of the queue by state (queued = the queue's depth; failed = RQ's failed "
            "registry, what `tasuki jobs failed` lists)",
            labels=["queue", "state"],
        )
        jobs.add_metric([name, "queued"], queue.count)
        for state, registry in (
            ("started", StartedJobRegistry(queue=queue)),
            ("scheduled", ScheduledJobRegistry(queue=queue)),  # type: ignore[no-untyped-call]
            ("deferred", DeferredJobRegistry(queue=queue)),
            ("failed", FailedJobRegistry(queue=queue)),
        ):
            # No clean-up: a scrape only reads (the workers maintain the registries).
            jobs.add_metric([name, state], registry.get_job_count(cleanup=False))
        yield jobs
        workers = GaugeMetricFamily(
            "tasuki_queue_workers", "Workers listening on the queue", labels=["queue"]
        )
        workers.add_metric([name], Worker.count(queue=queue))
        yield workers
        backlog = GaugeMetricFamily(
            "tasuki_intake_backlog",
            "Webhook requests answered 200 whose deliveries are not in the store yet (they wait "
            "in Redis's intake stream for a server's taker; more than a second's worth means "
            "no server is taking them)",
            labels=["queue"],
        )
        backlog.add_metric([name], Journal(queue).backlog())
        yield backlog
        yield from self._job_counters(name)
        yield from self._api_usage(name)

    def _job_counters(self, queue: str) -> Iterator[Metric]:
        runs = CounterMetricFamily(
            "tasuki_job_runs",
            "Job executions by job and outcome (finished, failed), counted by every worker",
            labels=["queue", "job", "status"],
        )
        counts: dict[str, int] = {}
        for field, value in self.connection.hgetall(runs_key(queue)).items():
            job, _, status = _text(field).partition("|")
            runs.add_metric([queue, job, status], int(value))
            counts[job] = counts.get(job, 0) + int(value)
        yield runs
        seconds = SummaryMetricFamily(
            "tasuki_job_duration_seconds",
            "Time spent in each job (compute_kpis: the KPI computation time), all workers",
            labels=["queue", "job"],
        )
        for field, value in self.connection.hgetall(seconds_key(queue)).items():
            job = _text(field)
            seconds.add_metric([queue, job], counts.get(job, 0), float(value))
        yield seconds

    def _api_usage(self, queue: str) -> Iterator[Metric]:
        found: dict[tuple[str, str], float] = {}
        for field, raw in self.connection.hgetall(api_usage_key(queue)).items():
            crm, _, what = _text(field).partition("|")
            found[(crm, what)] = float(raw)
        used = GaugeMetricFamily(
            "tasuki_crm_api_calls_used",
            "CRM API calls of the current day used, as the CRM last reported (all apps of the "
            "account)",
            labels=["crm"],
        )
        limit = GaugeMetricFamily(
            "tasuki_crm_api_calls_limit", "The CRM's daily API call allowance", labels=["crm"]
        )
        age = GaugeMetricFamily(
            "tasuki_crm_api_usage_age_seconds",
            "Seconds since a worker last read the CRM's API usage",
            labels=["crm"],
        )
        now = time.time()
        for (crm, what), value in sorted(found.items()):
            if what == "used":
                used.add_metric([crm], value)
            elif what == "limit":
                limit.add_metric([crm], value)
            elif what == "at":
                age.add_metric([crm], max(0.0, now - value))
        yield from (used, limit, age)

    # -- the store ---------------------------------------------------------------------------------

    def _from_store(self) -> Iterator[Metric]:
        now = time.time()
        crm = self.settings.config.crm
        with self.store.session() as s:
            owed = list(
                s.execute(
                    select(OwedWork.kind, func.count(), func.min(OwedWork.owed_at)).group_by(
                        OwedWork.kind
                    )
                )
            )
            handoffs = list(
                s.execute(
                    select(Handoff.boundary, Verdict.outcome, func.count())
                    .select_from(Handoff)
                    .outerjoin(Verdict, Verdict.handoff_id == Handoff.id)
                    .where(Handoff.system == crm)
                    .group_by(Handoff.boundary, Verdict.outcome)
                )
            )
            writes = list(
                s.execute(
                    select(
                        WriteRun.system,
                        func.count(),
                        func.coalesce(func.sum(WriteRun.calls), 0),
                        func.coalesce(func.sum(WriteRun.min_calls), 0),
                        func.coalesce(func.sum(WriteRun.records), 0),
                        func.coalesce(func.sum(WriteRun.fields), 0),
                        func.coalesce(func.sum(WriteRun.rejected), 0),
                    )
                    .where(WriteRun.dry_run == false())
                    .group_by(WriteRun.system)
                )
            )
            cursors = list(
                s.execute(
                    select(SyncCursor.object, SyncCursor.updated_at).where(SyncCursor.system == crm)
                )
            )
            latest = (
                select(func.max(JobRun.id))
                .where(JobRun.status == RunStatus.FINISHED)
                .group_by(JobRun.func)
            )
            last_runs = list(
                s.execute(
                    select(JobRun.func, JobRun.ended_at, JobRun.seconds).where(
                        JobRun.id.in_(latest)
                    )
                )
            )

        count = GaugeMetricFamily(
            "tasuki_owed_work", "Work accepted and not yet done", labels=["kind"]
        )
        oldest = GaugeMetricFamily(
            "tasuki_owed_work_oldest_seconds",
            "Age of the oldest owed work of each kind",
            labels=["kind"],
        )
        for kind, n, first in owed:
            count.add_metric([kind], n)
            oldest.add_metric([kind], max(0.0, now - first.timestamp()) if first else 0.0)
        yield from (count, oldest)

        judged = GaugeMetricFamily(
            "tasuki_handoffs",
            "Handoffs detected, by boundary and verdict (passed, warned, failed, unjudged)",
            labels=["boundary", "verdict"],
        )
        for boundary, outcome, n in handoffs:
            judged.add_metric([boundary, outcome or UNJUDGED], n)
        yield judged

        families = {
            "runs": CounterMetricFamily(
                "tasuki_write_runs", "Write-back passes that wrote (or tried to)", labels=["crm"]
            ),
            "calls": CounterMetricFamily(
                "tasuki_write_calls", "CRM write API calls made by write-back", labels=["crm"]
            ),
            "min_calls": CounterMetricFamily(
                "tasuki_write_min_calls",
                "The fewest write calls those passes could have taken",
                labels=["crm"],
            ),
            "records": CounterMetricFamily(
                "tasuki_write_records", "Records written by write-back", labels=["crm"]
            ),
            "fields": CounterMetricFamily(
                "tasuki_write_fields", "Fields changed by write-back", labels=["crm"]
            ),
            "rejected": CounterMetricFamily(
                "tasuki_write_rejections",
                "Records the CRM refused (see `tasuki runs show`)",
                labels=["crm"],
            ),
        }
        for system, *sums in writes:
            for family, value in zip(families.values(), sums, strict=True):
                family.add_metric([system], int(value))
        yield from families.values()

        lag = GaugeMetricFamily(
            "tasuki_sync_cursor_age_seconds",
            "Seconds since the incremental sync (reconcile) of each CRM object last moved on",
            labels=["object"],
        )
        for obj, updated in cursors:
            lag.add_metric([obj], max(0.0, now - updated.timestamp()))
        yield lag

        success = GaugeMetricFamily(
            "tasuki_job_last_success_timestamp_seconds",
            "When each job last finished without error (Unix time)",
            labels=["job"],
        )
        took = GaugeMetricFamily(
            "tasuki_job_last_duration_seconds",
            "How long each job's latest successful run took (compute_kpis: KPI computation)",
            labels=["job"],
        )
        for job, ended, seconds in sorted(last_runs):
            if ended is not None:
                success.add_metric([job], ended.timestamp())
            if seconds is not None:
                took.add_metric([job], seconds)
        yield from (success, took)
