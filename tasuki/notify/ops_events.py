"""The events about the whole operation, for Sales Ops and for whoever runs tasuki.

- ``partial_optimisation``: in the last closed KPI period, a department's own KPI rose against
  the period before while the neighbour KPI it feeds fell (MK's MQLs up, IS's meetings from
  them down …), read from the org's figures in ``kpi_values``. One message per closed period,
  listing every pair that moved apart; the rule's ``when`` (weekly by default) says when it goes.
- ``writeback_rejected``: a write-back pass in which the CRM refused records (one message per
  pass, with the CRM's own codes and messages).
- ``sync_stale``: an object whose reconcile has not succeeded for ``after`` (its sync cursor
  has not moved); one message per stall.
- ``failed_jobs``: jobs in RQ's failed registry of tasuki's queue, one message per failure.
- ``delivery_failed``: messages Slack or the mail server refused, or whose outcome is unknown,
  grouped by error and day (never about the messages of ``delivery_failed`` rules themselves).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import redis
from rq.job import Job
from rq.registry import FailedJobRegistry
from sqlalchemy import select

from tasuki import alarms
from tasuki.alarms import Alarm
from tasuki.durations import parse_duration
from tasuki.notify.event_types import PartialOptions, RejectionOptions, SyncStaleOptions
from tasuki.notify.ledger import Status
from tasuki.notify.message import Line, Message
from tasuki.notify.scene import Finder, Occurrence, Scene, span
from tasuki.notify.schema import NotificationRule
from tasuki.queue import connect, job_queue
from tasuki.store.models import (
    NotificationEntry,
    SyncCursor,
    WriteRejection,
    WriteRun,
)

log = logging.getLogger(__name__)

RECENT = timedelta(days=7)
"""How far back write-back passes and ledger rows are read."""


def partial_optimisation(scene: Scene, rule: NotificationRule) -> list[Occurrence]:
    """The stored partial-optimisation alarms (:mod:`tasuki.alarms`, evaluated nightly) of the
    last two closed periods: one message per period, listing each alarm with its figures."""
    options: PartialOptions = rule.options
    out = []
    for period in alarms.recent_periods(scene.rt.settings, scene.now):
        found = [
            a
            for a in alarms.raised(scene.session, period, system=scene.system)
            if a.subject_kind in options.subjects
            and (options.departments is None or a.department in options.departments)
        ]
        if not found:
            continue
        before = found[0].previous_period
        message = Message(
            title=f"Partial optimisation in {period}: own KPIs up, the next stage's down",
            intro=(
                f"In {period} against {before}, these grew their own number while the neighbour "
                "KPI it feeds fell: the boundary between them needs a look."
            ),
            lines=tuple(Line(f"{_subject(a)}: {a.explanation}") for a in found),
            footer=f"tasuki alarms --period {period} lists them; the console shows the figures.",
        )
        # known since the alarms were raised (a cohort pair settles a month after its period)
        at = max(a.raised_at for a in found)
        out.append(Occurrence("kpi-pairs", period, at, message))
    return out


def _subject(alarm: Alarm) -> str:
    """Whose alarm: the department, or the team or person with their department."""
    if alarm.subject_kind == "department":
        return alarm.department
    return f"{alarm.subject_name} ({alarm.department})"


def writeback_rejected(scene: Scene, rule: NotificationRule) -> list[Occurrence]:
    """Write-back passes in which the CRM refused records."""
    options: RejectionOptions = rule.options
    runs = scene.session.scalars(
        select(WriteRun)
        .where(
            WriteRun.system == scene.system,
            WriteRun.rejected > 0,
            WriteRun.dry_run.is_(False),
            WriteRun.started_at >= scene.now - RECENT,
        )
        .order_by(WriteRun.id)
    )
    out = []
    for run in runs:
        rejected = list(
            scene.session.scalars(
                select(WriteRejection)
                .where(WriteRejection.run_id == run.id)
                .order_by(WriteRejection.id)
                .limit(options.shown + 1)
            )
        )
        lines = [
            Line(f"{r.object} {r.record_id}: {r.error_code} {r.message}".strip())
            for r in rejected[: options.shown]
        ]
        if run.rejected > options.shown:
            lines.append(Line(f"… and {run.rejected - options.shown} more"))
        message = Message(
            title=f"The CRM refused {run.rejected} record(s) in write-back pass {run.id}",
            intro=(
                f"Write-back pass {run.id} ({scene.local(run.started_at)}) wrote {run.records} "
                f"record(s); the CRM refused these, with its own codes:"
            ),
            lines=tuple(lines),
            footer="The other records were written. tasuki writes a refused one again when its "
            "values change.",
        )
        out.append(Occurrence(f"write_run:{run.id}", "rejected", run.started_at, message))
    return out


def sync_stale(scene: Scene, rule: NotificationRule) -> list[Occurrence]:
    """Objects whose reconcile has not succeeded for ``after``."""
    options: SyncStaleOptions = rule.options
    after = timedelta(seconds=parse_duration(options.after).seconds(scene.calendar))
    out = []
    for cur in scene.session.scalars(
        select(SyncCursor).where(SyncCursor.system == scene.system).order_by(SyncCursor.object)
    ):
        if scene.now - cur.updated_at <= after:
            continue
        quiet = span((scene.now - cur.updated_at).total_seconds())
        message = Message(
            title=f"{cur.object} has not synced for {quiet}",
            intro=(
                f"The last successful reconcile of {cur.object} from {scene.system} was at "
                f"{scene.local(cur.updated_at)}; changes made since are not in tasuki."
            ),
            lines=(
                Line("`tasuki runs` shows the reconcile runs and their errors"),
                Line("`tasuki check-config --with-services` checks the CRM sign-in and Redis"),
            ),
        )
        out.append(
            Occurrence(
                f"sync:{scene.system}:{cur.object}",
                cur.updated_at.isoformat(),
                cur.updated_at + after,
                message,
            )
        )
    return out


def _aware(at: datetime | None) -> datetime | None:
    if at is None:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def failed_jobs(scene: Scene, rule: NotificationRule) -> list[Occurrence]:
    """Jobs in RQ's failed registry of tasuki's queue, one message per job function and local
    day (a job failing every five minutes is one message, not 288). Redis down: none, and a
    warning."""
    rt = scene.rt
    try:
        connection = rt.redis_connection or connect(rt.settings)
        queue = job_queue(rt.settings, connection)
        registry = FailedJobRegistry(queue=queue)
        ids = registry.get_job_ids()
        jobs = [j for j in (Job.fetch_many(ids, connection=connection) if ids else []) if j]
        failures = []
        for job in jobs:
            result = job.latest_result()
            error = ((result.exc_string if result is not None else None) or "").strip()
            at = _aware(job.ended_at) or _aware(job.enqueued_at) or scene.now
            func = job.func_name or "?"
            failures.append((at, func, job.id, error.splitlines()[-1:] or [""]))
    except redis.RedisError as exc:
        log.warning("notify: cannot read the failed-job registry: %s", exc)
        return []
    groups: dict[tuple[str, str], list[tuple[datetime, str, str, list[str]]]] = defaultdict(list)
    for failure in sorted(failures):
        day = failure[0].astimezone(scene.calendar.tz).date().isoformat()
        groups[(failure[1], day)].append(failure)
    out = []
    for (func, day), found in groups.items():
        lines = tuple(
            Line(f"{scene.local(at)} {job_id}: {last[0]}".strip()) for at, _, job_id, last in found
        )
        message = Message(
            title=f"Job failed: {func}",
            intro=f"{func} failed {len(found)} time(s) on {day}.",
            lines=lines,
            footer="`rq info` and `tasuki runs` show more; the traceback is in the registry.",
        )
        out.append(Occurrence(f"jobs:{func}", day, found[0][0], message))
    return out


def delivery_failed(scene: Scene, rule: NotificationRule) -> list[Occurrence]:
    """Messages refused or of unknown outcome, grouped by error and local day."""
    own = [r.id for r in scene.book.rules if r.event == "delivery_failed"]
    rows = scene.session.scalars(
        select(NotificationEntry)
        .where(
            NotificationEntry.status.in_([Status.FAILED.value, Status.UNKNOWN.value]),
            NotificationEntry.claimed_at >= scene.now - RECENT,
            NotificationEntry.rule_id.not_in(own),
        )
        .order_by(NotificationEntry.claimed_at, NotificationEntry.id)
    )
    groups: dict[tuple[str, str], list[NotificationEntry]] = defaultdict(list)
    for row in rows:
        code = "unknown outcome" if row.status == Status.UNKNOWN.value else row.error.split(" ")[0]
        day = row.claimed_at.astimezone(scene.calendar.tz).date().isoformat()
        groups[(code or "failed", day)].append(row)
    out = []
    for (code, day), found in groups.items():
        lines = tuple(
            Line(
                f"{r.rule_id} {r.subject} → {r.recipient}"
                + (f" ({r.medium} {r.address})" if r.medium else "")
                + f": {r.error or r.status}"
            )
            for r in found
        )
        if code == "unknown outcome":
            intro = (
                f"{len(found)} message(s) went out with no answer (or the worker stopped mid-send) "
                "on " + day + ": perhaps delivered, so tasuki does not send them again."
            )
        else:
            intro = (
                f"{len(found)} message(s) were refused with {code} on {day}; they were not sent."
            )
        message = Message(
            title=f"Notifications not delivered: {code}",
            intro=intro,
            lines=lines,
            footer="tasuki notify --dry-run lists what is owed; the ledger keeps every result.",
        )
        out.append(Occurrence(f"delivery:{code}", day, found[0].claimed_at, message))
    return out


FINDERS: dict[str, Finder] = {
    "partial_optimisation": partial_optimisation,
    "writeback_rejected": writeback_rejected,
    "sync_stale": sync_stale,
    "failed_jobs": failed_jobs,
    "delivery_failed": delivery_failed,
}
"""Finders of the operations events, by event name."""
