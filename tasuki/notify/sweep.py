"""One notification sweep: find what is due, claim it in the ledger, send it, record the result.

A sweep is idempotent. Every occurrence of every rule's event is found afresh in the store
(:mod:`tasuki.notify.events`, :mod:`tasuki.notify.ops_events`); the ledger says which messages
are already done; what is left and due goes out, each claimed before it is sent
(:mod:`tasuki.notify.ledger`). Running the sweep twice, or on two workers at once, sends each
message once.

When a message may go is the rule's ``when``: ``any_time``; ``business_hours``, which holds
a message found in quiet hours or on a day off (weekends, public holidays, the company's own
days off) until the next working hour of the company calendar; or a cron expression in the
company's timezone (the first time it fires after the event). An event older than the rule's
``max_age`` is not announced at all (a deployment's first sweep does not replay history).

Whom: each of the rule's ``to`` is a role of the event (a person: found in Slack by the CRM
e-mail address, ``users.lookupByEmail``, cached; no Slack account: e-mail) or a destination
(a channel, addresses). Rules of ``delivery_failed`` run last, so what the first pass could not
deliver is reported in the same sweep.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tasuki.calendar import BusinessCalendar
from tasuki.notify import ledger
from tasuki.notify.events import FINDERS as WORK_FINDERS
from tasuki.notify.ledger import Key, Status
from tasuki.notify.mail import Mailer
from tasuki.notify.message import Mail, mail, slack_payload
from tasuki.notify.ops_events import FINDERS as OPS_FINDERS
from tasuki.notify.outcome import Outcome
from tasuki.notify.scene import Occurrence, Scene
from tasuki.notify.schema import (
    Destination,
    NotificationBook,
    NotificationRule,
    When,
    load_notification_book,
)
from tasuki.notify.slack import Slack
from tasuki.runtime import Runtime
from tasuki.schedule import next_fire
from tasuki.settings import Settings

log = logging.getLogger(__name__)

FINDERS = {**WORK_FINDERS, **OPS_FINDERS}
LAST = ("delivery_failed",)
"""Events whose rules run after the others in a sweep."""


def load_book(settings: Settings) -> NotificationBook:
    """The notification rules the config names, validated against the config."""
    return load_notification_book(settings.notification_paths, settings.config)


def book_of(rt: Runtime) -> NotificationBook:
    """The runtime's notification book, read once per process."""
    found = rt.extras.get("notification_book")
    if not isinstance(found, NotificationBook):
        found = load_book(rt.settings)
        rt.extras["notification_book"] = found
    return found


@dataclass(frozen=True)
class Who:
    """A person a message is for."""

    user_id: str
    name: str
    email: str


@dataclass(frozen=True)
class Recipient:
    """Whom one message goes to: a person (by role) or a destination."""

    key: str
    label: str
    who: Who | None = None
    destination: Destination | None = None


@dataclass(frozen=True)
class Planned:
    """One message a rule owes one recipient, and from when it may go."""

    rule: NotificationRule
    occurrence: Occurrence
    recipient: Recipient
    due: datetime

    @property
    def key(self) -> Key:
        """Its key in the ledger."""
        o = self.occurrence
        return Key(self.rule.id, o.subject, o.key, self.recipient.key)


@dataclass
class Report:
    """What one sweep found and did."""

    due: list[Planned] = field(default_factory=list)
    """Messages that were due (sent, or what a dry run would send)."""
    deferred: list[Planned] = field(default_factory=list)
    """Messages waiting for their time (quiet hours, a weekly slot)."""
    already: Counter[str] = field(default_factory=Counter)
    """Messages found that the ledger already has, by status."""
    outcomes: Counter[str] = field(default_factory=Counter)
    """Results of this sweep's sends, by status (``taken``: another worker had it)."""
    slack_calls: Counter[str] = field(default_factory=Counter)
    unconfigured: bool = False

    def figures(self) -> dict[str, int]:
        """The figures a job returns."""
        out = {s.value: self.outcomes[s.value] for s in Status if s is not Status.SENDING}
        out["retry"] = out.pop(Status.PENDING.value)
        out["taken"] = self.outcomes["taken"]
        out["deferred"] = len(self.deferred)
        out["already"] = sum(self.already.values())
        out["slack_calls"] = sum(self.slack_calls.values())
        return out


