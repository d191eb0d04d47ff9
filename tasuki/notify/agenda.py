"""Delivering the handoff meeting's agenda (built by :mod:`tasuki.meeting`) to Slack and e-mail.

On each business day of the company calendar, from ``meeting.deliver_at`` until the meeting
ends, the agenda goes to ``meeting.slack_channel`` as the Block Kit messages of
:func:`tasuki.meeting.slack_blocks` (one parent message; when the agenda is long, one thread
reply per receiving FS person, then the waiting and unfixed handoffs) and to
``meeting.email_to`` as one HTML + text mail. The ``deliver_agenda`` job runs at
``deliver_at``; the notifications sweep delivers it too if that run was missed, so a worker
down at 09:45 delays the agenda, never loses it. Every message is a ledger entry: the parent
(``…#0``) and each reply (``…#1`` …) are sent once, replies in the parent's thread even when the
parent went out in an earlier run. Slack calls per agenda: one ``chat.postMessage`` per message,
nothing else.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import date, datetime

from tasuki.meeting import (
    MeetingSchedule,
    SlackMessage,
    build_agenda,
    email,
    meeting_boundary,
    slack_blocks,
)
from tasuki.notify import ledger
from tasuki.notify.ledger import Key, Status
from tasuki.notify.message import Mail
from tasuki.notify.outcome import Outcome
from tasuki.notify.sweep import Media, book_of, result_ts
from tasuki.runtime import Runtime
from tasuki.settings import Settings

log = logging.getLogger(__name__)

RULE_ID = "agenda"
"""The ledger's rule id of agenda messages."""


@dataclass
class AgendaReport:
    """What one delivery did (or, dry, would do)."""

    day: date | None = None
    reason: str = ""
    """Why nothing was delivered, when nothing was."""
    slack_messages: int = 0
    """Messages of the agenda in Slack (parent and replies)."""
    planned: list[str] = field(default_factory=list)
    """What was (or would be) sent, one line each."""
    outcomes: dict[str, int] = field(default_factory=dict)

    def count(self, status: str) -> None:
        """One more message that ended in ``status``."""
        self.outcomes[status] = self.outcomes.get(status, 0) + 1


def agenda_cron(settings: Settings) -> str:
    """The cron expression (company timezone) of the ``deliver_agenda`` job: every day at
    ``meeting.deliver_at``; the job itself skips days that are not business days."""
    at = settings.config.meeting.deliver_at
    return f"{at.minute} {at.hour} * * *"


def meeting_due(rt: Runtime, now: datetime) -> date | None:
    """The day whose agenda is due at ``now``: today, on a business day, from
    ``meeting.deliver_at`` until the meeting ends; else None."""
    schedule = MeetingSchedule.from_settings(rt.settings)
    today = now.astimezone(schedule.calendar.tz).date()
    if not schedule.is_meeting_day(today):
        return None
    if schedule.deliver_at(today) <= now < schedule.ends_at(today):
        return today
    return None


def _recipient(kind: str, address: str) -> str:
    text = f"{kind}:{address}"
    if len(text) <= 200:
        return text
    return f"{kind}:{hashlib.sha256(address.encode()).hexdigest()}"


def deliver(
    rt: Runtime, now: datetime, day: date | None = None, *, dry_run: bool = False
) -> AgendaReport:
    """Deliver the agenda of ``day`` (default: the meeting due at ``now``, if any)."""
    report = AgendaReport()
    day = day or meeting_due(rt, now)
    if day is None:
        report.reason = "no agenda due now (not a business day, or outside deliver_at–meeting end)"
        return report
    report.day = day
    meeting = rt.settings.config.meeting
    media = Media(rt, book_of(rt))
    slack_to = meeting.slack_channel if media.slack is not None else None
    mail_to = list(meeting.email_to) if media.mailer is not None else []
    if not slack_to and not mail_to:
        report.reason = "meeting.slack_channel / meeting.email_to not set (or Slack/SMTP not)"
        return report
    agenda = build_agenda(rt.store, rt.settings, day, now=now, rulebook=rt.rulebook)
    subject = f"meeting:{meeting_boundary(rt.settings.config).id}"
    if slack_to:
        _slack(rt, media, report, subject, day, slack_to, slack_blocks(agenda), now, dry_run)
    if mail_to:
        rendered = email(agenda)
        key = Key(RULE_ID, subject, day.isoformat(), _recipient("email", ",".join(mail_to)))
        _mail(rt, media, report, key, Mail(*rendered), mail_to, now, dry_run)
    return report


