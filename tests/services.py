"""Where the real servers the suite uses are (``TASUKI_TEST_POSTGRES_URL``,
``TASUKI_TEST_REDIS_URL``), for conftest and for tests that start processes of their own."""

from __future__ import annotations

import os

POSTGRES_URL = os.environ.get(
    "TASUKI_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("TASUKI_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