def next_working_instant(calendar: BusinessCalendar, at: datetime) -> datetime:
    """``at`` when it falls in working hours of a business day, else the next working hour's
    start (company calendar)."""
    second = timedelta(seconds=1)
    return calendar.add_business_time(at, second) - second


def due_at(when: When, at: datetime, now: datetime, calendar: BusinessCalendar) -> datetime:
    """From when a message about an event at ``at`` may go, seen at ``now``."""
    if when.kind == "any_time":
        return at
    if when.kind == "cron":
        assert when.cron is not None
        return next_fire(when.cron, calendar.tz, at - timedelta(microseconds=1))
    return next_working_instant(calendar, max(at, now))


class Media:
    """The ways out this process has: Slack (a bot token) and SMTP, each optional."""

    def __init__(self, rt: Runtime, book: NotificationBook) -> None:
        settings = rt.settings
        ttl = timedelta(seconds=book.people.slack_lookup_ttl.seconds(rt.calendar))
        self.slack = (
            Slack(settings.slack, rt.store, lookup_ttl=ttl) if settings.slack.configured else None
        )
        self.mailer = Mailer(settings.smtp) if settings.smtp is not None else None

    @property
    def any(self) -> bool:
        """True when at least one way out is configured."""
        return self.slack is not None or self.mailer is not None


def _recipients(scene: Scene, rule: NotificationRule, occ: Occurrence) -> list[Recipient]:
    out: dict[str, Recipient] = {}
    book = scene.book
    for item in rule.to:
        dest = book.destinations.get(item)
        if dest is None:
            uid = occ.people.get(item)
            if uid:
                p = scene.people.get(uid)
                who = Who(uid, p.name if p else uid, (p.email if p else "") or "")
                out.setdefault(
                    f"person:{uid}", Recipient(f"person:{uid}", f"{who.name} ({item})", who)
                )
                continue
            if rule.fallback is None:
                log.debug("notify: %s of %s names no %s", rule.id, occ.subject, item)
                continue
            dest = book.destinations[rule.fallback]
        out.setdefault(
            f"dest:{dest.name}", Recipient(f"dest:{dest.name}", dest.name, destination=dest)
        )
    return list(out.values())


def plan(scene: Scene, rules: list[NotificationRule]) -> list[Planned]:
    """Every message ``rules`` owe as of the scene, with its due time (ledger not consulted)."""
    cal = scene.calendar
    now_ts = scene.now.timestamp()
    out: list[Planned] = []
    for rule in rules:
        for occ in FINDERS[rule.event](scene, rule):
            if occ.at > scene.now or rule.max_age.exceeded(cal, occ.at.timestamp(), now_ts):
                continue
            due = due_at(rule.when, occ.at, scene.now, cal)
            out.extend(Planned(rule, occ, r, due) for r in _recipients(scene, rule, occ))
    return out


def route(planned: Planned, media: Media, *, look_up: bool = True) -> tuple[str, str] | Outcome:
    """(medium, address) a message goes to, in the rule's order of ``via``; an outcome when it
    cannot go. ``look_up`` False: Slack's cache only (a dry run makes no call)."""
    r = planned.recipient
    via = planned.rule.via
    if r.destination is not None:
        d = r.destination
        for medium in via:
            if medium == "slack" and media.slack is not None and d.slack:
                return "slack", d.slack
            if medium == "email" and media.mailer is not None and d.email:
                return "email", ",".join(d.email)
        return Outcome(Status.SKIPPED, error=f"destination {d.name}: no {'/'.join(via)} set up")
    assert r.who is not None
    who = r.who
    for medium in via:
        if medium == "slack" and media.slack is not None and who.email:
            if not look_up:
                cached = media.slack.cached(who.email)
                if cached is None:
                    return "slack?", who.email
                if cached.user_id:
                    return "slack", cached.user_id
                continue
            found = media.slack.lookup(who.email)
            if found.user_id:
                return "slack", found.user_id
            if found.error:
                status = Status.PENDING if found.transient else Status.FAILED
                return Outcome(status, error=f"{found.error} (users.lookupByEmail)")
        if medium == "email" and media.mailer is not None and who.email:
            return "email", who.email
    reason = (
        "no e-mail address in the CRM" if not who.email else "not in Slack and no e-mail set up"
    )
    return Outcome(Status.SKIPPED, error=f"{who.name}: {reason}")


