"""When the daily handoff meeting (申し送り会議) is held and which handoffs it covers.

The meeting is held at ``meeting.time`` on every business day of the company calendar
(``calendar:`` in tasuki.yaml: working weekdays, minus public holidays and company days off).
Each meeting covers the handoffs made since the previous one, so nothing falls between two
meetings and nothing is discussed twice:

- a normal Wednesday covers Tuesday 10:00 up to Wednesday 10:00;
- a Monday covers Friday 10:00 up to Monday 10:00: Friday after the meeting, the weekend and
  Monday morning;
- the day after a holiday covers everything since the last business day's meeting (Thursday
  2026-05-07, after Golden Week, covers Friday 2026-05-01 10:00 onwards).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from tasuki.calendar import BusinessCalendar
from tasuki.errors import TasukiError
from tasuki.settings import BoundaryConfig, Config, MeetingConfig, Settings

DEFAULT_BOUNDARY = "IS→FS"
"""The boundary the meeting walks through when ``meeting.boundary`` is unset."""


class NotAMeetingDay(TasukiError, ValueError):
    """The day asked for is not a business day: no handoff meeting is held on it."""


@dataclass(frozen=True)
class Window:
    """The instants ``[start, end)`` whose handoffs one meeting covers (company timezone)."""

    start: datetime
    end: datetime

    def __contains__(self, at: datetime) -> bool:
        return self.start <= at < self.end


def meeting_boundary(config: Config) -> BoundaryConfig:
    """The boundary the meeting is about: ``meeting.boundary``, else ``IS→FS``.

    Raises :class:`~tasuki.errors.TasukiError` when the config has no such boundary (an explicit
    ``meeting.boundary`` is checked at start; the default may be missing from a custom config).
    """
    wanted = config.meeting.boundary or DEFAULT_BOUNDARY
    for b in config.boundaries:
        if b.id == wanted:
            return b
    known = ", ".join(b.id for b in config.boundaries)
    raise TasukiError(
        f"no boundary {wanted} for the handoff meeting (known: {known}); set meeting.boundary"
    )


class MeetingSchedule:
    """The meeting's days and hours in the company calendar."""

    def __init__(self, calendar: BusinessCalendar, meeting: MeetingConfig) -> None:
        self.calendar = calendar
        self.meeting = meeting

    @classmethod
    def from_settings(cls, settings: Settings) -> MeetingSchedule:
        """The schedule of ``settings``' calendar and ``meeting:`` block."""
        config = settings.config
        return cls(BusinessCalendar.from_config(config.calendar), config.meeting)

    def is_meeting_day(self, day: date) -> bool:
        """True on the calendar's business days."""
        return self.calendar.is_business_day(day)

    def _at(self, day: date, clock: time) -> datetime:
        return datetime.combine(day, clock, tzinfo=self.calendar.tz)

    def starts_at(self, day: date) -> datetime:
        """When the meeting of ``day`` starts (aware, company timezone)."""
        return self._at(day, self.meeting.time)

    def ends_at(self, day: date) -> datetime:
        """When the meeting of ``day`` ends."""
        return self.starts_at(day) + timedelta(minutes=self.meeting.duration_minutes)

    def deliver_at(self, day: date) -> datetime:
        """When the agenda of the meeting of ``day`` is sent (``meeting.deliver_at``)."""
        return self._at(day, self.meeting.deliver_at)

    def previous_meeting(self, day: date) -> date:
        """The last meeting day strictly before ``day`` (holidays and weekends skipped)."""
        d = day - timedelta(days=1)
        for _ in range(366):
            if self.calendar.is_business_day(d):
                return d
            d -= timedelta(days=1)
        raise NotAMeetingDay(f"no business day in the year before {day.isoformat()}")

    def window(self, day: date) -> Window:
        """The handoffs the meeting of ``day`` covers: from the previous meeting's start up to
        this one's. Raises :class:`NotAMeetingDay` when ``day`` is not a business day."""
        if not self.is_meeting_day(day):
            nxt = self.calendar.next_business_day(day)
            raise NotAMeetingDay(
                f"{day.isoformat()} ({day:%a}) is not a business day: no handoff meeting; "
                f"the next one is on {nxt.isoformat()} ({nxt:%a})"
            )
        return Window(self.starts_at(self.previous_meeting(day)), self.starts_at(day))

    def next_meeting(self, now: datetime) -> date:
        """The day of the next meeting to be held: today when ``now`` is before today's meeting
        starts on a business day, else the next business day."""
        today = now.astimezone(self.calendar.tz).date()
        if self.is_meeting_day(today) and now < self.starts_at(today):
            return today
        return self.calendar.next_business_day(today)
