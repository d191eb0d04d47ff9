"""``tasuki demo``: the embedded CRM's activity through the real webhook app, queue and jobs.

Nothing is short-circuited: the embedded CRM's change notices are signed and POSTed to the Flask
app, which dedupes and enqueues RQ jobs; an RQ worker in this process runs the same job functions
a ``tasuki worker`` runs (on an in-process Redis stand-in unless ``TASUKI_REDIS_URL`` is set), and
tasuki's writes go back to the embedded CRM through the single write-back path. Our own writes
come back as notices too, and are recognised as echoes.
"""

from __future__ import annotations

import json
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from pydantic import SecretStr
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from sqlalchemy import func, select

import worker
from connectors.local import LocalCrm
from tasuki import logs, runtime, startup
from tasuki.demo import DemoFailed
from tasuki.demo.org import OrgSpec, generate
from tasuki.demo.recordings import deliver as deliver_recordings
from tasuki.demo.recordings import with_provider_secrets
from tasuki.queue import connect, job_queue
from tasuki.settings import Settings
from tasuki.store.db import open_store
from tasuki.store.models import LedgerEntry, WriteRun, utcnow
from webhooks import create_app, services
from webhooks.local import signed_headers

NOTICES_PER_POST = 100
"""Change notices per webhook request (Salesforce sends up to 100 per Outbound Message)."""

Progress = Callable[[str, int, int], None]


@dataclass
class WriteTotals:
    """Write-back figures summed over the write runs of one demo run."""

    runs: int = 0
    records: int = 0
    fields: int = 0
    calls: int = 0
    min_calls: int = 0
    rejected: int = 0
    by_object: dict[str, tuple[int, int]] = field(default_factory=dict)
    """CRM object → (records, fields) written by this run."""


@dataclass
class DemoOutcome:
    """What one demo run did."""

    spec: OrgSpec
    run_number: int
    seeded: bool
    crm_changes: int = 0
    notices: int = 0
    duplicates: int = 0
    requests: int = 0
    jobs: int = 0
    echoes: int = 0
    handoffs_new: int = 0
    writes: WriteTotals = field(default_factory=WriteTotals)
    read_calls: int = 0
    seconds: float = 0.0
    pipeline_seconds: float = 0.0
    report_path: Path | None = None


def _prepare_crm(
    settings: Settings, spec: OrgSpec, progress: Progress
) -> tuple[LocalCrm, bool, int]:
    crm_path = settings.data_dir / "crm.db"
    if crm_path.exists():
        crm = LocalCrm(crm_path)
        if crm.meta("org") == spec.key:
            return crm, False, 0
        # Another seed or size: start the embedded CRM and the default store afresh.
        del crm
        shutil.rmtree(settings.data_dir)
    crm = LocalCrm(crm_path)
    changes = generate(crm, settings.config, spec, lambda n, t: progress("Seeding the CRM", n, t))
    return crm, True, changes


def _deliver(
    crm: LocalCrm, client: object, secret: str, outcome: DemoOutcome, progress: Progress
) -> None:
    """POST every pending change notice of the CRM, signed, 100 to a request."""
    total = len(crm.pending_notices(limit=10**9))
    sent = 0
    while True:
        batch = crm.pending_notices(NOTICES_PER_POST)
        if not batch:
            return
        body = json.dumps(
            {
                "notices": [
                    {"id": f"local:{seq}", "object": obj, "record_ids": [rid], "changed_by": by}
                    for seq, obj, rid, by in batch
                ]
            }
        ).encode()
        response = client.post(  # type: ignore[attr-defined]
            "/webhooks/local", data=body, headers=signed_headers(secret, body)
        )
        if response.status_code != 200:
            raise DemoFailed(
                f"webhook answered {response.status_code}: {response.get_data(as_text=True)}"
            )
        answer = response.get_json()
        outcome.requests += 1
        outcome.notices += int(answer["accepted"])
        outcome.duplicates += int(answer["duplicates"])
        crm.mark_delivered([seq for seq, *_ in batch])
        sent += len(batch)
        progress("Delivering webhooks", sent, total)


class _CountingWorker(SimpleWorker):
    """rq's in-process worker, counting the jobs it performs (rq keeps its counts in Redis)."""

    performed = 0

    def execute_job(self, job: Job, queue: Queue) -> None:
        type(self).performed += 1
        super().execute_job(job, queue)


