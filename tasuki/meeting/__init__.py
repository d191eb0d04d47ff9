"""The daily handoff meeting (申し送り会議): its schedule, its agenda and the agenda's renderings.

Build an agenda with :func:`build_agenda`; render it with :func:`render_text`,
:func:`render_markdown`, :func:`to_json`, :func:`slack_blocks` or :func:`email`.
"""

from tasuki.meeting.agenda import (
    Agenda,
    AgendaItem,
    AnswerClock,
    ClockState,
    Finding,
    Labelled,
    PersonGroup,
    RecordingLink,
    VerdictSummary,
)
from tasuki.meeting.build import WAITING_LOOKBACK, build_agenda
from tasuki.meeting.jsonio import from_json, to_json
from tasuki.meeting.links import record_link
from tasuki.meeting.mail import AgendaEmail, email
from tasuki.meeting.markdown import render_markdown
from tasuki.meeting.plain import render_text
from tasuki.meeting.schedule import MeetingSchedule, NotAMeetingDay, Window, meeting_boundary
from tasuki.meeting.slack import SlackMessage, slack_blocks

__all__ = [
    "WAITING_LOOKBACK",
    "Agenda",
    "AgendaEmail",
    "AgendaItem",
    "AnswerClock",
    "ClockState",
    "Finding",
    "Labelled",
    "MeetingSchedule",
    "NotAMeetingDay",
    "PersonGroup",
    "RecordingLink",
    "SlackMessage",
    "VerdictSummary",
    "Window",
    "build_agenda",
    "email",
    "from_json",
    "meeting_boundary",
    "record_link",
    "render_markdown",
    "render_text",
    "slack_blocks",
    "to_json",
]
