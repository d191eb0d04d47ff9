"""What the operations tests share besides fixtures: constants, factories and helpers (the
fixtures in conftest.py use them too; tests import them from here, never from conftest)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import redis
from flask import Flask
from rq import Queue, SimpleWorker

from connectors.local import LocalCrm
from tasuki import runtime
from tasuki.demo.org import OrgSpec
from tasuki.ops.runs import METRICS_PREFIX
from tasuki.settings import Settings
from tasuki.store.db import Store
from tests.notices import deliver_pending

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
