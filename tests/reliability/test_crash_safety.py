"""A real ``tasuki worker`` SIGKILLed at each commit point loses and doubles nothing.

For each checkpoint of sync, detection and judging, and write-back, the same org goes through
the pipeline twice: once cleanly, once with the worker killed (work horse and all) the first
time it reaches that checkpoint, then workers started again. The handoffs, verdicts, KPI
values and CRM contents must be equal, and no CRM record may have been written more often.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.crash_support import EndState, Pipeline
from tests.services import fresh_database

POINTS = [
    "sync.committed",  # records and their owed judging committed; detection not yet run
    "judge.committed",  # handoffs and verdicts committed; KPI and write-back not yet queued
    "writeback.intended",  # intents committed, the CRM not yet called
    "writeback.sent",  # the CRM accepted the batch, the ledger does not know yet
    "writeback.committed",  # the first batch recorded, the rest not yet sent
]


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory, redis_url_module: str) -> Iterator[EndState]:
    pipeline = Pipeline(tmp_path_factory.mktemp("clean"), redis_url_module)
    try:
        assert pipeline.run() is False
        yield pipeline.end_state()
    finally:
        pipeline.close()


@pytest.fixture
def fresh_postgres() -> Iterator[str]:
    """A new, empty PostgreSQL database for one pipeline, dropped afterwards."""
    with fresh_database("tasuki_crash") as url:
        yield url


CASES = [("sqlite", p) for p in POINTS] + [
    ("postgres", "sync.committed"),
    ("postgres", "writeback.sent"),
]


@pytest.mark.parametrize(("backend", "point"), CASES)
def test_a_worker_killed_at_a_commit_point_loses_and_doubles_nothing(
    backend: str,
    point: str,
    clean: EndState,
    tmp_path: Path,
    redis_url_module: str,
    request: pytest.FixtureRequest,
) -> None:
    # The PostgreSQL runs are held to the clean SQLite run: both stores give the same figures.
    url = request.getfixturevalue("fresh_postgres") if backend == "postgres" else None
    pipeline = Pipeline(tmp_path, redis_url_module, url)
    try:
        assert pipeline.run(pause_at=point), f"the worker never reached {point}"
        after = pipeline.end_state()
    finally:
        pipeline.close()
    assert clean.handoffs and clean.verdicts and clean.kpis and clean.writes
    assert after.handoffs == clean.handoffs
    assert after.verdicts == clean.verdicts
    assert after.kpis == clean.kpis
    assert after.crm == clean.crm
    repeated = {
        k: (n, clean.writes.get(k)) for k, n in after.writes.items() if n != clean.writes.get(k)
    }
    assert repeated == {}, "records written a different number of times than in a clean run"
    assert after.owed == {} and after.intents == 0
