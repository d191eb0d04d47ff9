"""``tasuki up`` as a small company runs it: one real process group, stopped with SIGTERM.

Each test starts the installed ``tasuki up --workers 2`` with a data folder of its own (SQLite
store and embedded CRM, or a fresh PostgreSQL database) and a queue of its own on the real
Redis, POSTs the org's signed change notices to its real HTTP port, and watches the store.

- the whole burst is done (handoffs judged, nothing owed); a worker killed with SIGKILL is
  started again; SIGTERM ends every process below ``up`` and ``up`` exits 0;
- a job in flight at SIGTERM that does not end within ``--stop-timeout`` is killed with its
  work horse; its work stays owed in the store and the next start finishes it, to the same
  handoffs and verdicts as the undisturbed run;
- a job in flight at SIGTERM that ends within the timeout finishes (RQ's warm shutdown): ``up``
  waits for it, its effects are committed, and ``up`` exits 0;
- ``up`` refuses to start (exit 2) on a broken rules file or without Redis.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from sqlalchemy import func, select, text

from connectors.local import LocalCrm
from tasuki.cli import main
from tasuki.demo.org import OrgSpec, generate
from tasuki.owed import Owed, count
from tasuki.settings import builtin_path, load_settings
from tasuki.store.db import Store, open_store
from tasuki.store.models import Handoff, OwedWork, Record, Verdict
from tasuki.testhooks import PAUSE_AT, PAUSE_DIR
from tasuki.up import descendants
from tests.reliability.redis_server import free_port
from tests.services import fresh_database
from webhooks.local import signed_headers

TASUKI = str(Path(sys.executable).with_name("tasuki"))
SECRET = "up-test-secret"
ORG = OrgSpec(seed=5, leads=24, until=date(2026, 11, 20), days=30)
WAIT = 120.0
"""Seconds any condition may take (four Python processes start on a busy two-core machine)."""


def _wait_for(what: str, condition: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def _identity(pid: int) -> tuple[int, str] | None:
    """(pid, start time) while the process runs and is not a zombie; None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    return None if fields[0] == "Z" else (pid, fields[19])


def _alive(identities: set[tuple[int, str]]) -> set[tuple[int, str]]:
    return {i for i in identities if _identity(i[0]) == i}


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _children(proc: subprocess.Popen[bytes], part: str) -> set[int]:
    """The pids of ``up``'s own children running ``tasuki PART`` (not their forks)."""
    found = set()
    for pid in descendants(proc.pid):
        try:
            ppid = int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
        except OSError:
            continue
        if ppid == proc.pid and f"tasuki {part}" in _cmdline(pid):
            found.add(pid)
    return found


