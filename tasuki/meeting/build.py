"""The agenda of one handoff meeting, read from the store.

Two queries on the ``(boundary, handed_at)`` index, bounded in time whatever the size of the
store: the handoffs of the meeting's window, and those of the :data:`WAITING_LOOKBACK` before it
(still waiting for the receiver's answer, or failed at the last meeting and still failed); then,
for those only, their records, related records, recordings and people in batched look-ups
(a fixed number of queries, not one per handoff).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from rules import HandoffContext, Rulebook
from rules.values import to_instant
from tasuki.calendar import BusinessCalendar
from tasuki.handoffs import contexts_for
from tasuki.meeting.agenda import (
    Agenda,
    AgendaItem,
    Finding,
    Labelled,
    PersonGroup,
    RecordingLink,
    VerdictSummary,
)
from tasuki.meeting.answer import AnswerSla, answer_sla_for, answer_slas
from tasuki.meeting.formatting import shorten
from tasuki.meeting.links import record_link
from tasuki.meeting.schedule import MeetingSchedule, Window, meeting_boundary
from tasuki.recordings.packet import SECTIONS
from tasuki.settings import Settings
from tasuki.startup import load_rules
from tasuki.store.db import Store
from tasuki.store.models import Handoff, Person, Verdict, utcnow

WAITING_LOOKBACK = timedelta(days=30)
"""How far before the meeting's window handoffs are looked at for "still waiting" (older ones
are Sales Ops's business, not the daily meeting's); it bounds the query."""
NOTES_WIDTH = 240
"""Hearing notes are shortened to this many columns (a Japanese character counts two: about
120 characters of Japanese, 240 of English; the record holds the rest)."""
BANT_WIDTH = 60
"""Each BANT element is shortened to this many columns."""
PROPOSAL_WIDTH = 160
"""Each proposal is shortened to this many columns."""
NAME_WIDTH = 80
"""Record names, companies and contacts are shortened to this many columns."""

_FIELDS = dict(SECTIONS)
_LABELS = {"is_proposal": "IS proposal", "fs_proposal": "FS proposal"}
_FAILED = "failed"


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _label(field: str) -> str:
    return _LABELS.get(field, field.replace("_", " ").capitalize())


class _Builder:
    """Turns handoffs into agenda items (one instance per agenda)."""

    def __init__(
        self,
        session: Session,
        settings: Settings,
        calendar: BusinessCalendar,
        slas: tuple[AnswerSla, ...],
        as_of: datetime,
    ) -> None:
        self.session = session
        self.settings = settings
        self.calendar = calendar
        self.slas = slas
        self.as_of = as_of
        self.system = settings.config.crm
        self.names: dict[str, str] = {}

    def contexts(self, handoffs: Sequence[Handoff]) -> list[tuple[Handoff, HandoffContext]]:
        """Each handoff whose record is still in the store, with what the rules see of it."""
        found = contexts_for(self.session, self.settings.config, handoffs, self.as_of)
        return [(h, c) for h, c in zip(handoffs, found, strict=True) if c.record]

    def learn_people(self, handoffs: Sequence[Handoff]) -> None:
        """Names of the senders and receivers of ``handoffs`` (one query per 500)."""
        ids = sorted(
            {i for h in handoffs for i in (h.sender_id, h.receiver_id) if i} - set(self.names)
        )
        for start in range(0, len(ids), 500):
            rows = self.session.execute(
                select(Person.user_id, Person.name).where(
                    Person.system == self.system, Person.user_id.in_(ids[start : start + 500])
                )
            )
            self.names.update((uid, name) for uid, name in rows)

    def person(self, user_id: str | None) -> str:
        if not user_id:
            return ""
        return self.names.get(user_id) or user_id

    def sla(self, ctx: HandoffContext) -> AnswerSla | None:
        return answer_sla_for(self.slas, ctx, self.calendar)

    def item(self, h: Handoff, ctx: HandoffContext) -> AgendaItem:
        record = ctx.record
        mapped = set(self.settings.config.fields(h.object))
        account = ctx.related.get("account", {})
        lead = ctx.related.get("lead", {})
        notes = next(
            (_text(record[f]) for f in _FIELDS["Hearing notes"] if _text(record.get(f)).strip()),
            "",
        )
        sla = self.sla(ctx)
        meeting = None
        try:
            meeting = to_instant(record.get("meeting_date"), self.calendar)
        except ValueError:
            pass  # an unreadable date is the rules' business (is-fs.meeting-date)
        return AgendaItem(
            handoff_id=h.id,
            object=h.object,
            record_id=h.record_id,
            title=shorten(_text(record.get("name")), NAME_WIDTH),
            company=shorten(_text(account.get("name") or record.get("company")), NAME_WIDTH),
            contact=shorten(_text(lead.get("name")), NAME_WIDTH),
            sender=self.person(h.sender_id),
            receiver=self.person(h.receiver_id),
            handed_at=h.handed_at.astimezone(self.calendar.tz),
            hearing_notes=shorten(notes, NOTES_WIDTH),
            bant=tuple(
                Labelled(_label(f), shorten(_text(record.get(f)), BANT_WIDTH))
                for f in _FIELDS["BANT"]
                if f in mapped
            ),
            proposals=tuple(
                Labelled(_label(f), shorten(_text(record.get(f)), PROPOSAL_WIDTH))
                for f in _FIELDS["Proposal"]
                if f in mapped
            ),
            recordings=_recordings(ctx),
            verdict=_verdict(h.verdict),
            clock=None if sla is None else sla.clock(ctx, self.calendar, self.as_of.timestamp()),
            meeting_at=None if meeting is None else meeting.astimezone(self.calendar.tz),
            link=record_link(self.settings, h.object, h.record_id),
        )


def _recordings(ctx: HandoffContext) -> tuple[RecordingLink, ...]:
    """The linked recordings (calls first), then recording URLs typed into the record."""
    links = [
        RecordingLink(kind=a.kind, source=a.source, url=a.url, at=a.at)
        for a in sorted(ctx.artifacts, key=lambda a: (a.kind != "call", a.at))
    ]
    seen = {r.url for r in links}
    for name, value in sorted(ctx.record.items()):
        url = _text(value).strip()
        if name.endswith("_recording_url") and url and url not in seen:
            seen.add(url)
            kind = "call" if "call" in name else "meeting"
            links.append(RecordingLink(kind=kind, source="crm", url=url))
    return tuple(links)


def _verdict(v: Verdict | None) -> VerdictSummary | None:
    if v is None:
        return None
    return VerdictSummary(
        outcome=v.outcome,
        score=v.score,
        findings=tuple(Finding(x.rule_id, x.severity, x.message) for x in v.violations),
    )


def _handoffs(
    session: Session, system: str, boundary: str, start: datetime, end: datetime
) -> list[Handoff]:
    """The boundary's handoffs made in ``[start, end)``, oldest first, verdicts loaded."""
    return list(
        session.scalars(
            select(Handoff)
            .where(
                Handoff.boundary == boundary,
                Handoff.handed_at >= start,
                Handoff.handed_at < end,
                Handoff.system == system,
            )
            .order_by(Handoff.handed_at, Handoff.id)
            .options(selectinload(Handoff.verdict).selectinload(Verdict.violations))
        )
    )


