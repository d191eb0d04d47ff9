"""``tasuki handoff agenda``: the agenda of a handoff meeting, printed."""

from __future__ import annotations

from datetime import date, datetime

import click

from tasuki.meeting.agenda import Agenda
from tasuki.meeting.build import build_agenda
from tasuki.meeting.jsonio import to_json
from tasuki.meeting.markdown import render_markdown
from tasuki.meeting.plain import render_text
from tasuki.meeting.schedule import MeetingSchedule, NotAMeetingDay
from tasuki.settings import load_settings
from tasuki.store.db import open_store
from tasuki.store.models import utcnow

FORMATS = ("text", "markdown", "json")


def render(agenda: Agenda, fmt: str) -> str:
    """The agenda in one of :data:`FORMATS`."""
    if fmt == "json":
        return to_json(agenda) + "\n"
    if fmt == "markdown":
        return render_markdown(agenda)
    return render_text(agenda)


@click.command("agenda")
@click.option(
    "--date",
    "day",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="The meeting's day (default: the next meeting: today before it starts, else the next "
    "business day).",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
def agenda_command(day: datetime | None, fmt: str) -> None:
    """Print the agenda of the daily handoff meeting: new handoffs by receiver, those still
    waiting for an answer, and the last meeting's failures not yet fixed.

    Times are in the company's timezone (calendar.timezone); the meeting's time and boundary
    come from the meeting: block of tasuki.yaml."""
    settings = load_settings()
    schedule = MeetingSchedule.from_settings(settings)
    meeting: date = day.date() if day else schedule.next_meeting(utcnow())
    store = open_store(settings.database_url)
    try:
        agenda = build_agenda(store, settings, meeting)
    except NotAMeetingDay as exc:
        raise click.BadParameter(str(exc), param_hint="--date") from exc
    finally:
        store.engine.dispose()
    click.echo(render(agenda, fmt), nl=False)