def _send(planned: Planned, medium: str, address: str, media: Media, rendered: Mail) -> Outcome:
    if medium == "slack":
        assert media.slack is not None
        return media.slack.post(address, slack_payload(planned.occurrence.message))
    assert media.mailer is not None
    return media.mailer.send(rendered, address.split(","), str(planned.key))


def deliver(rt: Runtime, planned: Planned, media: Media, now: datetime) -> str:
    """Claim, route, send and record one message; the status it ends in (``taken`` when
    another worker had it)."""
    rendered = mail(planned.occurrence.message)  # rendering is pure: done before the claim
    entry = ledger.claim(rt.store, planned.key, now)
    if entry is None:
        return "taken"
    medium = address = ""
    try:
        routed = route(planned, media)
        if isinstance(routed, Outcome):
            outcome = routed
        else:
            medium, address = routed
            outcome = _send(planned, medium, address, media, rendered)
    except Exception as exc:  # noqa: BLE001 - whatever happened mid-send, its outcome is unknown
        log.exception("notify: %s failed unexpectedly", planned.key)
        outcome = Outcome(Status.UNKNOWN, error=f"{type(exc).__name__}: {exc}")
    ledger.finish(
        rt.store,
        entry,
        outcome.status,
        medium=medium,
        address=address,
        result=outcome.result,
        error=outcome.error,
    )
    if outcome.status in (Status.FAILED, Status.UNKNOWN):
        log.error(
            "notify: %s %s via %s %s: %s",
            planned.key,
            outcome.status.value,
            medium or "-",
            address or "-",
            outcome.error,
        )
    elif outcome.status is Status.PENDING:
        log.warning("notify: %s not sent, tried again later: %s", planned.key, outcome.error)
    return outcome.status.value


def _pass(
    rt: Runtime,
    book: NotificationBook,
    rules: list[NotificationRule],
    now: datetime,
    media: Media,
    report: Report,
    dry_run: bool,
) -> None:
    with rt.store.session() as session:
        found = plan(Scene(rt, session, now, book), rules)
    known = ledger.statuses(rt.store, [p.key for p in found])
    for p in found:
        status = known.get(p.key)
        if status is not None and status is not Status.PENDING:
            report.already[status.value] += 1
        elif p.due > now:
            report.deferred.append(p)
        else:
            report.due.append(p)
            if not dry_run:
                report.outcomes[deliver(rt, p, media, now)] += 1


def run(rt: Runtime, now: datetime, *, dry_run: bool = False) -> Report:
    """One sweep at ``now``: every rule's due messages sent (``dry_run``: only listed; no
    send, no ledger write, no Slack call)."""
    book = book_of(rt)
    media = Media(rt, book)
    report = Report()
    if not media.any and not dry_run:
        report.unconfigured = True
        return report
    if not dry_run:
        expired = ledger.expire_claims(rt.store, now)
        if expired:
            log.error("notify: %d message(s) left mid-send by a stopped worker: unknown", expired)
    first = [r for r in book.rules if r.event not in LAST]
    last = [r for r in book.rules if r.event in LAST]
    for rules in (first, last):
        if rules:
            _pass(rt, book, rules, now, media, report, dry_run)
    if media.slack is not None:
        report.slack_calls.update(media.slack.calls)
    return report


def result_ts(result: str) -> tuple[str, str] | None:
    """(channel, ts) of a message Slack took, from its ledger ``result``."""
    try:
        data = json.loads(result)
    except ValueError:
        return None
    if isinstance(data, dict) and data.get("channel") and data.get("ts"):
        return str(data["channel"]), str(data["ts"])
    return None
