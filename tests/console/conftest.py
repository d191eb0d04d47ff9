"""The console over the small org of :mod:`tests.console.org`, on SQLite and PostgreSQL, with
a signed-in client per role."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pydantic import SecretStr
from rq import Queue

from tasuki.console.accounts import Role, add_user
from tasuki.queue import job_queue
from tasuki.settings import Settings
from tasuki.store.db import Store
from tests.console.org import seed
from tests.console.support import OPS_TOKEN, PASSWORD, sign_in
from webhooks import create_app


@pytest.fixture
def console_settings(settings: Settings) -> Settings:
    """Default settings with the console's secret."""
    return dataclasses.replace(settings, ops_token=SecretStr(OPS_TOKEN))


@pytest.fixture
def console_queue(console_settings: Settings) -> Iterator[Queue]:
    """The app's queue (in-process), emptied afterwards."""
    q = job_queue(console_settings)
    yield q
    q.empty()  # type: ignore[no-untyped-call]


@pytest.fixture
def org(store: Store) -> dict[str, int]:
    """The small org, seeded; handoff ids by record id."""
    ids = seed(store)
    add_user(store, "olivia", Role.OPS, PASSWORD)
    add_user(store, "victor", Role.VIEWER, PASSWORD)
    return ids


@pytest.fixture
def app(
    console_settings: Settings, store: Store, console_queue: Queue, org: dict[str, int]
) -> Flask:
    """The whole app (webhooks and console) over the seeded org."""
    return create_app(console_settings, store=store, queue=console_queue)


@pytest.fixture
def ops(app: Flask) -> FlaskClient:
    """A client signed in as an ops user, reading English."""
    client = app.test_client()
    client.set_cookie("tasuki_lang", "en")
    assert sign_in(client, "olivia") == 302
    return client


@pytest.fixture
def viewer(app: Flask) -> FlaskClient:
    """A client signed in as a viewer, reading English."""
    client = app.test_client()
    client.set_cookie("tasuki_lang", "en")
    assert sign_in(client, "victor") == 302
    return client