def _latest_per_record(handoffs: Sequence[Handoff]) -> list[Handoff]:
    """The last handoff of each record (``handoffs`` oldest first), oldest first."""
    latest: dict[tuple[str, str], Handoff] = {}
    for h in handoffs:
        latest[(h.object, h.record_id)] = h
    return sorted(latest.values(), key=lambda h: (h.handed_at, h.id))


def build_agenda(
    store: Store,
    settings: Settings,
    day: date,
    *,
    now: datetime | None = None,
    rulebook: Rulebook | None = None,
) -> Agenda:
    """The agenda of the handoff meeting held on ``day``.

    New handoffs of the meeting's boundary made since the previous meeting (see
    :class:`MeetingSchedule`), grouped by receiver; then older ones (up to
    :data:`WAITING_LOOKBACK`) still waiting for the receiver's answer; then the previous
    meeting's handoffs whose verdict is still ``failed``. SLA clocks are read at the meeting's
    start, or at ``now`` (default: the current time) once the meeting has begun.

    Raises :class:`~tasuki.meeting.schedule.NotAMeetingDay` when ``day`` is not a business day,
    :class:`~tasuki.errors.ConfigError` when the rules files are wrong (``rulebook`` not given).
    """
    if rulebook is None:
        rulebook = load_rules(settings)
    schedule = MeetingSchedule.from_settings(settings)
    calendar = schedule.calendar
    boundary = meeting_boundary(settings.config)
    window = schedule.window(day)
    previous = schedule.window(schedule.previous_meeting(day))
    as_of = max(now or utcnow(), window.end).astimezone(calendar.tz)
    system = settings.config.crm
    with store.session() as session:
        b = _Builder(session, settings, calendar, answer_slas(rulebook, boundary), as_of)
        new = _handoffs(session, system, boundary.id, window.start, window.end)
        older = _handoffs(
            session, system, boundary.id, window.start - WAITING_LOOKBACK, window.start
        )
        b.learn_people(new + older)
        items = [b.item(h, c) for h, c in b.contexts(new)]
        discussed = {(i.object, i.record_id) for i in items}
        waiting, unfixed = _earlier(b, older, discussed, previous)
    groups: dict[str, list[AgendaItem]] = {}
    for i in items:
        groups.setdefault(i.receiver, []).append(i)
    sender, receiver = boundary.departments
    slas = b.slas
    return Agenda(
        day=day,
        boundary=boundary.id,
        sender_department=sender,
        receiver_department=receiver,
        starts_at=window.end,
        ends_at=schedule.ends_at(day),
        timezone=settings.config.calendar.timezone,
        window_start=window.start,
        window_end=window.end,
        as_of=as_of,
        answer_rule=slas[0].describe() if slas else None,
        groups=tuple(PersonGroup(r, tuple(groups[r])) for r in sorted(groups)),
        waiting=tuple(waiting),
        unfixed=tuple(unfixed),
    )


