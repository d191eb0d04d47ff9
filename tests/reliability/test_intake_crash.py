"""The intake journal broken on purpose: Redis killed right after its 200s, and a real
``tasuki serve`` killed (SIGKILL) at each commit point of its taker.

A 200 means the delivery is in Redis's intake stream. With an append-only file fsynced on
every write (``appendfsync always``), a Redis killed the next instant still has it; the server
that takes it into the store may die anywhere, and the next taker does the work exactly once:
one delivery row per id, one sync owed and queued per record.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from rq import Queue
from sqlalchemy import func, select

from tasuki.queue import job_queue
from tasuki.settings import Settings, builtin_path, load_settings
from tasuki.store.db import Store, open_store
from tasuki.store.models import Delivery, OwedWork
from tasuki.testhooks import PAUSE_AT, PAUSE_DIR
from tests.reliability.redis_server import RedisServer, free_port
from webhooks import create_app, services
from webhooks.local import signed_headers

SECRET = "intake-crash-secret"


def _body(start: int, n: int) -> bytes:
    notices = [
        {"id": f"n{i}", "object": "Lead", "record_ids": [f"00Q{i:04d}"], "changed_by": None}
        for i in range(start, start + n)
    ]
    return json.dumps({"notices": notices}).encode()


def _store_state(store: Store) -> tuple[dict[str, int], dict[str, int]]:
    """How often each delivery id is recorded, and how often each record is owed a sync."""
    with store.session() as s:
        deliveries = s.execute(
            select(Delivery.delivery_id, func.count()).group_by(Delivery.delivery_id)
        ).all()
        owed = s.execute(
            select(OwedWork.record_id, func.count())
            .where(OwedWork.kind == "sync")
            .group_by(OwedWork.record_id)
        ).all()
    return {k: int(v) for k, v in deliveries}, {k: int(v) for k, v in owed}


def _queued(queue: Queue) -> dict[str, int]:
    """How many queued sync jobs name each record."""
    out: dict[str, int] = {}
    for job in queue.get_jobs():
        for rid in job.kwargs.get("ids", []):
            out[rid] = out.get(rid, 0) + 1
    return out


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path, appendfsync="always")
    server.start()
    yield server
    server.stop()


def test_a_redis_killed_right_after_its_200s_keeps_them_with_appendfsync_always(
    settings: Settings, sqlite_store: Store, aof_redis: RedisServer
) -> None:
    live = dataclasses.replace(settings, redis_url=aof_redis.url)
    app = create_app(live, store=sqlite_store, queue=job_queue(live))
    with app.test_client() as client:  # nobody takes: the deliveries live in Redis only
        for start in (0, 5, 10):
            body = _body(start, 5)
            answer = client.post(
                "/webhooks/local", data=body, headers=signed_headers("test-webhook-secret", body)
            )
            assert answer.get_json() == {"accepted": 5, "duplicates": 0, "ignored": 0}
    aof_redis.stop()  # SIGKILL, the instant after the last 200
    aof_redis.start()
    after = create_app(live, store=sqlite_store, queue=job_queue(live))
    intake = services(after).intake
    assert intake.journal.backlog() == 3
    assert intake.store_waiting().new == 15
    deliveries, owed = _store_state(sqlite_store)
    assert deliveries == {f"n{i}": 1 for i in range(15)}
    assert owed == {f"00Q{i:04d}": 1 for i in range(15)}
    assert _queued(intake.queue) == owed
    # The ids were fsynced too: the provider's retry is still a duplicate.
    with after.test_client() as client:
        body = _body(0, 5)
        retry = client.post(
            "/webhooks/local", data=body, headers=signed_headers("test-webhook-secret", body)
        )
    assert retry.get_json() == {"accepted": 0, "duplicates": 5, "ignored": 0}


class Served:
    """``tasuki serve`` on a free port, on the test's store and queue; stopped at a checkpoint
    of its taker when asked."""

    def __init__(self, folder: Path, redis_url: str) -> None:
        self.folder = folder
        config = folder / "tasuki.yaml"
        name = f"tasuki-test-{uuid.uuid4().hex[:8]}"
        config.write_text(
            builtin_path("tasuki.yaml").read_text()
            + f"\nqueue_name: {name}\nrecovery:\n  abandoned_after_seconds: 1\n"
        )
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TASUKI_")}
        self.env.update(
            TASUKI_CONFIG=str(config),
            TASUKI_DATA_DIR=str(folder / "data"),
            TASUKI_DATABASE_URL=f"sqlite:///{folder / 'store.db'}",
            TASUKI_REDIS_URL=redis_url,
            TASUKI_WEBHOOK_SECRET=SECRET,
        )
        settings = load_settings(self.env)
        self.store = open_store(settings.database_url)
        self.queue = job_queue(settings)
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self, pause_at: str | None = None) -> None:
        env = dict(self.env)
        if pause_at:
            env[PAUSE_AT] = pause_at
            env[PAUSE_DIR] = str(self.folder)
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tasuki", "serve", "--port", str(self.port), "--threads", "4"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2):
                    return
            except OSError:
                assert self.proc.poll() is None, "tasuki serve exited"
                assert time.monotonic() < deadline, "tasuki serve did not come up"
                time.sleep(0.1)

    def post(self, body: bytes) -> dict[str, int]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/webhooks/local",
            data=body,
            headers=signed_headers(SECRET, body),
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            answer: dict[str, int] = json.loads(resp.read())
            return answer

    def kill_at(self, point: str) -> None:
        """Wait until the server's taker (a process of the server's own) stops at ``point``,
        then SIGKILL the taker and the server."""
        mark = self.folder / point
        deadline = time.monotonic() + 60
        while not mark.exists():
            assert time.monotonic() < deadline, f"the taker never reached {point}"
            time.sleep(0.02)
        assert self.proc is not None
        taker = int(mark.read_text())
        assert taker != self.proc.pid, "the taker runs in a process of its own"
        os.kill(taker, signal.SIGKILL)
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        mark.unlink()

    def taker(self) -> int:
        """The pid of the server's taker: its child process running ``spawn_main`` (the other
        child, if any, is multiprocessing's resource tracker)."""
        assert self.proc is not None
        found = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        takers = [int(c) for c in found if b"spawn_main" in _cmdline(int(c))]
        assert len(takers) == 1, f"one taker process, not {takers}"
        return takers[0]

    def stop_when_stored(self) -> None:
        """Wait until the stream is empty (everything taken), then stop the server."""
        journal = f"tasuki:intake:{self.queue.name}"
        deadline = time.monotonic() + 60
        while self.queue.connection.xlen(journal):
            assert time.monotonic() < deadline, "the server never took what it accepted"
            time.sleep(0.05)
        assert self.proc is not None
        self.proc.terminate()
        self.proc.wait(timeout=30)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.queue.empty()  # type: ignore[no-untyped-call]
        self.store.engine.dispose()


