"""The demo's next handoff meeting: its agenda written beside the report, and a summary."""

from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path

from rich.console import Console

from tasuki.meeting import Agenda, MeetingSchedule, build_agenda, render_markdown
from tasuki.meeting.escape import plain
from tasuki.meeting.formatting import counts, title
from tasuki.settings import Settings
from tasuki.store.db import Store
from tasuki.store.models import utcnow

AGENDA_FILE = "agenda.md"
"""The agenda's file in the data folder, beside ``report.html``."""


def next_meeting_of_org(settings: Settings, until: date, now: datetime | None = None) -> date:
    """The next meeting after the synthetic org's last moment (``until`` 23:59), or after now
    when that comes first: the meeting a newcomer would walk into next."""
    schedule = MeetingSchedule.from_settings(settings)
    end = datetime.combine(until, time(23, 59), tzinfo=schedule.calendar.tz)
    return schedule.next_meeting(min(now or utcnow(), end))


def write_next_agenda(
    store: Store, settings: Settings, until: date, *, now: datetime | None = None
) -> tuple[Agenda, Path]:
    """Build the org's next agenda and write it as Markdown to ``<data dir>/agenda.md``."""
    agenda = build_agenda(store, settings, next_meeting_of_org(settings, until, now), now=now)
    path = settings.data_dir / AGENDA_FILE
    path.write_text(render_markdown(agenda), encoding="utf-8")
    return agenda, path


def show_next_agenda(console: Console, store: Store, settings: Settings, until: date) -> Path:
    """Write the next agenda and print what it holds and where it is."""
    agenda, path = write_next_agenda(store, settings, until)
    per_person = ", ".join(f"{plain(g.receiver)} {len(g.items)}" for g in agenda.groups)
    console.print(
        f"\nNext: {title(agenda)}\n"
        f"  {counts(agenda)}"
        + (f"\n  new handoffs per person: {per_person}" if per_person else "")
        + f"\nAgenda: {path} (also: tasuki handoff agenda --date {agenda.day.isoformat()})",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    return path
