"""The pipeline end to end: embedded CRM → signed webhook → real Redis → real rq worker process
→ store → handoffs → verdicts → KPIs → write-back into the CRM; on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from rq import Queue
from sqlalchemy import func, select

from connectors.local import LocalCrm
from tasuki import runtime, startup
from tasuki.crm import FieldChange
from tasuki.demo.org import OrgSpec, generate
from tasuki.errors import CrmUnavailable
from tasuki.queue import connect, job_queue
from tasuki.settings import Settings
from tasuki.store.db import Store
from tasuki.store.models import Handoff, Verdict, WriteRun
from tests.notices import taking_client
from webhooks import create_app
from webhooks.local import signed_headers

SPEC = OrgSpec(seed=11, leads=60, until=date(2026, 11, 20))


@pytest.fixture
def live(settings: Settings, store: Store, redis_url: str) -> Iterator[tuple[Settings, Store]]:
    """Settings pointing at the parametrized store and the real Redis."""
    url = store.engine.url.render_as_string(hide_password=False)
    yield dataclasses.replace(settings, database_url=url, redis_url=redis_url), store


def _deliver(client: FlaskClient, crm: LocalCrm, secret: str) -> tuple[int, int]:
    accepted = duplicates = 0
    while batch := crm.pending_notices(100):
        body = json.dumps(
            {
                "notices": [
                    {"id": f"local:{seq}", "object": o, "record_ids": [r], "changed_by": by}
                    for seq, o, r, by in batch
                ]
            }
        ).encode()
        resp = client.post("/webhooks/local", data=body, headers=signed_headers(secret, body))
        assert resp.status_code == 200, resp.get_data(as_text=True)
        accepted += resp.get_json()["accepted"]
        duplicates += resp.get_json()["duplicates"]
        crm.mark_delivered([b[0] for b in batch])
    return accepted, duplicates


def _run_worker_process(settings: Settings) -> None:
    env = {
        **os.environ,
        "TASUKI_DATABASE_URL": settings.database_url,
        "TASUKI_REDIS_URL": settings.redis_url or "",
        "TASUKI_DATA_DIR": str(settings.data_dir),
        "TASUKI_WEBHOOK_SECRET": "test-webhook-secret",
    }
    # The queue name is the only setting the tests change: hand it over through a config file.
    config = settings.data_dir / "tasuki.yaml"
    config.write_text(
        settings.config_path.read_text(encoding="utf-8")
        + f"\nqueue_name: {settings.config.queue_name}\n",
        encoding="utf-8",
    )
    env["TASUKI_CONFIG"] = str(config)
    done = subprocess.run(
        [sys.executable, "-m", "tasuki", "worker", "--burst"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # A job that raised leaves a traceback in the worker's log even though the burst ends well.
    assert "Traceback" not in done.stderr, done.stderr[-5000:]


def _counts(store: Store) -> tuple[int, int, int]:
    with store.session() as s:
        return (
            s.scalar(select(func.count()).select_from(Handoff)) or 0,
            s.scalar(select(func.count()).select_from(Verdict)) or 0,
            s.scalar(select(func.coalesce(func.sum(WriteRun.fields), 0))) or 0,
        )


def test_a_crm_change_travels_the_whole_pipeline(live: tuple[Settings, Store]) -> None:
    settings, store = live
    crm = LocalCrm(settings.data_dir / "crm.db")
    generate(crm, settings.config, SPEC)
    queue = job_queue(settings)
    app = create_app(settings, store=store, queue=queue)
    secret = "test-webhook-secret"
    with taking_client(app) as client:
        accepted, duplicates = _deliver(client, crm, secret)
        assert accepted > 100 and duplicates == 0
        assert queue.count > 0
        _run_worker_process(settings)
        handoffs, verdicts, fields = _counts(store)
        with store.session() as s:
            per_boundary = dict(
                s.execute(select(Handoff.boundary, func.count()).group_by(Handoff.boundary)).all()
            )
        assert set(per_boundary) == {"MK→IS", "IS→FS", "FS→CS"}
        assert verdicts == handoffs > 0
        assert fields > 0
        # The verdict is on the CRM record now, written by tasuki.
        # The verdict of each deal's latest handoff is on the CRM record now, written by tasuki.
        with store.session() as s:
            latest = {
                h.record_id: f"{h.boundary} {h.verdict.outcome}"
                for h in s.scalars(
                    select(Handoff).where(Handoff.object == "deal").order_by(Handoff.handed_at)
                )
                if h.verdict is not None
            }
        assert latest
        for record_id, expected in latest.items():
            assert crm.get("Opportunity", record_id)["Tasuki_Verdict__c"] == expected  # type: ignore[index]

        # Our writes come back as notices; they are echoes and cause no new work.
        echoes, _ = _deliver(client, crm, secret)
        assert echoes > 0
        _run_worker_process(settings)
        assert _counts(store) == (handoffs, verdicts, fields)


def test_the_same_notice_twice_makes_one_handoff_and_no_second_write(
    settings: Settings, sqlite_store: Store
) -> None:
    crm = LocalCrm(settings.data_dir / "crm.db")
    generate(crm, settings.config, SPEC)
    connection = connect(settings)
    queue = job_queue(settings, connection)
    app = create_app(settings, store=sqlite_store, queue=queue)
    rt = startup.assemble(settings, sqlite_store, crm, redis_connection=connection)
    notices = crm.pending_notices(10**6)
    with runtime.activate(rt), taking_client(app) as client:
        _deliver(client, crm, "test-webhook-secret")
        _work(queue)
        echoes, _ = _deliver(client, crm, "test-webhook-secret")  # our own writes coming back
        assert echoes > 0
        _work(queue)
        first = _counts(sqlite_store)
        # Deliver every notice again, with the same delivery ids: all duplicates.
        crm_again = LocalCrm(settings.data_dir / "crm.db")
        crm_again._db.execute("UPDATE outbox SET delivered=0 WHERE seq <= ?", (notices[-1][0],))
        accepted, duplicates = _deliver(client, crm_again, "test-webhook-secret")
        assert (accepted, duplicates) == (0, len(notices))
        assert queue.count == 0
        # And the job itself run twice changes nothing and writes nothing.
        import worker

        lead_ids = [rid for _, obj, rid, _ in notices if obj == "Lead"]
        worker.sync_records("Lead", lead_ids)
        worker.write_back()
        assert _counts(sqlite_store) == first


class _FlakyCrm(LocalCrm):
    """The embedded CRM with a network fault on the first history call (the network edge)."""

    failures = 1

    def history(self, object: str, ids: Sequence[str], fields: Sequence[str]) -> list[FieldChange]:
        if self.failures:
            self.failures -= 1
            raise CrmUnavailable("503 Service Unavailable", status=503)
        return super().history(object, ids, fields)


def _work(queue: Queue) -> None:
    from rq import SimpleWorker

    SimpleWorker([queue], connection=queue.connection).work(burst=True, logging_level="WARNING")


def test_a_crashed_job_rerun_gives_the_same_result(
    settings: Settings, sqlite_store: Store, tmp_path: Path
) -> None:
    import worker

    clean_crm = LocalCrm(tmp_path / "clean.db")
    generate(clean_crm, settings.config, SPEC)
    flaky = _FlakyCrm(tmp_path / "flaky.db")
    generate(flaky, settings.config, SPEC)
    ids = {
        o: [r for _, obj, r, _ in flaky.pending_notices(10**6) if obj == o]
        for o in ("User", "Lead")
    }

    flaky_rt = startup.assemble(settings, sqlite_store, flaky, redis_connection=connect(settings))
    with runtime.activate(flaky_rt):
        worker.sync_records("User", ids["User"])
        with pytest.raises(CrmUnavailable):
            worker.sync_records("Lead", ids["Lead"])
        worker.sync_records("Lead", ids["Lead"])  # the retry
        flaky_state = _handoff_rows(sqlite_store)

    other = dataclasses.replace(settings, database_url=f"sqlite:///{tmp_path / 'clean-store.db'}")
    from tasuki.store.db import open_store

    clean_store = open_store(other.database_url)
    with runtime.activate(
        startup.assemble(other, clean_store, clean_crm, redis_connection=connect(other))
    ):
        worker.sync_records("User", ids["User"])
        worker.sync_records("Lead", ids["Lead"])
        assert _handoff_rows(clean_store) == flaky_state
    assert flaky_state


def _handoff_rows(store: Store) -> list[tuple[str, str, str | None, str | None, str | None]]:
    with store.session() as s:
        return [
            (
                h.boundary,
                h.record_id,
                h.sender_id,
                h.receiver_id,
                h.verdict.outcome if h.verdict else None,
            )
            for h in s.scalars(select(Handoff).order_by(Handoff.boundary, Handoff.record_id))
        ]
