"""Shared fixtures: real SQLite and PostgreSQL stores, a real Redis, settings in a temp folder.

PostgreSQL and Redis are the machine's real servers (``TASUKI_TEST_POSTGRES_URL``,
``TASUKI_TEST_REDIS_URL``). Each test session gets its own PostgreSQL database and each test its
own queue name; each run empties its own Redis database first (:func:`_empty_redis_database`).
When ``TASUKI_REQUIRE_SERVICES`` is set (CI), a missing server fails the run instead of
skipping.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tasuki.settings import Settings, load_settings
from tasuki.store.db import Store, open_store
from tests.services import REDIS_URL, fresh_database, unavailable


@pytest.fixture(scope="session", autouse=True)
def _empty_redis_database() -> None:
    """Each run (each pytest-xdist worker) starts on an empty Redis database of its own: rq's
    job ids are global to a database, so a job hash an earlier, killed run left behind would be
    taken for a job still waiting. Runs side by side therefore need databases of their own
    (``TASUKI_TEST_REDIS_URL``'s database index; xdist workers take the next ones)."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).flushdb()
    except redis.RedisError:
        pass  # the tests that need Redis skip, or fail under CI, on their own


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a fresh PostgreSQL database for this test session, dropped at the end."""
    with fresh_database("tasuki_test") as url:
        yield url


def _real_redis() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        unavailable("Redis", exc)
    return REDIS_URL


@pytest.fixture
def redis_url() -> str:
    """URL of the real Redis server (skips, or fails under CI, when it is down)."""
    return _real_redis()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Default settings with the data folder (SQLite store, embedded CRM) in a temp folder."""
    env = {
        "TASUKI_DATA_DIR": str(tmp_path / "data"),
        "TASUKI_WEBHOOK_SECRET": "test-webhook-secret",
    }
    s = load_settings(env)
    queue_name = f"tasuki-test-{uuid.uuid4().hex[:8]}"
    return load_settings(env, config=s.config.model_copy(update={"queue_name": queue_name}))


@pytest.fixture
def sqlite_store(settings: Settings) -> Iterator[Store]:
    """A migrated SQLite store in the temp folder."""
    store = open_store(settings.database_url)
    yield store
    store.engine.dispose()


@pytest.fixture
def postgres_store(postgres_url: str) -> Iterator[Store]:
    """A migrated PostgreSQL store, emptied after the test."""
    store = open_store(postgres_url)
    yield store
    from tasuki.store.models import Base

    with store.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    store.engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest) -> Store:
    """The same test on SQLite and on PostgreSQL."""
    fixture = "sqlite_store" if request.param == "sqlite" else "postgres_store"
    result: Store = request.getfixturevalue(fixture)
    return result


@pytest.fixture(scope="module")
def redis_url_module() -> str:
    """The real Redis server's URL, for module-scoped fixtures."""
    return _real_redis()
