"""The agenda of one handoff meeting, as plain frozen data.

:func:`tasuki.meeting.build_agenda` makes it from the store; the renderers (text, Markdown,
JSON, Slack Block Kit, e-mail) only format it. Every instant is aware and in the company's
timezone; every text is what the CRM holds, shortened for reading at a meeting (the full
record is one link away), never escaped: escaping belongs to each renderer
(:mod:`tasuki.meeting.escape`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from zoneinfo import ZoneInfo


class ClockState(str, Enum):
    """Where the receiver's answer SLA of one handoff stands."""

    PENDING = "pending"
    """No answer yet; the deadline has not passed."""
    OVERDUE = "overdue"
    """No answer yet; the deadline has passed."""
    ANSWERED = "answered"
    """Answered within the limit."""
    ANSWERED_LATE = "answered_late"
    """Answered after the deadline."""


@dataclass(frozen=True)
class AnswerClock:
    """The receiver's answer SLA of one handoff (e.g. FS accepts or rejects within 1 business
    day), measured at the agenda's ``as_of``."""

    rule_id: str
    within: str
    """The limit as the rule writes it: ``1 business day``."""
    deadline: datetime
    state: ClockState
    business_seconds: float
    """Business time left (``pending``), past the deadline (``overdue``), or taken to answer
    (``answered``, ``answered_late``)."""
    answered_at: datetime | None = None
    business: bool = True
    """Whether ``business_seconds`` counts business time (``1 business day``) or the clock's
    (``24 hours``)."""


@dataclass(frozen=True)
class Finding:
    """One rule the handoff broke (a violation of its verdict)."""

    rule_id: str
    severity: str
    """``error`` or ``warn``."""
    message: str


@dataclass(frozen=True)
class VerdictSummary:
    """The handoff's latest verdict."""

    outcome: str
    """``passed``, ``warned`` or ``failed``."""
    score: int
    findings: tuple[Finding, ...] = ()


@dataclass(frozen=True)
class RecordingLink:
    """A call (MiiTel) or meeting (Zoom) recording of the record or its related records."""

    kind: str
    """``call`` or ``meeting``."""
    source: str
    """``miitel``, ``zoom`` or ``crm`` (a URL typed into the record)."""
    url: str
    at: datetime | None = None


@dataclass(frozen=True)
class Labelled:
    """A short text under a label (one BANT element, one proposal)."""

    label: str
    text: str
    """Empty when the record does not say."""


@dataclass(frozen=True)
class AgendaItem:
    """One handoff to walk through."""

    handoff_id: int
    object: str
    record_id: str
    title: str
    """The record's name (a deal's name, a lead's name)."""
    company: str
    contact: str
    sender: str
    receiver: str
    handed_at: datetime
    hearing_notes: str
    bant: tuple[Labelled, ...]
    proposals: tuple[Labelled, ...]
    recordings: tuple[RecordingLink, ...]
    verdict: VerdictSummary | None
    """``None`` while the handoff has not been judged yet."""
    clock: AnswerClock | None
    """``None`` when no SLA rule of the boundary times the receiver's answer."""
    meeting_at: datetime | None = None
    """When the receiver meets the customer (a deal's ``meeting_date``), if known."""
    link: str | None = None
    """The record in the CRM, when settings give a way to link to it."""


@dataclass(frozen=True)
class PersonGroup:
    """The new handoffs one receiver (an FS person) got."""

    receiver: str
    items: tuple[AgendaItem, ...]


@dataclass(frozen=True)
class Agenda:
    """The handoff meeting of one day: new handoffs by receiver, then those still waiting for
    the receiver's answer from earlier days, then the last meeting's failures not yet fixed.

    Each handoff appears once: a new one only under its receiver; an older one that failed at
    the last meeting and is still failed under ``unfixed`` (its answer clock shown there too).
    """

    day: date
    boundary: str
    sender_department: str
    receiver_department: str
    starts_at: datetime
    ends_at: datetime
    timezone: str
    """The company's IANA timezone, e.g. ``Asia/Tokyo``."""
    window_start: datetime
    window_end: datetime
    as_of: datetime
    """When the SLA clocks are read: the meeting's start, or now once it has begun."""
    answer_rule: str | None
    """What the answer clock measures (``deal.fs_accepted_at within 1 business day of
    handoff.at``, rule ``is-fs.fs-answer-sla``), or ``None`` when no rule times it."""
    groups: tuple[PersonGroup, ...]
    waiting: tuple[AgendaItem, ...]
    unfixed: tuple[AgendaItem, ...]

    @property
    def items(self) -> tuple[AgendaItem, ...]:
        """The new handoffs, receiver by receiver."""
        return tuple(i for g in self.groups for i in g.items)

    @property
    def zone(self) -> ZoneInfo:
        """The company's timezone: every instant is shown in it."""
        return ZoneInfo(self.timezone)

    @property
    def tz_label(self) -> str:
        """The timezone's abbreviation at the meeting (``JST``), else its UTC offset."""
        local = self.starts_at.astimezone(self.zone)
        name = local.tzname() or ""
        return name if name.isalpha() else local.strftime("UTC%z")
