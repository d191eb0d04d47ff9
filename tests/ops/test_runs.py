"""Run history: each job execution recorded in the store by the wrapper around the jobs, shown
by ``tasuki runs`` (a write-back with the CRM's messages per refused record), and RQ's failed
jobs listed and queued again by ``tasuki jobs``; through a real RQ worker on the real Redis."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from rq import Queue
from rq.registry import FailedJobRegistry
from sqlalchemy import select

from connectors.local import LocalCrm
from tasuki import runtime, startup
from tasuki.cli import main
from tasuki.errors import CrmUnavailable
from tasuki.ops.runs import recorded
from tasuki.queue import job_queue
from tasuki.settings import Settings
from tasuki.store.db import Store
from tasuki.store.models import JobRun
from tasuki.writeback import DesiredValue, write_back
from tests.ops.support import WEBHOOK_SECRET, forget_queue, work

AT = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
DELETED = ("00600003", "00600007")


@recorded(runtime.current)
def write_deals(ids: list[str]) -> dict[str, int]:
    """A write-back of verdicts to ``ids`` (two of them deleted in the CRM) as a recorded job."""
    rt = runtime.current()
    desired = [DesiredValue("deal", i, "tasuki_verdict", "IS→FS passed") for i in ids]
    report = write_back(rt.store, rt.connector, rt.settings.config, desired)
    return {
        "records": report.records,
        "rejected": len(report.rejected),
        "write_run": report.run_id or 0,
    }


@recorded(runtime.current)
def refused() -> dict[str, int]:
    """A job whose CRM refuses it; the error happens to quote a secret."""
    raise CrmUnavailable(f"CRM down (sent {WEBHOOK_SECRET})")


@pytest.fixture
def worked(
    settings: Settings, sqlite_store: Store, redis_url: str, tmp_path: Path
) -> Iterator[tuple[Queue, CliRunner, dict[str, str]]]:
    """Two jobs run by RQ's worker (a write-back with rejections, a failure); the CLI's env."""
    settings = dataclasses.replace(settings, redis_url=redis_url)
    crm = LocalCrm(settings.data_dir / "crm.db")
    crm.define("Opportunity", ["StageName", "Tasuki_Verdict__c"])
    ids = [f"006{i:05d}" for i in range(10)]
    for i in ids:
        crm.upsert("Opportunity", i, {"StageName": "Meeting Booked"}, at=AT)
    for i in DELETED:
        crm.delete("Opportunity", i)
    queue = job_queue(settings)
    rt = startup.assemble(settings, sqlite_store, crm, redis_connection=queue.connection)
    config = tmp_path / "tasuki.yaml"
    config.write_text(
        settings.config_path.read_text(encoding="utf-8")
        + f"\nqueue_name: {settings.config.queue_name}\n",
        encoding="utf-8",
    )
    env = {
        "TASUKI_CONFIG": str(config),
        "TASUKI_DATA_DIR": str(settings.data_dir),
        "TASUKI_DATABASE_URL": settings.database_url,
        "TASUKI_REDIS_URL": redis_url,
        "TASUKI_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    try:
        with runtime.activate(rt):
            queue.enqueue(f"{__name__}.write_deals", kwargs={"ids": ids}, job_id="write-deals")
            queue.enqueue(f"{__name__}.refused", job_id="refused-1")
            work(queue)
            yield queue, CliRunner(), env
    finally:
        forget_queue(queue.connection, queue.name)


def _json(runner: CliRunner, env: dict[str, str], *args: str) -> Any:
    result = runner.invoke(main, [*args, "--format", "json"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_runs_lists_the_jobs_and_shows_the_crms_messages(
    worked: tuple[Queue, CliRunner, dict[str, str]],
) -> None:
    _queue, runner, env = worked
    runs = _json(runner, env, "runs")
    assert isinstance(runs, list)
    assert [(r["job"], r["status"], r["job_id"]) for r in runs] == [
        ("refused", "failed", "refused-1"),
        ("write_deals", "finished", "write-deals"),
    ]
    written = runs[1]
    assert written["figures"]["records"] == 10 and written["figures"]["rejected"] == 2
    assert written["seconds"] > 0 and written["ended_at"] >= written["started_at"]
    assert written["args"] == {"ids": [f"006{i:05d}" for i in range(10)]}
    # The error is kept, with the secret it quoted masked.
    failed = _json(runner, env, "runs", "--failed")
    assert [r["job"] for r in failed] == ["refused"]
    assert failed[0]["error"] == "CrmUnavailable: CRM down (sent **********)"

    shown = _json(runner, env, "runs", "show", str(written["id"]))
    assert isinstance(shown, dict)
    assert shown["write"] == {
        "records": 10,
        "fields": 10,
        "calls": 1,
        "min_calls": 1,
        "rejected": 2,
    }
    assert [(r["record_id"], r["error_code"], r["message"]) for r in shown["rejections"]] == [
        (i, "ENTITY_IS_DELETED", "entity is deleted") for i in DELETED
    ]
    table = runner.invoke(main, ["runs", "show", str(written["id"])], env=env)
    assert table.exit_code == 0
    assert "ENTITY_IS_DELETED" in table.output and "00600007" in table.output
    listing = runner.invoke(main, ["runs", "--limit", "1"], env=env)
    assert listing.exit_code == 0 and "refused" in listing.output
    assert "write_deals" not in listing.output
    missing = runner.invoke(main, ["runs", "show", "999999"], env=env)
    assert missing.exit_code == 1 and "no run 999999" in missing.output


def test_jobs_failed_and_retry_over_rqs_failed_registry(
    worked: tuple[Queue, CliRunner, dict[str, str]], sqlite_store: Store
) -> None:
    queue, runner, env = worked
    failed = _json(runner, env, "jobs", "failed")
    assert failed == [
        {
            "id": "refused-1",
            "job": f"{__name__}.refused",
            "description": f"{__name__}.refused()",
            "ended_at": failed[0]["ended_at"],
            "error": "tasuki.errors.CrmUnavailable: CRM down (sent **********)",
        }
    ]
    table = runner.invoke(main, ["jobs", "failed"], env=env)
    assert table.exit_code == 0 and "refused-1" in table.output

    retried = runner.invoke(main, ["jobs", "retry", "refused-1"], env=env)
    assert retried.exit_code == 0 and "requeued 1 job(s)" in retried.output
    registry = FailedJobRegistry(queue=queue)
    assert queue.count == 1 and registry.count == 0
    work(queue)  # fails again: a second run in the history
    assert registry.count == 1
    again = runner.invoke(main, ["jobs", "retry", "--all"], env=env)
    assert again.exit_code == 0 and "requeued 1 job(s)" in again.output
    assert queue.get_job_ids() == ["refused-1"]

    nothing = runner.invoke(main, ["jobs", "retry", "refused-1"], env=env)
    assert nothing.exit_code == 1 and "not in the failed registry" in nothing.output
    assert runner.invoke(main, ["jobs", "retry"], env=env).exit_code == 2
    with sqlite_store.session() as s:
        assert [r.status for r in s.scalars(select(JobRun).where(JobRun.func == "refused"))] == [
            "failed",
            "failed",
        ]


def test_old_runs_are_pruned_and_an_idle_recovery_leaves_no_row(
    settings: Settings, sqlite_store: Store
) -> None:
    import worker

    rt = startup.assemble(settings, sqlite_store, LocalCrm(settings.data_dir / "crm.db"))
    with sqlite_store.session() as s:
        old = datetime.now(UTC) - timedelta(days=31)
        s.add(JobRun(func="reconcile", status="finished", started_at=old, worker="w", error=""))
    with runtime.activate(rt):
        assert worker.recover() == {}
        assert worker.prune_deliveries() == {"pruned": 0, "runs_pruned": 1}
    with sqlite_store.session() as s:
        # A direct call is a run too (no job id): the prune itself; the idle recover left none.
        rows = [(r.func, r.job_id, r.status) for r in s.scalars(select(JobRun))]
    assert rows == [("prune_deliveries", None, "finished")]


def test_job_descriptions_leave_payloads_out(settings: Settings, redis_url: str) -> None:
    """What RQ logs and ``tasuki jobs failed`` shows of a job: never a provider's payload."""
    from worker import enqueue_recording, enqueue_sync

    queue = job_queue(dataclasses.replace(settings, redis_url=redis_url))
    try:
        sync = enqueue_sync(queue, "Lead", [f"00Q{i}" for i in range(5)])
        one = enqueue_sync(queue, "Lead", ["00Q9"])
        kept = enqueue_recording(queue, "miitel", "k1", {"phone": "+81312345678", "memo": "x"})
        assert sync is not None and one is not None and kept is not None
        assert sync.description == "worker.sync_records(ids=[5 ids], object='Lead')"
        assert one.description == "worker.sync_records(ids=['00Q9'], object='Lead')"
        assert kept.description == "worker.ingest_recording(provider='miitel')"
    finally:
        forget_queue(queue.connection, queue.name)
