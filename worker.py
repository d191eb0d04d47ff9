"""RQ jobs: top-level functions with small JSON-safe arguments; every one can run twice unharmed.

Each job looks up settings, store and connector in the runtime of its process (the ContextVar
of :mod:`tasuki.runtime`, set by :func:`tasuki.startup.install` at the worker's start; a job
run outside one builds it from the environment, :func:`tasuki.startup.current`), does its work
through the pipeline modules, and queues what follows (write-back, KPIs) as merged jobs: while one
write-back waits in the queue, further requests join it instead of adding calls.

    sync_records(object, ids)   webhook notice → fetch → snapshot → handoffs → verdicts
    reconcile(object=None)      the same from the sync cursor: catches whatever webhooks missed
    sla_sweep()                 re-judges recent handoffs whose SLA may have run out
    recover()                   queues again the work the store says is owed and no job is doing
    compute_kpis()              KPI values for the periods that changed (hourly and on change)
    recompute_closed_period()   nightly: the previous period in full
    write_back()                desired values → ledger diff → batched CRM writes
    ingest_recording(provider, payload)   a MiiTel / Zoom delivery → a kept recording
    match_recordings(full)      links the pending recordings changes concern; re-judges records
    notify(at=None)             due notifications → Slack / e-mail, each once (ledger)
    deliver_agenda(day=None)    the handoff meeting's agenda → its Slack channel / e-mail
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from rq import Worker, get_current_job
from rq.job import Job
from rq.queue import Queue
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tasuki import alarms, kpis, replan, startup
from tasuki.deliveries import DELIVERY_MEMORY, Journal
from tasuki.errors import TasukiError
from tasuki.facts import keep_history_before
from tasuki.judging import Judged, judge_owed, judge_with_dependents, verdict_values
from tasuki.judging import sla_sweep as _sla_sweep
from tasuki.mapping import Mapper
from tasuki.notify import agenda, sweep
from tasuki.notify.outcome import DeliveryUnavailable
from tasuki.ops import runs
from tasuki.ops.runs import prune as prune_runs
from tasuki.owed import Debt, Owed, assign, owe, owed, settle, stale
from tasuki.passes import earlier_work_running, one_at_a_time, write_back_waits
from tasuki.queue import (
    JobSpec,
    current_job_id,
    enqueue_named,
    enqueue_once,
    is_alive,
    job_queue,
    recording_job_id,
    sync_job_id,
)
from tasuki.recordings import pipeline as recordings
from tasuki.runtime import Runtime
from tasuki.store.models import Delivery, SyncCursor, utcnow
from tasuki.sync import SyncResult, sync_ids, sync_people
from tasuki.sync import reconcile as _reconcile
from tasuki.writeback import plan
from tasuki.writeback import write_back as _write_back

log = logging.getLogger(__name__)

recorded = runs.recorded(startup.current)
"""Each job's runs in ``job_runs``, with this process's runtime (:mod:`tasuki.ops.runs`)."""
recorded_when_busy = runs.recorded(startup.current, idle=False)
"""The same, leaving no row for a run with nothing to show."""


class RefreshingWorker(Worker):
    """rq's forking worker that reads changed rules and KPI files before each job.

    The work horse is forked from this process: refreshing here, not only in the horse, keeps
    the new rulebook for every later job instead of rebuilding it in each one."""

    def execute_job(self, job: Job, queue: Queue) -> None:
        try:
            startup.current().refresh()
        except TasukiError:
            # The job itself refreshes again and fails with the file's problems; the worker
            # stays up for the fix.
            log.exception("rules or KPI files changed and are broken")
        super().execute_job(job, queue)


def _follow_up(rt: Runtime, judged: Judged, records_changed: bool) -> None:
    """Queue what judging made due (its debts are already in the store), and a write-back
    pass that waited for this job's records (:mod:`tasuki.passes`)."""
    queue = job_queue(rt.settings, rt.redis_connection)
    if judged.handoffs or judged.verdicts_changed:
        enqueue_kpis(queue)
        enqueue_write_back(queue)
    elif _write_back_waits(rt):
        enqueue_write_back(queue)
    if records_changed and recordings.pass_due(rt):
        # New records may be what an unmatched recording was waiting for.
        enqueue_match_recordings(queue)


