"""Wording shared by every renderer: times in the company's timezone with their label, business
durations, verdicts and answer clocks in one sentence, texts shortened to fit.

These return plain, unescaped text; each renderer escapes what it puts out
(:mod:`tasuki.meeting.escape`).
"""

from __future__ import annotations

import unicodedata
from datetime import datetime

from tasuki.meeting.agenda import Agenda, AgendaItem, AnswerClock, ClockState

ELLIPSIS = "…"


def _width(ch: str) -> int:
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal: wide (CJK) characters count two."""
    return sum(_width(ch) for ch in text)


def shorten(text: str, limit: int) -> str:
    """``text`` on one line, at most ``limit`` columns wide (Japanese characters count two, so
    the limit holds about as much to read in either language): cut at a word boundary when one
    is near the end, else at a character, and marked with an ellipsis."""
    one = " ".join(text.split())
    if display_width(one) <= limit:
        return one
    kept: list[str] = []
    used = 0
    for ch in one:
        used += _width(ch)
        if used > limit - 1:
            break
        kept.append(ch)
    cut = "".join(kept)
    space = cut.rfind(" ")
    if space >= len(cut) * 0.7:
        cut = cut[:space]
    return cut.rstrip(" ,.;:、。") + ELLIPSIS


def when(agenda: Agenda, at: datetime, *, day: bool = True) -> str:
    """``Fri 2026-11-20 14:20 JST`` (``14:20 JST`` with ``day=False``) in the company's zone."""
    local = at.astimezone(agenda.zone)
    shown = local.strftime("%a %Y-%m-%d %H:%M") if day else local.strftime("%H:%M")
    return f"{shown} {agenda.tz_label}"


def duration(seconds: float) -> str:
    """Seconds as ``3h05m`` or ``45m``."""
    minutes = int(abs(seconds)) // 60
    h, m = divmod(minutes, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m"


def title(agenda: Agenda) -> str:
    """``Handoff meeting IS→FS, Tue 2026-11-24 10:00–10:30 JST``."""
    start = agenda.starts_at.astimezone(agenda.zone)
    end = agenda.ends_at.astimezone(agenda.zone)
    return (
        f"Handoff meeting {agenda.boundary}, {start:%a %Y-%m-%d %H:%M}–{end:%H:%M} "
        f"{agenda.tz_label}"
    )


def covers(agenda: Agenda) -> str:
    """What the agenda covers and when its clocks are read."""
    return (
        f"Handoffs from {when(agenda, agenda.window_start)} to {when(agenda, agenda.window_end)}; "
        f"SLA clocks as of {when(agenda, agenda.as_of)}."
    )


def counts(agenda: Agenda) -> str:
    """``3 new handoffs for 2 FS people · 1 still waiting · 2 failures not fixed``."""
    people = len(agenda.groups)
    dept = agenda.receiver_department
    return (
        f"{len(agenda.items)} new handoff{'s' if len(agenda.items) != 1 else ''} for {people} "
        f"{dept} {'person' if people == 1 else 'people'} · {len(agenda.waiting)} still waiting "
        f"for an {dept} answer · {len(agenda.unfixed)} of the last meeting's failures not fixed"
    )


def waiting_heading(agenda: Agenda) -> str:
    """The heading of the "still waiting" section."""
    return f"Still waiting for an {agenda.receiver_department} answer from earlier days"


UNFIXED_HEADING = "Last meeting's failures not yet fixed"


def verdict(item: AgendaItem) -> str:
    """``FAILED 72/100`` or ``not judged yet``."""
    v = item.verdict
    return "not judged yet" if v is None else f"{v.outcome.upper()} {v.score}/100"


def clock(agenda: Agenda, c: AnswerClock | None) -> str:
    """The answer clock in one sentence."""
    dept = agenda.receiver_department
    if c is None:
        return f"no {dept} answer SLA in the rules"
    kind = " business time" if c.business else ""
    due = when(agenda, c.deadline)
    if c.state is ClockState.PENDING:
        return f"{dept} answer due {due}: {duration(c.business_seconds)}{kind} left"
    if c.state is ClockState.OVERDUE:
        return f"{dept} answer OVERDUE since {due}, by {duration(c.business_seconds)}{kind}"
    assert c.answered_at is not None
    late = ", LATE" if c.state is ClockState.ANSWERED_LATE else ""
    return (
        f"{dept} answered {when(agenda, c.answered_at)}, {duration(c.business_seconds)}{kind} "
        f"after the handoff (limit {c.within}{late})"
    )


def people_line(item: AgendaItem) -> str:
    """``contact リード 12 · from 高橋 翔 → 山本 拓也``."""
    contact = item.contact or "—"
    return f"contact {contact} · from {item.sender or '—'} → {item.receiver or '—'}"
