"""Redis restarted without persistence after webhooks were answered 200, and Redis frozen.

The store is the record of accepted work: a restart loses the queued jobs, not the work, and
the scheduler, which lives through the outage, queues a recovery pass as soon as Redis is back.
A frozen Redis (SIGSTOP: connections accepted, nothing answered) costs a webhook one short
timeout and a 503, with nothing recorded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from tasuki.store.models import Delivery
from tests.reliability.crash_support import SECRET, TASUKI, Pipeline
from tests.reliability.redis_server import RedisServer
from webhooks.local import signed_headers


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    s = RedisServer(tmp_path)
    s.start()
    yield s
    s.thaw() if s.proc is not None else None
    s.stop()


def _spawn(pipeline: Pipeline, *args: str) -> subprocess.Popen[bytes]:
    """``tasuki ARGS`` with its log in ``<org>/<first arg>.log`` (see :func:`_wait_for_log`)."""
    with (pipeline.folder / f"{args[0]}.log").open("wb") as log:
        return subprocess.Popen(
            [TASUKI, *args],
            env={**os.environ, **pipeline.env},
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )


def _log_of(pipeline: Pipeline, name: str) -> str:
    return (pipeline.folder / f"{name}.log").read_text(encoding="utf-8", errors="replace")


def _wait_for_log(pipeline: Pipeline, name: str, text: str, proc: subprocess.Popen[bytes]) -> None:
    """Until the process's log holds ``text`` (what it logs is the test's hook into it: no
    guessing how long a loaded machine takes to start it or to reach its next tick)."""
    deadline = time.monotonic() + 120
    while text not in _log_of(pipeline, name):
        assert proc.poll() is None, f"{name} exited: {_log_of(pipeline, name)}"
        assert time.monotonic() < deadline, f"{name} never logged {text!r}"
        time.sleep(0.1)


def _stop(proc: subprocess.Popen[bytes], pipeline: Pipeline, name: str) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    return proc.returncode, _log_of(pipeline, name)


def test_a_redis_restart_after_200s_loses_nothing_and_the_scheduler_lives(
    tmp_path: Path, server: RedisServer, redis_url: str
) -> None:
    clean = Pipeline(tmp_path / "clean", redis_url)
    try:
        clean.run()
        expected = clean.end_state()
    finally:
        clean.close()

    pipeline = Pipeline(tmp_path / "org", server.url)
    scheduler = _spawn(pipeline, "scheduler")
    try:
        _wait_for_log(pipeline, "scheduler", ": starting", scheduler)
        assert pipeline.deliver() > 0  # every notice answered 200, its syncs queued in Redis
        server.stop()  # ... and gone with Redis
        # an outage the scheduler's ticks run into, and live through
        _wait_for_log(pipeline, "scheduler", "Redis unreachable", scheduler)
        time.sleep(2)
        assert scheduler.poll() is None, "the scheduler died with Redis"
        server.start()  # empty: the jobs are lost
        back = time.monotonic()
        worker = _spawn(pipeline, "worker")
        try:
            while time.monotonic() - back < 90:
                state = pipeline.end_state()
                if state.owed == {} and state.verdicts == expected.verdicts:
                    break
                time.sleep(0.5)
            recovered_in = time.monotonic() - back
        finally:
            code, err = _stop(worker, pipeline, "worker")
    finally:
        scheduler_code, scheduler_log = _stop(scheduler, pipeline, "scheduler")
        pipeline.close()
    assert state.handoffs == expected.handoffs
    assert state.verdicts == expected.verdicts
    assert state.kpis == expected.kpis
    assert state.owed == {}
    assert recovered_in < 60, f"recovered {recovered_in:.0f} s after Redis came back"
    assert "Redis unreachable" in scheduler_log and "answers again" in scheduler_log
    assert scheduler_code == 0, scheduler_log


def test_a_frozen_redis_is_a_503_within_a_second_with_nothing_recorded(
    tmp_path: Path, server: RedisServer
) -> None:
    pipeline = Pipeline(tmp_path / "org", server.url)
    body = (
        b'{"notices": [{"id": "frozen-1", "object": "Lead", "record_ids": ["00Q1"],'
        b' "changed_by": null}]}'
    )
    server.freeze()
    try:
        with pipeline.app.test_client() as client:
            started = time.monotonic()
            answer = client.post("/webhooks/local", data=body, headers=signed_headers(SECRET, body))
            took = time.monotonic() - started
    finally:
        server.thaw()
    with pipeline.store.session() as s:
        recorded = s.scalars(select(Delivery.delivery_id)).all()
    pipeline.close()
    assert answer.status_code == 503
    assert answer.headers["Retry-After"]
    assert took < 1.0, f"answered after {took:.2f} s"
    assert "frozen-1" not in recorded