def _write_back_waits(rt: Runtime) -> bool:
    """A write-back pass is owed and no job is there to do it (:mod:`tasuki.passes`)."""
    queue = job_queue(rt.settings, rt.redis_connection)
    abandoned = rt.settings.config.recovery.abandoned_after_seconds
    with rt.store.session() as session:
        return write_back_waits(session, queue, abandoned)


def _figures(results: Sequence[SyncResult], judged: Judged) -> dict[str, int]:
    return {
        "records": sum(r.records for r in results),
        "echoes": sum(r.echoes for r in results),
        "deleted": sum(r.deleted for r in results),
        "transitions": sum(r.transitions for r in results),
        "handoffs": judged.handoffs,
        "verdicts_changed": judged.verdicts_changed,
    }


@recorded
def sync_records(object: str, ids: list[str]) -> dict[str, int]:
    """Sync the CRM records ``ids`` of CRM object ``object`` and act on what changed.

    Judges whatever these records owe, including what an earlier, killed run of this job left."""
    rt = startup.current()
    result = sync_ids(rt, object, ids)
    judged = judge_owed(rt, result.object, ids)
    _follow_up(rt, judged, bool(result.changed))
    return _figures([result], judged)


@recorded
def reconcile(object: str | None = None) -> dict[str, int]:
    """Sync every tracked object (or the logical ``object``) from its cursor; users first."""
    rt = startup.current()
    sync_people(rt)
    objects = [object] if object else [o for o in Mapper(rt.settings.config).objects]
    _first_back_fill_is_history(rt, objects)
    results: list[SyncResult] = []
    handoffs = verdicts = 0
    for logical in objects:
        if logical == "user":
            continue
        found = _reconcile(rt, logical)
        results.extend(found)
        changed = [rid for r in found for rid in r.changed]
        if changed:
            judged = judge_owed(rt, logical, changed)
            handoffs += judged.handoffs
            verdicts += judged.verdicts_changed
    judged = Judged(handoffs, verdicts)
    _follow_up(rt, judged, any(r.changed for r in results))
    return _figures(results, judged)


def _first_back_fill_is_history(rt: Runtime, objects: Sequence[str]) -> None:
    """An object read from the beginning is the org's history: what was handed over before now
    is judged and kept, not written to the CRM (``tasuki sync --write-history`` writes it)."""
    mapper = Mapper(rt.settings.config)
    physical = {mapper.physical_object(o) for o in objects if o != "user"}
    with rt.store.session() as session:
        started = set(
            session.scalars(
                select(SyncCursor.object).where(
                    SyncCursor.system == rt.system, SyncCursor.object.in_(physical)
                )
            )
        )
        if physical - started:
            keep_history_before(session, utcnow())


@recorded
def sla_sweep() -> dict[str, int]:
    """Re-judge recent handoffs; queue write-back and KPIs when a verdict changed."""
    rt = startup.current()
    changed = _sla_sweep(rt)
    if changed:
        queue = job_queue(rt.settings, rt.redis_connection)
        enqueue_kpis(queue)
        enqueue_write_back(queue)
    return {"verdicts_changed": changed}


@recorded
def prune_deliveries() -> dict[str, int]:
    """Forget delivery ids older than :data:`DELIVERY_MEMORY` and job runs older than
    :data:`tasuki.ops.runs.RUN_HISTORY`; returns how many of each."""
    rt = startup.current()
    with rt.store.session() as session:
        gone = session.execute(
            delete(Delivery).where(Delivery.received_at < utcnow() - DELIVERY_MEMORY)
        ).rowcount  # type: ignore[attr-defined]
    return {"pruned": int(gone or 0), "runs_pruned": prune_runs(rt.store)}


