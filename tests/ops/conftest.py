"""A small org pushed through the real pipeline (signed webhooks → real Redis → RQ's in-process
worker → the store → write-back), for the run-history and metrics tests."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import pytest
import redis
from flask import Flask
from pydantic import SecretStr
from rq import Queue, SimpleWorker

from connectors.local import LocalCrm
from tasuki import runtime
from tasuki.demo.org import OrgSpec, generate
from tasuki.ops.runs import METRICS_PREFIX
from tasuki.queue import job_queue
from tasuki.settings import Settings
from tasuki.store.db import Store
from tests.notices import deliver_pending
from webhooks import create_app

SPEC = OrgSpec(seed=11, leads=60, until=date(2026, 11, 20))
METRICS_TOKEN = "metrics-token-for-the-tests-7f3a"
WEBHOOK_SECRET = "test-webhook-secret"


@dataclass
class Pipeline:
    """What the pipeline fixture ran, and how to reach it."""

    settings: Settings
    store: Store
    queue: Queue
    crm: LocalCrm
    app: Flask
    runtime: runtime.Runtime
    posts: int = 0


def deliver(pipeline: Pipeline) -> int:
    """POST every pending change notice of the CRM, signed, 100 to a request; the requests."""
    return deliver_pending(pipeline.app, pipeline.crm, WEBHOOK_SECRET).requests


def work(queue: Queue) -> None:
    """Run the queue dry with RQ's in-process worker."""
    SimpleWorker([queue], connection=queue.connection).work(burst=True, logging_level="WARNING")


def forget_queue(connection: redis.Redis, name: str) -> None:
    """Delete every key of the test's queue and its metrics from the shared Redis."""
    for pattern in (f"rq:*{name}*", f"{METRICS_PREFIX}:{name}:*"):
        keys = list(connection.scan_iter(match=pattern, count=1000))
        if keys:
            connection.delete(*keys)


@pytest.fixture
def pipeline(settings: Settings, store: Store, redis_url: str) -> Iterator[Pipeline]:
    """The org's changes delivered and worked off, our own writes' echoes too (on the
    parametrized store and the real Redis), with a metrics token configured."""
    url = store.engine.url.render_as_string(hide_password=False)
    settings = dataclasses.replace(
        settings,
        database_url=url,
        redis_url=redis_url,
        metrics_token=SecretStr(METRICS_TOKEN),
    )
    crm = LocalCrm(settings.data_dir / "crm.db")
    generate(crm, settings.config, SPEC)
    queue = job_queue(settings)
    rt = runtime.Runtime(settings, store, crm, redis_connection=queue.connection)
    app = create_app(settings, store=store, queue=queue)
    done = Pipeline(settings, store, queue, crm, app, rt)
    try:
        with runtime.activate(rt):
            for _ in range(2):  # the org's changes, then our own writes coming back
                done.posts += deliver(done)
                work(queue)
            yield done
    finally:
        forget_queue(queue.connection, queue.name)
