"""A small org pushed through real ``tasuki worker`` processes, and its end state for comparison.

Each :class:`Pipeline` has its own data folder (SQLite store, embedded CRM), its own queue on
the real Redis and its own config file; the workers are real subprocesses of the installed
``tasuki`` command, so a SIGKILL kills what production would run.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from rq import Queue
from sqlalchemy import select

from connectors.local import LocalCrm
from tasuki.demo.org import OrgSpec, generate
from tasuki.mapping import Mapper
from tasuki.owed import count
from tasuki.queue import connect, job_queue
from tasuki.settings import Settings, builtin_path, load_settings
from tasuki.store.db import Store, open_store
from tasuki.store.models import Handoff, KpiValue, Verdict, WriteIntent
from tasuki.testhooks import PAUSE_AT, PAUSE_DIR
from tests.notices import deliver_pending
from webhooks import create_app

TASUKI = str(Path(sys.executable).with_name("tasuki"))
SECRET = "crash-test-secret"
ORG = OrgSpec(seed=11, leads=60, until=date(2026, 11, 20), days=45)
STAMPS = {"SystemModstamp", "CreatedDate"}


def _config(
    folder: Path,
    queue_name: str,
    redis_url: str,
    database_url: str | None,
    instant_recovery: bool = True,
) -> dict[str, str]:
    text = builtin_path("tasuki.yaml").read_text(encoding="utf-8")
    path = folder / "tasuki.yaml"
    text += f"\nqueue_name: {queue_name}\n"
    if instant_recovery:
        # Recovery at once in tests: a job whose worker was killed is taken for lost after 1 s.
        text += "recovery:\n  grace_seconds: 0\n  abandoned_after_seconds: 1\n"
    path.write_text(text, encoding="utf-8")
    env = {
        "TASUKI_CONFIG": str(path),
        "TASUKI_DATA_DIR": str(folder / "data"),
        "TASUKI_REDIS_URL": redis_url,
        "TASUKI_WEBHOOK_SECRET": SECRET,
    }
    if database_url:
        env["TASUKI_DATABASE_URL"] = database_url
    return env


@dataclass
class EndState:
    """What a run leaves: the store's figures and the CRM's records and writes."""

    handoffs: set[tuple[str, str, str, str, str]]
    verdicts: set[tuple[Any, ...]]
    kpis: set[tuple[Any, ...]]
    crm: dict[str, list[str]]
    writes: dict[tuple[str, str], int]
    owed: dict[str, int] = field(default_factory=dict)
    intents: int = 0


class Pipeline:
    """One org, one store (SQLite in the folder, or ``database_url``), one queue; workers run
    as subprocesses."""

    def __init__(
        self,
        folder: Path,
        redis_url: str,
        database_url: str | None = None,
        *,
        instant_recovery: bool = True,
    ) -> None:
        """``instant_recovery``: a job whose worker sent no heartbeat for 1 s is taken for lost,
        as the kill tests need; ``False`` keeps the shipped recovery settings, under which a job
        running on another worker is never mistaken for a lost one."""
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        queue_name = f"crash-{uuid.uuid4().hex[:8]}"
        self.env = _config(folder, queue_name, redis_url, database_url, instant_recovery)
        self.settings: Settings = load_settings(self.env)
        self.store: Store = open_store(self.settings.database_url)
        self.crm = LocalCrm(self.settings.data_dir / "crm.db")
        generate(self.crm, self.settings.config, ORG)
        self.queue: Queue = job_queue(self.settings, connect(self.settings))
        self.app = create_app(self.settings, store=self.store, queue=self.queue)
        self.kills = 0

    def deliver(self) -> int:
        """POST the CRM's pending change notices, signed, as the CRM would; returns how many."""
        return deliver_pending(self.app, self.crm, SECRET).notices

    def _worker(self, pause_at: str | None) -> subprocess.Popen[bytes]:
        env = {**os.environ, **self.env}
        env.pop(PAUSE_AT, None)
        if pause_at:
            env[PAUSE_AT] = pause_at
            env[PAUSE_DIR] = str(self.folder)
        return subprocess.Popen(
            [TASUKI, "worker", "--burst"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )

    def work(self, pause_at: str | None = None) -> bool:
        """Run a burst worker until the queue is dry; with ``pause_at``, SIGKILL it (work horse
        and all) the moment it reaches that checkpoint. True when it was killed there."""
        proc = self._worker(pause_at)
        mark = self.folder / (pause_at or "-").partition("#")[0]
        while pause_at and proc.poll() is None and not mark.exists():
            time.sleep(0.02)
        if pause_at and mark.exists():
            # The work horse runs in a session of its own (RQ calls setsid): kill it by the pid
            # it announced, and the worker with it.
            os.kill(int(mark.read_text()), signal.SIGKILL)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            mark.unlink()
            self.kills += 1
            # Let the dead job's heartbeat age past recovery.abandoned_after_seconds (1 s).
            time.sleep(1.5)
            return True
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
        return False

    def work_concurrently(self, workers: int) -> None:
        """Run ``workers`` burst workers at once until the queue is dry; each must exit 0.

        A burst worker quits when it finds the queue empty; work a job queues next (KPIs,
        write-back) is queued by a worker still running, which then takes it."""
        procs = [self._worker(None) for _ in range(workers)]
        # Each one's log is read while the others run, so none blocks on a full pipe.
        with ThreadPoolExecutor(workers) as pool:
            outputs = list(pool.map(lambda p: p.communicate(timeout=300)[1], procs))
        failed = [err.decode() for p, err in zip(procs, outputs, strict=True) if p.returncode]
        assert not failed, failed

    def run(self, pause_at: str | None = None) -> bool:
        """The whole pipeline, as the demo runs it: notices, work, echoes; a kill at
        ``pause_at`` the first time it is reached, then workers again until all is done."""
        killed = False
        for _ in range(3):
            if not self.deliver():
                break
            if pause_at and not killed:
                killed = self.work(pause_at)
            self.work()
        self.work()  # a recovery pass after the echoes settled (each start queues one)
        return killed

    def end_state(self) -> EndState:
        """The figures of the store and the contents of the CRM, comparable between runs."""
        with self.store.session() as s:
            handoffs = {
                (
                    h.boundary,
                    h.record_id,
                    h.handed_at.isoformat(),
                    h.sender_id or "",
                    h.receiver_id or "",
                )
                for h in s.scalars(select(Handoff))
            }
            verdicts = {
                (
                    v.handoff.boundary,
                    v.handoff.record_id,
                    v.handoff.handed_at.isoformat(),
                    v.outcome,
                    v.score,
                    tuple(x.message for x in v.violations),
                )
                for v in s.scalars(select(Verdict))
            }
            kpis = {
                (k.kpi_id, k.subject_kind, k.subject_id, k.period, k.value, k.target)
                for k in s.scalars(select(KpiValue))
            }
            owed = count(s)
            intents = len(s.scalars(select(WriteIntent.id)).all())
        mapper = Mapper(self.settings.config)
        keys = {mapper.key_field(o) for o in mapper.objects} - {None}
        db = sqlite3.connect(self.settings.data_dir / "crm.db")
        crm: dict[str, list[str]] = {}
        identity: dict[str, str] = {}
        for obj, rid, data in db.execute("SELECT object, id, fields FROM records ORDER BY 1, 2"):
            fields = {k: v for k, v in json.loads(data).items() if k not in STAMPS}
            crm.setdefault(obj, []).append(json.dumps(fields, sort_keys=True))
            identity[rid] = next((str(fields[k]) for k in keys if k and k in fields), rid)
        for values in crm.values():
            values.sort()
        writes: dict[tuple[str, str], int] = {}
        for obj, rid in db.execute(
            "SELECT object, record_id FROM outbox WHERE changed_by = ?",
            (self.crm.integration_user,),
        ):
            key = (obj, identity.get(rid, rid))
            writes[key] = writes.get(key, 0) + 1
        db.close()
        return EndState(handoffs, verdicts, kpis, crm, writes, owed, intents)

    def close(self) -> None:
        """Empty this pipeline's queue and release the store."""
        self.queue.empty()  # type: ignore[no-untyped-call]
        self.store.engine.dispose()
