"""The webhook app with every receiver configured (each provider's secret, the org id, the
public URL), on the parametrized store and the real Redis: what the fuzz and limit tests call."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from flask import Flask
from pydantic import SecretStr
from rq import Queue

from tasuki.providers import HubSpotSettings, SalesforceSettings
from tasuki.queue import job_queue
from tasuki.settings import Settings
from tasuki.store.db import Store
from tests.webhooks import senders
from webhooks import create_app


@pytest.fixture
def every_provider(settings: Settings, redis_url: str) -> Settings:
    """Settings with every provider's secret, the Salesforce org id, the public URL and the
    real Redis."""
    secrets = {
        **settings.secrets,
        "TASUKI_ZOOM_SECRET_TOKEN": SecretStr(senders.ZOOM_SECRET),
        "TASUKI_MIITEL_TOKEN": SecretStr(senders.MIITEL_TOKEN),
    }
    return dataclasses.replace(
        settings,
        redis_url=redis_url,
        public_url=senders.PUBLIC_URL,
        secrets=secrets,
        salesforce=SalesforceSettings(org_id=senders.ORG_ID),
        hubspot=HubSpotSettings(client_secret=SecretStr(senders.HUBSPOT_SECRET)),
    )


@pytest.fixture
def full_queue(every_provider: Settings) -> Iterator[Queue]:
    """The app's queue (its own name per test), emptied afterwards."""
    q = job_queue(every_provider)
    yield q
    q.empty()  # type: ignore[no-untyped-call]


@pytest.fixture
def full_app(every_provider: Settings, store: Store, full_queue: Queue) -> Flask:
    """``create_app`` with every receiver able to accept, on SQLite and PostgreSQL."""
    return create_app(every_provider, store=store, queue=full_queue)


@pytest.fixture
def sqlite_app(every_provider: Settings, sqlite_store: Store, full_queue: Queue) -> Flask:
    """The same app on SQLite only, for checks that end before the store is reached."""
    return create_app(every_provider, store=sqlite_store, queue=full_queue)