def _slack(
    rt: Runtime,
    media: Media,
    report: AgendaReport,
    subject: str,
    day: date,
    channel: str,
    messages: list[SlackMessage],
    now: datetime,
    dry_run: bool,
) -> None:
    assert media.slack is not None
    report.slack_messages = len(messages)
    recipient = _recipient("slack", channel)
    keys = [
        Key(RULE_ID, subject, f"{day.isoformat()}#{n}", recipient) for n in range(len(messages))
    ]
    known = ledger.statuses(rt.store, keys)
    parent: tuple[str, str] | None = None
    first = ledger.entry(rt.store, keys[0])
    if first is not None and first.status == Status.SENT.value:
        parent = result_ts(first.result)
    for n, (key, message) in enumerate(zip(keys, messages, strict=True)):
        status = known.get(key)
        if status is not None and status is not Status.PENDING:
            continue
        where = "parent" if n == 0 else f"reply {n}"
        if dry_run:
            report.planned.append(f"Slack {channel}: agenda {where} ({len(message.blocks)} blocks)")
            continue
        if n > 0 and parent is None:
            # The parent never went (refused, unknown, or waiting to be retried): a reply
            # outside its thread would be read without its heading.
            if first is not None and first.status in (Status.FAILED.value, Status.UNKNOWN.value):
                ledger.record(
                    rt.store, key, Status.SKIPPED, error="the parent message was not posted"
                )
                report.count(Status.SKIPPED.value)
            continue
        entry = ledger.claim(rt.store, key, now)
        if entry is None:
            report.count("taken")
            continue
        thread_ts = parent[1] if (n > 0 and parent is not None) else None
        target = parent[0] if parent is not None else channel
        try:
            outcome = media.slack.post(target, message.payload(), thread_ts=thread_ts)
        except Exception as exc:  # noqa: BLE001 - whatever happened mid-send, unknown
            log.exception("agenda: %s failed unexpectedly", key)
            outcome = Outcome(Status.UNKNOWN, error=f"{type(exc).__name__}: {exc}")
        ledger.finish(
            rt.store,
            entry,
            outcome.status,
            medium="slack",
            address=target,
            result=outcome.result,
            error=outcome.error,
        )
        report.count(outcome.status.value)
        report.planned.append(f"Slack {channel}: agenda {where}: {outcome.status.value}")
        if n == 0:
            first = ledger.entry(rt.store, key)
            parent = result_ts(outcome.result) if outcome.status is Status.SENT else None
        if outcome.status is Status.PENDING:
            log.warning("agenda: %s not posted, tried again later: %s", key, outcome.error)
            return  # the rest waits for the retry, in order
        if outcome.status in (Status.FAILED, Status.UNKNOWN):
            log.error("agenda: %s %s: %s", key, outcome.status.value, outcome.error)


def _mail(
    rt: Runtime,
    media: Media,
    report: AgendaReport,
    key: Key,
    rendered: Mail,
    to: list[str],
    now: datetime,
    dry_run: bool,
) -> None:
    assert media.mailer is not None
    status = ledger.statuses(rt.store, [key]).get(key)
    if status is not None and status is not Status.PENDING:
        return
    if dry_run:
        report.planned.append(f"e-mail to {', '.join(to)}: {rendered.subject}")
        return
    entry = ledger.claim(rt.store, key, now)
    if entry is None:
        report.count("taken")
        return
    outcome = media.mailer.send(rendered, to, str(key))
    ledger.finish(
        rt.store,
        entry,
        outcome.status,
        medium="email",
        address=",".join(to),
        result=outcome.result,
        error=outcome.error,
    )
    report.count(outcome.status.value)
    report.planned.append(f"e-mail to {', '.join(to)}: {outcome.status.value}")
    if outcome.status is not Status.SENT:
        log.error("agenda: %s %s: %s", key, outcome.status.value, outcome.error)
