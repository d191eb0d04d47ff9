"""RQ jobs: top-level functions with small JSON-safe arguments; every one can run twice unharmed.

Each job looks up settings, store and connector in :mod:`tasuki.runtime`, does its work through
the pipeline modules, and queues what follows (write-back, KPIs) as merged jobs: while one
write-back waits in the queue, further requests join it instead of adding calls.

    sync_records(object, ids)   webhook notice → fetch → snapshot → handoffs → verdicts
    reconcile(object=None)      the same from the sync cursor: catches whatever webhooks missed
    sla_sweep()                 re-judges recent handoffs whose SLA may have run out
    compute_kpis()              KPI values for the periods that changed (hourly and on change)
    recompute_closed_period()   nightly: the previous period in full
    write_back()                desired values → ledger diff → batched CRM writes
    ingest_recording(provider, payload)   a MiiTel / Zoom delivery → a kept recording
    match_recordings()          links pending recordings to CRM records, re-judges those records
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select

from tasuki import runtime
from tasuki.handoffs import detect, unknown_owners
from tasuki.judging import judge_records, verdict_values
from tasuki.judging import sla_sweep as _sla_sweep
from tasuki.mapping import Mapper
from tasuki.queue import (
    enqueue_kpis,
    enqueue_match_recordings,
    enqueue_write_back,
    job_queue,
)
from tasuki.recordings import pipeline as recordings
from tasuki.runtime import Runtime
from tasuki.store.models import Delivery, Record, utcnow
from tasuki.sync import SyncResult, sync_ids, sync_people
from tasuki.sync import reconcile as _reconcile
from tasuki.writeback import write_back as _write_back

log = logging.getLogger(__name__)


def _dependents(rt: Runtime, logical: str, ids: Sequence[str]) -> dict[str, list[str]]:
    """Records whose rules look at the changed records (a lead looks at its account)."""
    out: dict[str, list[str]] = {}
    with rt.store.session() as session:
        for obj, links in rt.settings.config.related.items():
            for rel_obj, lookup in links.items():
                if rel_obj != logical:
                    continue
                rows = session.scalars(
                    select(Record.record_id).where(
                        Record.system == rt.system,
                        Record.object == obj,
                        Record.fields[lookup].as_string().in_(list(ids)),
                    )
                ).all()
                if rows:
                    out.setdefault(obj, []).extend(rows)
    return out


def _after_sync(rt: Runtime, results: Sequence[SyncResult]) -> dict[str, int]:
    """Detect and judge the handoffs of what changed; queue KPIs and write-back if needed."""
    now = utcnow()
    new_handoffs = changed_verdicts = 0
    for result in results:
        if not result.changed:
            continue
        with rt.store.session() as session:
            missing = unknown_owners(session, rt.system, result.object, result.changed)
        if missing:
            # A record moved to someone tasuki has not met yet: learn the users first, or the
            # departments of this handoff would be unknown.
            sync_people(rt)
        with rt.store.session() as session:
            new_handoffs += detect(
                session, rt.settings.config, rt.system, result.object, result.changed
            )
            changed_verdicts += judge_records(rt, session, result.object, result.changed, now)
        for obj, ids in _dependents(rt, result.object, result.changed).items():
            with rt.store.session() as session:
                changed_verdicts += judge_records(rt, session, obj, ids, now)
    if new_handoffs or changed_verdicts:
        queue = job_queue(rt.settings, rt.redis_connection)
        enqueue_kpis(queue)
        enqueue_write_back(queue)
    if any(r.changed for r in results) and recordings.pending(rt):
        # New records may be what an unmatched recording was waiting for.
        enqueue_match_recordings(job_queue(rt.settings, rt.redis_connection))
    return {
        "records": sum(r.records for r in results),
        "echoes": sum(r.echoes for r in results),
        "deleted": sum(r.deleted for r in results),
        "transitions": sum(r.transitions for r in results),
        "handoffs": new_handoffs,
        "verdicts_changed": changed_verdicts,
    }


def sync_records(object: str, ids: list[str]) -> dict[str, int]:
    """Sync the CRM records ``ids`` of CRM object ``object`` and act on what changed."""
    rt = runtime.current()
    return _after_sync(rt, [sync_ids(rt, object, ids)])


def reconcile(object: str | None = None) -> dict[str, int]:
    """Sync every tracked object (or the logical ``object``) from its cursor; users first."""
    rt = runtime.current()
    sync_people(rt)
    objects = [object] if object else [o for o in Mapper(rt.settings.config).objects]
    results: list[SyncResult] = []
    for logical in objects:
        if logical != "user":
            results.extend(_reconcile(rt, logical))
    return _after_sync(rt, results)


def sla_sweep() -> dict[str, int]:
    """Re-judge recent handoffs; queue write-back and KPIs when a verdict changed."""
    rt = runtime.current()
    changed = _sla_sweep(rt)
    if changed:
        queue = job_queue(rt.settings, rt.redis_connection)
        enqueue_kpis(queue)
        enqueue_write_back(queue)
    return {"verdicts_changed": changed}


DELIVERY_MEMORY = timedelta(days=7)
"""How long delivery ids are remembered for dedupe: past every provider's retry window
(HubSpot retries for 24 hours, Salesforce Outbound Messages for 24 hours, Zoom for 3 days)."""


def prune_deliveries() -> dict[str, int]:
    """Forget delivery ids older than :data:`DELIVERY_MEMORY`; returns how many."""
    rt = runtime.current()
    with rt.store.session() as session:
        gone = session.execute(
            delete(Delivery).where(Delivery.received_at < utcnow() - DELIVERY_MEMORY)
        ).rowcount  # type: ignore[attr-defined]
    return {"pruned": int(gone or 0)}


def compute_kpis() -> dict[str, int]:
    """Recompute KPI values for the current period (and the ones changes touched)."""
    from tasuki import kpis

    rt = runtime.current()
    changed = kpis.compute(rt.store, rt.settings, now=utcnow())
    if changed:
        enqueue_write_back(job_queue(rt.settings, rt.redis_connection))
    return {"kpi_values_changed": changed}


def recompute_closed_period() -> dict[str, int]:
    """Nightly: recompute the previous period in full, whatever the change detection saw (a
    safety net for the period people are judged on), and queue write-back if anything moved."""
    from tasuki import kpis

    rt = runtime.current()
    closed = kpis.pushed_periods(rt.settings, utcnow())[0]
    changed = kpis.compute(rt.store, rt.settings, now=utcnow(), periods=[closed])
    if changed:
        enqueue_write_back(job_queue(rt.settings, rt.redis_connection))
    return {"kpi_values_changed": changed}


QUOTA_RETRY = timedelta(hours=1)
"""When the CRM's daily API budget is past its share, deferred writes are tried again after this."""


