"""Where the real servers the suite uses are (``TASUKI_TEST_POSTGRES_URL``,
``TASUKI_TEST_REDIS_URL``), for conftest and for tests that start processes of their own, and
fresh PostgreSQL databases on that server.

When ``TASUKI_REQUIRE_SERVICES`` is set (CI), a missing server fails the test instead of
skipping it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

POSTGRES_URL = os.environ.get(
    "TASUKI_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _redis_url_of_this_process() -> str:
    """``TASUKI_TEST_REDIS_URL``, with each pytest-xdist worker on a database of its own
    (``gw0`` on the URL's database, ``gw1`` on the next ...), so parallel workers never see each
    other's RQ workers, queues or keys, exactly as in a serial run."""
    url = urlsplit(os.environ.get("TASUKI_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return url.geturl()
    db = int(url.path.strip("/") or 0) + int(worker[2:])
    return urlunsplit(url._replace(path=f"/{db}"))


REDIS_URL = _redis_url_of_this_process()
REQUIRE_SERVICES = bool(os.environ.get("TASUKI_REQUIRE_SERVICES"))


def unavailable(what: str, exc: Exception) -> NoReturn:
    """Skip the test because ``what`` cannot be reached (fail it when services are required)."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{what} is required but unreachable: {exc}")
    pytest.skip(f"{what} unreachable: {exc}")


@contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database named ``prefix_<random>`` on the server at
    :data:`POSTGRES_URL`, dropped on leaving (see :func:`unavailable` when the server is down)."""
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any failure to reach the server
        admin.dispose()
        unavailable("PostgreSQL", exc)
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