def _settle_then_owe_write_back(debts: Sequence[Debt]) -> Callable[[Session, int], None]:
    """The end of a KPI computation's transaction: its debts paid, a write-back owed if a
    figure moved (so a crash cannot leave new figures computed and never written)."""

    def then(session: Session, changed: int) -> None:
        settle(session, debts)
        if changed:
            owe(session, Owed.WRITE_BACK)

    return then


@recorded
def compute_kpis() -> dict[str, int]:
    """Recompute KPI values for the current period (and the ones changes touched)."""
    rt = startup.current()
    with rt.store.session() as session:
        debts = owed(session, Owed.KPIS)
    changed = kpis.compute(
        rt.store, rt.settings, now=utcnow(), then=_settle_then_owe_write_back(debts)
    )
    if changed or _write_back_waits(rt):  # a pass may have waited for these figures
        enqueue_write_back(job_queue(rt.settings, rt.redis_connection))
    return {"kpi_values_changed": changed}


@recorded
def recompute_closed_period() -> dict[str, int]:
    """Nightly: recompute the previous period in full, whatever the change detection saw (a
    safety net for the period people are judged on), queue write-back if anything moved, and
    evaluate the partial-optimisation alarms of the last two closed periods
    (:func:`tasuki.alarms.evaluate_recent`)."""
    rt = startup.current()
    closed = kpis.pushed_periods(rt.settings, utcnow())[0]
    changed = kpis.compute(
        rt.store,
        rt.settings,
        now=utcnow(),
        periods=[closed],
        then=_settle_then_owe_write_back([]),
    )
    if changed:
        enqueue_write_back(job_queue(rt.settings, rt.redis_connection))
    # the closed periods' partial-optimisation alarms, on the figures just recomputed
    raised = alarms.evaluate_recent(rt.store, rt.settings, now=utcnow())
    return {"kpi_values_changed": changed, "alarms_raised": len(raised)}


QUOTA_RETRY = timedelta(hours=1)
"""When the CRM's daily API budget is past its share, deferred writes are tried again after this."""


def desired_values(
    rt: Runtime,
    *,
    urgent_only: bool = False,
    write_history: bool = False,
    verdicts_of: Sequence[tuple[str, str]] | None = None,
) -> list[Any]:
    """Everything tasuki wants the CRM to hold: verdict and recording fields (urgent: people
    work from them today) and, unless ``urgent_only``, the KPIs of the current and the previous
    period (user fields, KPI rows, record-level figures). Verdict fields of every handed-over
    record, or only of the records ``verdicts_of`` (:mod:`tasuki.replan`); historical verdicts
    only with ``write_history`` (:func:`tasuki.judging.verdict_values`)."""
    with rt.store.session() as session:
        desired = verdict_values(rt, session, verdicts_of, write_history=write_history)
    desired.extend(recordings.desired(rt))
    if not urgent_only:
        desired.extend(kpis.desired_values(rt.store, rt.settings, now=utcnow()))
    return desired


def _quota_tight(rt: Runtime) -> bool:
    """True when the connector says the org's daily API budget is past its configured share."""
    check = getattr(rt.connector, "should_defer_writes", None)
    return bool(check()) if callable(check) else False