@pytest.mark.parametrize("point", ["intake.committed", "intake.queued"])
def test_a_server_killed_while_taking_leaves_the_next_one_nothing_to_do_twice(
    tmp_path: Path, redis_url: str, point: str
) -> None:
    """Killed after the store committed (nothing queued yet) or after the jobs were queued
    (nothing acknowledged yet): the next server claims the entries, the store says which are
    new, and every delivery and record ends up exactly once, as in a clean run; what the kill
    left unqueued is owed in the store, where ``worker.recover`` finds it."""
    served = Served(tmp_path, redis_url)
    try:
        served.start(pause_at=point)
        answers = [served.post(_body(start, 10)) for start in (0, 10, 20)]
        assert [a["accepted"] for a in answers] == [10, 10, 10]
        served.kill_at(point)
        served.start()  # claims the dead server's entries once they are idle long enough
        served.post(_body(30, 10))  # and goes on taking new ones
        served.stop_when_stored()
        deliveries, owed = _store_state(served.store)
        assert deliveries == {f"n{i}": 1 for i in range(40)}
        assert owed == {f"00Q{i:04d}": 1 for i in range(40)}
        queued = _queued(served.queue)
        assert all(count == 1 for count in queued.values())
        if point == "intake.queued":
            assert queued == owed  # the dead server's jobs were queued: nothing is queued twice
        else:
            # The dead server committed its batch and queued nothing: its records are owed, not
            # queued, until recovery; the rest were queued once by the next server.
            assert set(queued) < set(owed)
    finally:
        served.close()


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return b""


def _running(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie waiting to be reaped has stopped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_a_taker_whose_server_was_killed_stops_by_itself(tmp_path: Path, redis_url: str) -> None:
    """SIGKILL gives a server no chance to stop its taker: the taker sees that the process
    that started it is gone and exits within about a second, so no orphan keeps taking for a
    server that no longer answers (the next server's taker claims what was pending)."""
    served = Served(tmp_path, redis_url)
    try:
        served.start()
        taker = served.taker()
        assert served.post(_body(0, 3))["accepted"] == 3
        assert served.proc is not None
        os.kill(served.proc.pid, signal.SIGKILL)
        served.proc.wait()
        deadline = time.monotonic() + 15
        while _running(taker):
            assert time.monotonic() < deadline, "the taker outlived its server"
            time.sleep(0.05)
    finally:
        served.close()