def desired_values(rt: Runtime, *, urgent_only: bool = False) -> list[Any]:
    """Everything tasuki wants the CRM to hold: verdict and recording fields (urgent: people
    work from them today) and, unless ``urgent_only``, the KPIs of the current and the previous
    period (user fields, KPI rows, record-level figures)."""
    from tasuki import kpis

    with rt.store.session() as session:
        desired = verdict_values(rt, session)
    desired.extend(recordings.desired(rt))
    if not urgent_only:
        desired.extend(kpis.desired_values(rt.store, rt.settings, now=utcnow()))
    return desired


def _quota_tight(rt: Runtime) -> bool:
    """True when the connector says the org's daily API budget is past its configured share."""
    check = getattr(rt.connector, "should_defer_writes", None)
    return bool(check()) if callable(check) else False


def write_back(dry_run: bool = False) -> dict[str, int]:
    """Write what differs from the ledger, in full batches; the report's figures as a dict.

    Past the CRM's quota share, only urgent values are written; the rest waits an hour."""
    rt = runtime.current()
    tight = _quota_tight(rt)
    report = _write_back(
        rt.store,
        rt.connector,
        rt.settings.config,
        desired_values(rt, urgent_only=tight),
        dry_run=dry_run,
    )
    if tight and not dry_run:
        log.warning("CRM API budget past its share: KPI fields deferred by %s", QUOTA_RETRY)
        job_queue(rt.settings, rt.redis_connection).enqueue_in(
            QUOTA_RETRY, "worker.write_back", result_ttl=0
        )
    return {
        "records": report.records,
        "fields": report.fields,
        "calls": report.calls,
        "min_calls": report.min_calls,
        "rejected": len(report.rejected),
        "deferred": int(tight),
    }


def ingest_recording(provider: str, payload: dict[str, Any]) -> dict[str, int]:
    """Keep one MiiTel or Zoom delivery as a recording and queue linking it."""
    rt = runtime.current()
    changed = recordings.ingest(rt, provider, payload)
    if changed:
        enqueue_match_recordings(job_queue(rt.settings, rt.redis_connection))
    return {"changed": int(changed)}


def match_recordings() -> dict[str, int]:
    """Link pending recordings; re-judge the records that gained or lost one; queue write-back."""
    rt = runtime.current()
    touched = recordings.link_pending(rt)
    by_object: dict[str, list[str]] = {}
    for obj, rid in touched:
        by_object.setdefault(obj, []).append(rid)
    now = utcnow()
    changed = 0
    for obj, ids in by_object.items():
        with rt.store.session() as session:
            changed += judge_records(rt, session, obj, ids, now)
        for dep, dep_ids in _dependents(rt, obj, ids).items():
            with rt.store.session() as session:
                changed += judge_records(rt, session, dep, dep_ids, now)
    if touched:
        queue = job_queue(rt.settings, rt.redis_connection)
        if changed:
            enqueue_kpis(queue)
        enqueue_write_back(queue)
    return {"linked": len(touched), "verdicts_changed": changed}
