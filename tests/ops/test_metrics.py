"""``GET /metrics``: behind a bearer token, and every figure matching the store and Redis it is
read from, after real pipeline work, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import time

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from redis.backoff import NoBackoff
from redis.retry import Retry
from rq import Queue
from sqlalchemy import func, select

from connectors.local import LocalCrm
from tasuki import runtime, startup
from tasuki.deliveries import Notice
from tasuki.ops.runs import recorded
from tasuki.owed import Owed, owe
from tasuki.settings import Settings
from tasuki.store.db import Store
from tasuki.store.models import Handoff, JobRun, OwedWork, Verdict, WriteRun
from tests.ops.support import METRICS_TOKEN, Pipeline, forget_queue, work
from webhooks import create_app, services

STATES = ("queued", "started", "scheduled", "deferred", "failed")

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(pipeline: Pipeline) -> Samples:
    """Every sample of one authorised scrape, keyed by name and sorted labels."""
    with pipeline.app.test_client() as client:
        resp = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.content_type.startswith("text/plain; version=")
    out: Samples = {}
    for family in text_string_to_metric_families(resp.get_data(as_text=True)):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def named(samples: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of one metric, by their labels."""
    return {labels: v for (n, labels), v in samples.items() if n == name}


def test_metrics_match_the_store_and_redis_after_pipeline_work(pipeline: Pipeline) -> None:
    store, queue = pipeline.store, pipeline.queue
    with store.session() as s:
        owe(s, Owed.KPIS)  # one piece of work owed, as a killed worker would leave it
    time.sleep(0.05)
    samples = scrape(pipeline)

    assert named(samples, "tasuki_metrics_source_up") == {
        (("source", "redis"),): 1.0,
        (("source", "store"),): 1.0,
    }
    # Webhooks by provider and status, and the intake latency histogram: every POST was a 200.
    assert named(samples, "tasuki_webhook_requests_total") == {
        (("provider", "local"), ("status", "200")): pipeline.posts
    }
    hist = named(samples, "tasuki_webhook_intake_seconds_count")
    assert hist == {(("provider", "local"),): pipeline.posts}
    assert samples[("tasuki_webhook_intake_seconds_sum", (("provider", "local"),))] > 0

    with store.session() as s:
        handoffs = {
            (b, o or "unjudged"): n
            for b, o, n in s.execute(
                select(Handoff.boundary, Verdict.outcome, func.count())
                .outerjoin(Verdict, Verdict.handoff_id == Handoff.id)
                .group_by(Handoff.boundary, Verdict.outcome)
            )
        }
        writes = s.execute(
            select(
                func.count(),
                func.sum(WriteRun.calls),
                func.sum(WriteRun.fields),
                func.sum(WriteRun.rejected),
            )
        ).one()
        owed = dict(s.execute(select(OwedWork.kind, func.count()).group_by(OwedWork.kind)).all())
        runs: dict[tuple[str, str], int] = {}
        for job, status, n in s.execute(
            select(JobRun.func, JobRun.status, func.count()).group_by(JobRun.func, JobRun.status)
        ):
            runs[(job, status)] = n
        kpi_seconds = s.scalar(
            select(JobRun.seconds)
            .where(JobRun.func == "compute_kpis", JobRun.status == "finished")
            .order_by(JobRun.id.desc())
            .limit(1)
        )

    assert {"MK→IS", "IS→FS", "FS→CS"} <= {b for b, _ in handoffs}
    assert named(samples, "tasuki_handoffs") == {
        (("boundary", b), ("verdict", v)): n for (b, v), n in handoffs.items()
    }
    crm = (("crm", "local"),)
    assert samples[("tasuki_write_runs_total", crm)] == writes[0] > 0
    assert samples[("tasuki_write_calls_total", crm)] == writes[1] > 0
    assert samples[("tasuki_write_fields_total", crm)] == writes[2] > 0
    assert samples[("tasuki_write_rejections_total", crm)] == writes[3]
    assert samples[("tasuki_write_min_calls_total", crm)] <= writes[1]

    assert owed == {"kpis": 1}
    assert named(samples, "tasuki_owed_work") == {(("kind", "kpis"),): 1}
    assert 0 <= samples[("tasuki_owed_work_oldest_seconds", (("kind", "kpis"),))] < 60

    q = queue.name
    # Every delivery the pipeline's requests were answered for is in the store.
    assert samples[("tasuki_intake_backlog", (("queue", q),))] == 0
    assert named(samples, "tasuki_queue_jobs") == {
        (("queue", q), ("state", state)): 0 for state in STATES
    }
    # Runs counted in Redis by every worker agree with the run history in the store.
    assert runs and all(status == "finished" for _, status in runs)
    assert named(samples, "tasuki_job_runs_total") == {
        (("job", job), ("queue", q), ("status", status)): n for (job, status), n in runs.items()
    }
    for job in {j for j, _ in runs}:
        labels = (("job", job), ("queue", q))
        assert samples[("tasuki_job_duration_seconds_count", labels)] == runs[(job, "finished")]
        assert samples[("tasuki_job_duration_seconds_sum", labels)] > 0
        assert ("tasuki_job_last_success_timestamp_seconds", (("job", job),)) in samples
    # KPI computation time: the latest compute_kpis run.
    assert kpi_seconds is not None
    assert samples[
        ("tasuki_job_last_duration_seconds", (("job", "compute_kpis"),))
    ] == pytest.approx(kpi_seconds)
    # The embedded CRM keeps no API quota: no quota figure is made up for it.
    assert not named(samples, "tasuki_crm_api_calls_used")
    # A request answered and not stored yet (no taker ran) is counted until one does.
    intake = services(pipeline.app).intake
    intake.take("local", [Notice("backlog-1", [("Lead", "00Qbacklog")])])
    assert scrape(pipeline)[("tasuki_intake_backlog", (("queue", q),))] == 1
    intake.store_waiting()
    assert scrape(pipeline)[("tasuki_intake_backlog", (("queue", q),))] == 0