@recorded
def write_back(dry_run: bool = False, write_history: bool = False) -> dict[str, int]:
    """Write what differs from the ledger, in full batches; the report's figures as a dict.
    Verdicts of historical handoffs too with ``write_history`` (``tasuki sync``).

    Past the CRM's quota share, only urgent values are written; the rest waits an hour (the
    debt then names the scheduled job, so recovery leaves it to that job). With several workers
    (:mod:`tasuki.passes`): a pass waits, owed, for the syncs, judging and KPIs queued before it
    that still run (each queues it again when done), and runs one at a time (one that finds
    another pass running stays owed; the running pass queues one more when done)."""
    rt = startup.current()
    if dry_run:
        return _write_back_pass(rt, dry_run=True, write_history=write_history)
    queue = job_queue(rt.settings, rt.redis_connection)
    abandoned = rt.settings.config.recovery.abandoned_after_seconds
    job = get_current_job()
    if job is not None and job.enqueued_at is not None:
        with rt.store.session() as session:
            ahead = earlier_work_running(session, queue, job.enqueued_at, abandoned)
        if ahead:
            log.info("write-back: work queued before it is still running; it queues this pass")
            return {"waiting": 1}
    with one_at_a_time(queue, "write_back", abandoned) as mine:
        if not mine:
            log.info("write-back: another pass is running; it takes this request on")
            return {"skipped": 1}
        figures = _write_back_pass(rt, dry_run=False, write_history=write_history)
    if not figures["deferred"] and _write_back_waits(rt):
        enqueue_write_back(queue)  # requested while this pass ran, by a job that found it locked
    return figures


def _write_back_pass(rt: Runtime, dry_run: bool, write_history: bool = False) -> dict[str, int]:
    digest = replan.settings_digest(rt.settings.config)
    with rt.store.session() as session:
        debts = owed(session, Owed.WRITE_BACK)
        marks = replan.pending(session, rt.system, digest)
        if marks is None or write_history:  # a full plan; what is marked now is covered by it
            marks = replan.all_marks(session, rt.system)
            full = True
        else:
            full = False
    tight = _quota_tight(rt)
    marked = [(m.object, m.record_id) for m in marks]
    report = _write_back(
        rt.store,
        rt.connector,
        rt.settings.config,
        desired_values(
            rt,
            urgent_only=tight,
            write_history=write_history,
            verdicts_of=None if full else marked,
        ),
        dry_run=dry_run,
    )
    if not dry_run:
        refused = [(r.object, r.record_id) for r in report.rejected]
        _clear_marks(rt, marks, full, digest, refused)
        later = None
        if tight:
            log.warning("CRM API budget past its share: KPI fields deferred by %s", QUOTA_RETRY)
            later = job_queue(rt.settings, rt.redis_connection).enqueue_in(
                QUOTA_RETRY, write_back, result_ttl=0
            )
        with rt.store.session() as session:
            settle(session, debts)
            if later is not None:
                owe(session, Owed.WRITE_BACK, job_id=later.id)
    return {
        "records": report.records,
        "fields": report.fields,
        "calls": report.calls,
        "min_calls": report.min_calls,
        "rejected": len(report.rejected),
        "deferred": int(tight),
        "write_run": report.run_id or 0,
    }


def _clear_marks(
    rt: Runtime,
    marks: list[replan.Mark],
    full: bool,
    digest: str,
    refused: list[tuple[str, str]],
) -> None:
    """After a pass: clear the marks of records whose verdict fields now need nothing (one the
    CRM refused is marked again, so the next pass tries it again as a full plan would); after a
    full plan, note its settings digest."""
    config = rt.settings.config
    with rt.store.session() as session:
        marked = [(m.object, m.record_id) for m in marks]
        left = plan(session, rt.system, Mapper(config), verdict_values(rt, session, marked))
        replan.clear(session, marks, [(c.object, c.record_id) for c in left])
        replan.mark(session, rt.system, refused)
        if full:
            replan.planned_fully(session, rt.system, digest)


@recorded
def ingest_recording(provider: str, payload: dict[str, Any]) -> dict[str, int]:
    """Keep one MiiTel or Zoom delivery as a recording and queue linking it.

    Settles the delivery's debt with a matching pass owed, whether or not this run changed
    anything (a killed earlier run may have kept the recording and not queued the pass)."""
    rt = startup.current()
    changed = recordings.ingest(rt, provider, payload)
    job_id = current_job_id()
    with rt.store.session() as session:
        mine = [
            d
            for d in owed(session, Owed.RECORDING, provider)
            if job_id is not None and d.job_id in (job_id, job_id.removesuffix("-next"))
        ]
        settle(session, mine)
        if changed or mine:
            owe(session, Owed.MATCH_RECORDINGS)
    if changed or mine:
        enqueue_match_recordings(job_queue(rt.settings, rt.redis_connection))
    return {"changed": int(changed)}