def _earlier(
    b: _Builder,
    older: Sequence[Handoff],
    discussed: set[tuple[str, str]],
    previous: Window,
) -> tuple[list[AgendaItem], list[AgendaItem]]:
    """(still waiting for an answer, failed at the last meeting and still failed) among the
    latest handoffs of records not on today's list."""
    waiting: list[AgendaItem] = []
    unfixed: list[AgendaItem] = []
    candidates = [h for h in _latest_per_record(older) if (h.object, h.record_id) not in discussed]
    for h, ctx in b.contexts(candidates):
        failed = h.verdict is not None and h.verdict.outcome == _FAILED
        if failed and h.handed_at in previous:
            unfixed.append(b.item(h, ctx))
            continue
        sla = b.sla(ctx)
        if sla is not None and not sla.answered(ctx, b.calendar):
            waiting.append(b.item(h, ctx))
    return waiting, unfixed


def handoff_item(
    store: Store,
    settings: Settings,
    handoff_id: int,
    *,
    rulebook: Rulebook,
    now: datetime | None = None,
) -> AgendaItem | None:
    """One handoff as the meeting would show it (packet, verdict, answer clock read at ``now``,
    recordings, CRM link), for the console's handoff page; ``None`` when there is no such
    handoff or its record has left the store."""
    calendar = BusinessCalendar.from_config(settings.config.calendar)
    as_of = (now or utcnow()).astimezone(calendar.tz)
    with store.session() as session:
        h = session.scalar(
            select(Handoff)
            .where(Handoff.id == handoff_id, Handoff.system == settings.config.crm)
            .options(selectinload(Handoff.verdict).selectinload(Verdict.violations))
        )
        if h is None:
            return None
        boundary = next((b for b in settings.config.boundaries if b.id == h.boundary), None)
        slas = answer_slas(rulebook, boundary) if boundary is not None else ()
        b = _Builder(session, settings, calendar, slas, as_of)
        b.learn_people([h])
        found = b.contexts([h])
        return b.item(*found[0]) if found else None
