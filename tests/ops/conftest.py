"""A small org pushed through the real pipeline (signed webhooks → real Redis → RQ's in-process
worker → the store → write-back), for the run-history and metrics tests."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from connectors.local import LocalCrm
from tasuki import runtime, startup
from tasuki.demo.org import generate
from tasuki.queue import job_queue
from tasuki.settings import Settings
from tasuki.store.db import Store
from tests.ops.support import (
    METRICS_TOKEN,
    SPEC,
    Pipeline,
    deliver,
    forget_queue,
    work,
)
from webhooks import create_app


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
    rt = startup.assemble(settings, store, crm, redis_connection=queue.connection)
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