@recorded
def match_recordings(full: bool = False) -> dict[str, int]:
    """Link the pending recordings that changes since the last pass concern (every pending one
    when ``full``); re-judge the records that gained or lost one; queue write-back."""
    rt = startup.current()
    with rt.store.session() as session:
        debts = owed(session, Owed.MATCH_RECORDINGS)
    touched = recordings.link_pending(rt, full=full)
    by_object: dict[str, list[str]] = {}
    for obj, rid in touched:
        by_object.setdefault(obj, []).append(rid)
    with rt.store.session() as session:
        changed = judge_with_dependents(rt, session, by_object, utcnow())
        settle(session, debts)
        if touched:
            owe(session, Owed.WRITE_BACK)
            if changed:
                owe(session, Owed.KPIS)
    if touched:
        queue = job_queue(rt.settings, rt.redis_connection)
        if changed:
            enqueue_kpis(queue)
        enqueue_write_back(queue)
    return {"linked": len(touched), "verdicts_changed": changed}


@recorded_when_busy
def recover() -> dict[str, int]:
    """Queue again the work the store says is owed and no live job is doing (every minute, and
    when the scheduler sees Redis come back): syncs whose job Redis lost, judging a killed
    worker left, KPI, write-back and matching passes, recordings. Work whose job's worker
    stopped sending heartbeats (``recovery.abandoned_after_seconds``) counts as lost."""
    rt = startup.current()
    recovery = rt.settings.config.recovery
    queue = job_queue(rt.settings, rt.redis_connection)
    # Deliveries accepted and not yet in the store (no server running to take them, or one
    # killed mid-take): taken first, so what they owe is recovered below with the rest.
    stored = Journal(queue).take(
        rt.store, sync_job, claim_after_ms=int(recovery.abandoned_after_seconds * 1000)
    )
    with rt.store.session() as session:
        debts = stale(session, timedelta(seconds=recovery.grace_seconds))
    alive: dict[str, bool] = {}

    def orphaned(d: Debt) -> bool:
        if d.job_id is None:
            return True
        if d.job_id not in alive:
            alive[d.job_id] = is_alive(queue, d.job_id, recovery.abandoned_after_seconds)
        return not alive[d.job_id]

    figures: dict[str, int] = {"deliveries_stored": stored.new} if stored.new else {}

    lost = [d for d in debts if orphaned(d)]
    by_kind: dict[Owed, list[Debt]] = {}
    for d in lost:
        by_kind.setdefault(d.kind, []).append(d)
    for kind, found in by_kind.items():
        figures[kind.value] = len(found)
    for obj, group in _by_object(by_kind.get(Owed.JUDGE, [])).items():
        judged = judge_owed(rt, obj, [d.record_id for d in group])
        _follow_up(rt, judged, False)
    size = rt.connector.read_batch_size
    for obj, group in _by_object(by_kind.get(Owed.SYNC, [])).items():
        for start in range(0, len(group), size):
            chunk = group[start : start + size]
            job = enqueue_sync(queue, obj, [d.record_id for d in chunk])
            _assign(rt, chunk, job)
    for d in by_kind.get(Owed.RECORDING, []):
        if d.payload and d.job_id:
            enqueue_named(queue, d.job_id, str(d.payload["func"]), **d.payload["kwargs"])
    passes = {
        Owed.KPIS: enqueue_kpis,
        Owed.WRITE_BACK: enqueue_write_back,
        Owed.MATCH_RECORDINGS: enqueue_match_recordings,
    }
    for kind, enqueue in passes.items():
        if kind in by_kind:
            _assign(rt, by_kind[kind], enqueue(queue))
    return figures


def _by_object(debts: Sequence[Debt]) -> dict[str, list[Debt]]:
    out: dict[str, list[Debt]] = {}
    for d in debts:
        out.setdefault(d.object, []).append(d)
    return out