def _work(queue: Queue, outcome: DemoOutcome, progress: Progress) -> None:
    """Run the queue dry with a burst worker, counting jobs; a failed job stops the demo."""
    before = _CountingWorker.performed
    while queue.count:
        worker = _CountingWorker([queue], connection=queue.connection)
        # Once the process's logging is set up (tasuki.logs), RQ's lines follow its level.
        worker.work(burst=True, max_jobs=20, logging_level=None if logs.configured() else "WARNING")
        done = outcome.jobs + _CountingWorker.performed - before
        progress("Running jobs", done, done + queue.count)
        failed = FailedJobRegistry(queue=queue)
        scheduled = ScheduledJobRegistry(queue=queue)  # type: ignore[no-untyped-call]
        if failed.count or scheduled.count:
            ids = failed.get_job_ids() or scheduled.get_job_ids()
            job = queue.fetch_job(ids[0])
            result = job.latest_result() if job else None
            detail = (result.exc_string or "") if result else ""
            raise DemoFailed(f"job {ids[0]} failed:\n{detail}")
    outcome.jobs += _CountingWorker.performed - before


def run_demo(settings: Settings, spec: OrgSpec, progress: Progress) -> DemoOutcome:
    """Seed (if needed) and push the org through the pipeline; returns what happened."""
    started = time.perf_counter()
    # Every file the config names is checked before the CRM or the store is touched.
    startup.validate(settings)
    crm, seeded, changes = _prepare_crm(settings, spec, progress)
    runs = int(crm.meta("demo_runs") or 0) + 1
    crm.set_meta("demo_runs", str(runs))
    outcome = DemoOutcome(spec=spec, run_number=runs, seeded=seeded, crm_changes=changes)
    if not seeded:
        # Replay: every record notified again, as a CRM's "resend all" would; nothing may change.
        crm.renotify_all()
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
    if not secret:
        # The demo's app lives only inside this process: a one-off secret, never a default.
        secret = secrets.token_hex(16)
        settings = _with_secret(settings, secret)
    settings = with_provider_secrets(settings)
    store = open_store(settings.database_url)
    connection = connect(settings)
    queue = job_queue(settings, connection)
    rt = startup.assemble(settings, store, crm, connection)
    app = create_app(settings, store=store, queue=queue)
    with store.session() as s:
        last_run = s.scalar(select(func.coalesce(func.max(WriteRun.id), 0))) or 0
    reads_before = crm.calls["read"]
    written_since = utcnow()
    pipeline_started = time.perf_counter()
    # What `tasuki serve`'s taker thread does beside the server: accepted deliveries into the
    # store, their jobs queued (here once a round's deliveries are in, before the worker runs).
    intake = services(app).intake
    with runtime.activate(rt), app.test_client() as client:
        if {"zoom", "miitel"} <= set(app.blueprints):
            # The org's calls and meetings reach tasuki as MiiTel and Zoom send them, signed.
            deliver_recordings(crm, client, settings, str(spec.seed), progress)
            intake.store_waiting()
        for _ in range(3):
            # Round 1: the org's changes. Round 2: our own writes coming back (echoes).
            if not crm.pending_notices(1):
                break
            _deliver(crm, client, secret, outcome, progress)
            intake.store_waiting()
            _work(queue, outcome, progress)
        worker.enqueue_write_back(queue)
        _work(queue, outcome, progress)
    outcome.pipeline_seconds = time.perf_counter() - pipeline_started
    outcome.read_calls = crm.calls["read"] - reads_before
    with store.session() as s:
        for run in s.scalars(select(WriteRun).where(WriteRun.id > last_run)):
            w = outcome.writes
            w.runs += 1
            w.records += run.records
            w.fields += run.fields
            w.calls += run.calls
            w.min_calls += run.min_calls
            w.rejected += run.rejected
        for obj, records, fields in s.execute(
            select(
                LedgerEntry.object,
                func.count(func.distinct(LedgerEntry.record_id)),
                func.count(),
            )
            .where(LedgerEntry.system == crm.system, LedgerEntry.written_at >= written_since)
            .group_by(LedgerEntry.object)
            .order_by(LedgerEntry.object)
        ):
            outcome.writes.by_object[obj] = (int(records), int(fields))
    outcome.seconds = time.perf_counter() - started
    return outcome


def _with_secret(settings: Settings, secret: str) -> Settings:
    return replace(settings, webhook_secret=SecretStr(secret))