def test_metrics_need_the_bearer_token(settings: Settings, sqlite_store: Store) -> None:
    with_token = dataclasses.replace(settings, metrics_token=SecretStr(METRICS_TOKEN))
    with create_app(with_token, store=sqlite_store).test_client() as client:
        assert client.get("/metrics").status_code == 401
        wrong = client.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
        assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"] == "Bearer"
        assert wrong.is_json
        basic = client.get("/metrics", headers={"Authorization": f"Basic {METRICS_TOKEN}"})
        assert basic.status_code == 401
    # Without a token configured there is nothing to find.
    with create_app(settings, store=sqlite_store).test_client() as client:
        assert client.get("/metrics").status_code == 404
        headers = {"Authorization": f"Bearer {METRICS_TOKEN}"}
        assert client.get("/metrics", headers=headers).status_code == 404


class _CrmWithQuota(LocalCrm):
    """The embedded CRM reporting an API allowance, as Salesforce and HubSpot do."""

    def api_usage(self) -> tuple[int, int] | None:
        return 1234, 100000


@recorded(runtime.current)
def noted_job() -> dict[str, int]:
    """A job whose run records the connector's API usage (run by RQ below)."""
    return {"done": 1}


@recorded(runtime.current)
def failing_job() -> dict[str, int]:
    """A job that fails."""
    raise RuntimeError("the CRM said no")


def test_failed_jobs_quota_and_an_unreachable_redis(
    settings: Settings, sqlite_store: Store, redis_url: str
) -> None:
    settings = dataclasses.replace(
        settings, redis_url=redis_url, metrics_token=SecretStr(METRICS_TOKEN)
    )
    crm = _CrmWithQuota(settings.data_dir / "crm.db")
    queue = Queue(settings.config.queue_name, connection=redis.Redis.from_url(redis_url))
    rt = startup.assemble(settings, sqlite_store, crm, redis_connection=queue.connection)
    app = create_app(settings, store=sqlite_store, queue=queue)
    pipeline = Pipeline(settings, sqlite_store, queue, crm, app, rt)
    try:
        with runtime.activate(rt):
            queue.enqueue(f"{__name__}.noted_job")
            queue.enqueue(f"{__name__}.failing_job")
            queue.enqueue(f"{__name__}.noted_job")
            work(queue)
            samples = scrape(pipeline)
        q = queue.name
        assert samples[("tasuki_queue_jobs", (("queue", q), ("state", "failed")))] == 1
        runs = named(samples, "tasuki_job_runs_total")
        assert runs == {
            (("job", "noted_job"), ("queue", q), ("status", "finished")): 2,
            (("job", "failing_job"), ("queue", q), ("status", "failed")): 1,
        }
        assert samples[("tasuki_crm_api_calls_used", (("crm", "local"),))] == 1234
        assert samples[("tasuki_crm_api_calls_limit", (("crm", "local"),))] == 100000
        assert samples[("tasuki_crm_api_usage_age_seconds", (("crm", "local"),))] < 60

        # Redis gone: the store's figures still come back, and the scrape says what is missing.
        unreachable = redis.Redis(port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
        down = Queue(q, connection=unreachable)
        app = create_app(settings, store=sqlite_store, queue=down)
        samples = scrape(Pipeline(settings, sqlite_store, down, crm, app, rt))
        assert named(samples, "tasuki_metrics_source_up") == {
            (("source", "redis"),): 0.0,
            (("source", "store"),): 1.0,
        }
        assert ("tasuki_job_last_success_timestamp_seconds", (("job", "noted_job"),)) in samples
        assert not named(samples, "tasuki_queue_jobs")
    finally:
        forget_queue(queue.connection, queue.name)