def _assign(rt: Runtime, debts: Sequence[Debt], job: Job | None) -> None:
    """Name the job now doing ``debts`` (a merged enqueue names the waiting job's id)."""
    if job is None:
        return
    with rt.store.session() as session:
        assign(session, debts, job.id)


def _instant(at: str | None) -> datetime:
    """``at`` (ISO 8601, with its offset) or now."""
    if at is None:
        return utcnow()
    parsed = datetime.fromisoformat(at)
    if parsed.tzinfo is None:
        raise ValueError(f"{at!r}: give the time with its offset (2026-11-02T10:00+09:00)")
    return parsed


@recorded
def notify(at: str | None = None) -> dict[str, int]:
    """One notifications sweep at ``at`` (default: now): every due message sent once, then the
    agenda if it is due and was not delivered. Raises :class:`DeliveryUnavailable` when Slack
    or the mail server could not take some (5xx, connection refused): they stay owed, and the
    next run sends them (nothing sent twice: the ledger)."""
    rt = startup.current()
    now = _instant(at)
    report = sweep.run(rt, now)
    figures = report.figures()
    if report.unconfigured:
        return {"unconfigured": 1}
    delivered = agenda.deliver(rt, now)
    for status, n in delivered.outcomes.items():
        figures[f"agenda_{status}"] = n
    waiting = figures["retry"] + delivered.outcomes.get("pending", 0)
    if waiting:
        raise DeliveryUnavailable(f"{waiting} message(s) could not go now; the next run sends them")
    return figures


@recorded
def deliver_agenda(day: str | None = None, at: str | None = None) -> dict[str, int]:
    """Deliver the agenda of the meeting of ``day`` (default: the one due at ``at``/now, on a
    business day between ``meeting.deliver_at`` and the meeting's end) to its Slack channel and
    e-mail; each message once."""
    rt = startup.current()
    meeting = date.fromisoformat(day) if day else None
    delivered = agenda.deliver(rt, _instant(at), meeting)
    if delivered.outcomes.get("pending"):
        raise DeliveryUnavailable("the agenda could not go now; the next run sends it")
    return {"messages": delivered.slack_messages, **delivered.outcomes}


# ---- Queueing these jobs: by function reference, so mypy sees every job a caller names ----


def sync_job(object: str, ids: Sequence[str]) -> JobSpec:
    """The job syncing ``ids`` of the CRM object ``object`` (for
    :func:`tasuki.queue.enqueue_many`)."""
    return JobSpec(
        sync_job_id(object, ids), sync_records, {"object": object, "ids": sorted(set(ids))}
    )


def enqueue_sync(queue: Queue, object: str, ids: Sequence[str]) -> Job | None:
    """Queue a sync of CRM records ``ids`` of the CRM object ``object``.

    Notices for the same records that arrive while this job waits are merged into it.
    """
    return enqueue_once(
        queue, sync_job_id(object, ids), sync_records, object=object, ids=sorted(set(ids))
    )


def enqueue_write_back(queue: Queue) -> Job | None:
    """Queue one write-back pass; while one is waiting, more requests merge into it."""
    return enqueue_once(queue, "write_back", write_back)


def enqueue_kpis(queue: Queue) -> Job | None:
    """Queue one KPI computation; while one is waiting, more requests merge into it."""
    return enqueue_once(queue, "compute_kpis", compute_kpis)


def enqueue_recording(queue: Queue, provider: str, key: str, payload: Any) -> Job | None:
    """Queue keeping one MiiTel/Zoom delivery (:func:`ingest_recording`), ``key`` from
    :func:`tasuki.queue.recording_key`."""
    return enqueue_once(
        queue,
        recording_job_id(provider, key),
        ingest_recording,
        provider=provider,
        payload=payload,
    )


def enqueue_match_recordings(queue: Queue) -> Job | None:
    """Queue one pass linking pending recordings; while one waits, more requests merge into it."""
    return enqueue_once(queue, "match_recordings", match_recordings)