@dataclass
class Deployment:
    """One folder, one queue, one store: what ``tasuki up`` runs against."""

    folder: Path
    env: dict[str, str]
    store: Store
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *args: str, **extra_env: str) -> subprocess.Popen[bytes]:
        """``tasuki up --workers 2`` on this deployment's port, its output in ``up.log``."""
        log = (self.folder / "up.log").open("ab")
        proc = subprocess.Popen(
            [TASUKI, "up", "--workers", "2", "--port", str(self.port), *args],
            env={**self.env, **extra_env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

        def healthy() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"tasuki up exited {proc.returncode}:\n{self.log()}")
            try:
                return requests.get(f"{self.base}/healthz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        _wait_for("tasuki up to answer /healthz", healthy)
        return proc

    def log(self) -> str:
        path = self.folder / "up.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def deliver(self, limit: int | None = None) -> int:
        """POST the CRM's pending change notices (at most ``limit``), signed, to the real port."""
        crm = LocalCrm(self.folder / "data" / "crm.db")
        sent = 0
        while batch := crm.pending_notices(min(100, limit - sent) if limit else 100):
            notices = [
                {"id": f"local:{s}", "object": o, "record_ids": [r], "changed_by": b}
                for s, o, r, b in batch
            ]
            body = json.dumps({"notices": notices}).encode()
            answer = requests.post(
                f"{self.base}/webhooks/local",
                data=body,
                headers={"Content-Type": "application/json", **signed_headers(SECRET, body)},
                timeout=30,
            )
            assert answer.status_code == 200, answer.text
            crm.mark_delivered([s for s, *_ in batch])
            sent += len(batch)
            if limit and sent >= limit:
                break
        return sent

    def owed(self) -> dict[str, int]:
        with self.store.session() as s:
            return count(s)

    def judged(self) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
        """The handoffs and verdicts in the store, comparable between runs."""
        with self.store.session() as s:
            handoffs = {
                (h.boundary, h.record_id, h.handed_at.isoformat())
                for h in s.scalars(select(Handoff))
            }
            verdicts = {
                (v.handoff.boundary, v.handoff.record_id, v.outcome, v.score)
                for v in s.scalars(select(Verdict))
            }
        return handoffs, verdicts

    def done(self) -> bool:
        """Every notice synced, judged, counted and written back: nothing owed, handoffs made."""
        with self.store.session() as s:
            handoffs = s.scalar(select(func.count()).select_from(Handoff)) or 0
        return handoffs > 0 and self.owed() == {}


Cleanup = list[subprocess.Popen[bytes] | Deployment]
"""What a test started, to stop and close whatever happens."""


def _deployment(
    folder: Path, redis_url: str, database_url: str | None = None, *, instant_recovery: bool
) -> Deployment:
    config = folder / "tasuki.yaml"
    text_ = builtin_path("tasuki.yaml").read_text(encoding="utf-8")
    text_ += f"\nqueue_name: up-{uuid.uuid4().hex[:8]}\n"
    if instant_recovery:
        # The next start takes the killed job's work for lost at once (as the crash tests do).
        text_ += "recovery:\n  grace_seconds: 0\n  abandoned_after_seconds: 1\n"
    config.write_text(text_, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASUKI_")}
    env.update(
        TASUKI_CONFIG=str(config),
        TASUKI_DATA_DIR=str(folder / "data"),
        TASUKI_REDIS_URL=redis_url,
        TASUKI_WEBHOOK_SECRET=SECRET,
    )
    if database_url:
        env["TASUKI_DATABASE_URL"] = database_url
    settings = load_settings(env)
    generate(LocalCrm(settings.data_dir / "crm.db"), settings.config, ORG)
    return Deployment(folder, env, open_store(settings.database_url), free_port())


def _below(proc: subprocess.Popen[bytes]) -> set[tuple[int, str]]:
    """Every process below ``up`` now (serve, workers, their RQ scheduler and work horses)."""
    return {i for pid in descendants(proc.pid) if (i := _identity(pid)) is not None}


def _stop(proc: subprocess.Popen[bytes], deployment: Deployment) -> set[tuple[int, str]]:
    """SIGTERM ``up`` and wait for it to exit 0; the processes that were below it."""
    below = _below(proc)
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=WAIT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"tasuki up did not stop:\n{deployment.log()}")
    assert code == 0, deployment.log()
    return below


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        for pid in [proc.pid, *descendants(proc.pid)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait()


@pytest.fixture
def cleanup() -> Iterator[Cleanup]:
    """Processes to kill (whole trees, should a test fail half-way) and stores to close."""
    started: Cleanup = []
    yield started
    for item in started:
        if isinstance(item, Deployment):
            item.store.engine.dispose()
        else:
            _kill(item)


@dataclass
class FirstRun:
    """What ``tasuki up`` did with the org's burst, then with a worker killed and SIGTERM."""

    handoffs: set[tuple[Any, ...]]
    verdicts: set[tuple[Any, ...]]
    parts: dict[str, int]
    below: set[tuple[int, str]]
    left: set[tuple[int, str]]
    log: str


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory, redis_url_module: str) -> FirstRun:
    """The org's burst through ``tasuki up --workers 2``; then one worker SIGKILLed, then
    SIGTERM. Also the reference the kill test is held to."""
    deployment = _deployment(
        tmp_path_factory.mktemp("up"), redis_url_module, instant_recovery=False
    )
    proc = deployment.start()
    try:
        assert deployment.deliver() > 0
        _wait_for("the burst to be done", deployment.done)
        handoffs, verdicts = deployment.judged()
        parts = {p: len(_children(proc, p)) for p in ("serve", "worker", "scheduler")}
        workers = _children(proc, "worker")
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)

        def replaced() -> bool:
            now = _children(proc, "worker")
            return victim not in now and len(now) == len(workers)

        _wait_for("the killed worker to be started again", replaced)
        below = _stop(proc, deployment)
        return FirstRun(handoffs, verdicts, parts, below, _alive(below), deployment.log())
    finally:
        _kill(proc)
        deployment.store.engine.dispose()


def test_up_does_the_work_restarts_a_dead_worker_and_stops_everything_on_sigterm(
    first_run: FirstRun,
) -> None:
    assert first_run.handoffs and first_run.verdicts  # the burst was judged, nothing owed
    assert first_run.parts == {"serve": 1, "worker": 2, "scheduler": 1}
    assert re.search(r"worker\.\d ended unexpectedly \(signal SIGKILL\)", first_run.log)
    assert re.search(r"restarting worker\.\d in 1 s", first_run.log)
    assert len(first_run.below) >= 4  # serve, two workers, the scheduler (and RQ's helpers)
    assert first_run.left == set(), "processes left behind by tasuki up"
    assert "every part stopped" in first_run.log


def test_a_job_killed_at_the_stop_timeout_is_finished_by_the_next_start(
    tmp_path: Path, redis_url: str, first_run: FirstRun, cleanup: Cleanup
) -> None:
    deployment = _deployment(tmp_path, redis_url, instant_recovery=True)
    cleanup.append(deployment)
    # Every sync's work horse stops for good right after committing its records: the job is in
    # flight at SIGTERM and never ends on its own.
    paused = {PAUSE_AT: "sync.committed", PAUSE_DIR: str(tmp_path)}
    proc = deployment.start("--stop-timeout", "3", **paused)
    cleanup.append(proc)
    assert deployment.deliver() > 0
    mark = tmp_path / "sync.committed"
    _wait_for("a sync to stop at its checkpoint", mark.exists)
    horse = _identity(int(mark.read_text()))
    assert horse is not None

    below = _stop(proc, deployment)
    assert horse in below
    assert _alive(below) == set(), "the work horse (or another process) outlived tasuki up"
    assert "still running, killing it" in deployment.log()
    left = deployment.owed()
    assert left.get(Owed.JUDGE.value, 0) + left.get(Owed.SYNC.value, 0) > 0, left

    proc = deployment.start()
    cleanup.append(proc)
    _wait_for("the next start to finish the owed work", deployment.done)
    handoffs, verdicts = deployment.judged()
    _stop(proc, deployment)
    assert handoffs == first_run.handoffs
    assert verdicts == first_run.verdicts


@pytest.fixture
def fresh_postgres() -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards (skips when the server is down)."""
    with fresh_database("tasuki_up") as url:
        yield url


def test_a_job_in_flight_at_sigterm_finishes_before_up_exits(
    tmp_path: Path, redis_url: str, fresh_postgres: str, cleanup: Cleanup
) -> None:
    deployment = _deployment(tmp_path, redis_url, fresh_postgres, instant_recovery=False)
    cleanup.append(deployment)
    proc = deployment.start()
    cleanup.append(proc)
    engine = deployment.store.engine
    with engine.connect() as holder, engine.connect() as watcher:
        # Writes to the snapshots wait for this transaction: the sync job stays in flight.
        holder.execute(text("LOCK TABLE records IN EXCLUSIVE MODE"))
        assert deployment.deliver(limit=1) == 1

        def blocked() -> bool:
            waiting = watcher.execute(
                text(
                    "SELECT count(*) FROM pg_locks "
                    "WHERE NOT granted AND relation = 'records'::regclass"
                )
            ).scalar_one()
            watcher.rollback()
            return bool(waiting)

        _wait_for("the sync job to wait on the records table", blocked)
        below = _below(proc)
        rest = {
            i
            for pid in _children(proc, "serve") | _children(proc, "scheduler")
            if (i := _identity(pid)) is not None
        }
        proc.send_signal(signal.SIGTERM)
        _wait_for("serve and the scheduler to stop", lambda: not _alive(rest))
        assert proc.poll() is None, "tasuki up did not wait for the job in flight"
        holder.commit()  # the lock goes; the job carries on

    try:
        code = proc.wait(timeout=WAIT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"tasuki up did not stop:\n{deployment.log()}")
    assert code == 0, deployment.log()
    assert _alive(below) == set()
    with deployment.store.session() as s:
        synced = s.scalar(select(func.count()).select_from(Record)) or 0
        syncs_owed = s.scalar(
            select(func.count()).select_from(OwedWork).where(OwedWork.kind == Owed.SYNC.value)
        )
    assert synced >= 1 and syncs_owed == 0, "the job in flight did not finish"


BROKEN_RULES = """\
rule_sets:
  - boundary: IS→FS
    rules:
      - id: notes
        check: {requird: deal.hearing_notes}
        severity: error
        message: ヒアリング内容がありません
"""


@pytest.mark.parametrize("mistake", ["broken rules", "no redis", "no secret"])
def test_up_refuses_to_start_on_a_problem(tmp_path: Path, redis_url: str, mistake: str) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(BROKEN_RULES, encoding="utf-8")
    config = tmp_path / "tasuki.yaml"
    text_ = builtin_path("tasuki.yaml").read_text(encoding="utf-8")
    if mistake == "broken rules":
        text_ = text_.replace("rules: [builtin:rules/default.yaml]", f"rules: [{rules}]")
    config.write_text(text_, encoding="utf-8")
    env = {
        "TASUKI_CONFIG": str(config),
        "TASUKI_DATA_DIR": str(tmp_path / "data"),
        "TASUKI_REDIS_URL": "" if mistake == "no redis" else redis_url,
        "TASUKI_WEBHOOK_SECRET": "" if mistake == "no secret" else SECRET,
    }
    result = CliRunner().invoke(main, ["up", "--port", str(free_port())], env=env)
    assert result.exit_code == 2, result.output
    expected = {
        "broken rules": f"{rules}:5:",
        "no redis": "TASUKI_REDIS_URL is not set",
        "no secret": "TASUKI_WEBHOOK_SECRET is not set",
    }[mistake]
    assert expected in result.output
    assert not (tmp_path / "data").exists()  # nothing started, no store made
