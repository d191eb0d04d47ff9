"""Durations as rule authors write them: ``1 business hour``, ``2 business days``, ``30 minutes``.

Grammar: ``<number> [business] <unit>``, unit one of minute(s), hour(s), day(s), week(s)
(``business`` is not allowed with weeks). Short forms ``30m``, ``4h``, ``2d`` and ``1bh`` /
``1bd`` (business hour/day) are accepted. A business day is one working day of the company's
calendar (see :mod:`tasuki.calendar`); a plain day is 24 hours.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from tasuki.calendar import BusinessCalendar

_UNITS = {"minute": 60, "hour": 3600, "day": 86_400, "week": 604_800}
_SHORT = {"m": "minute", "h": "hour", "d": "day", "w": "week"}
_LONG_RE = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*(business\s+)?(minute|hour|day|week)s?\s*$", re.IGNORECASE
)
_SHORT_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b)?([mhdw])\s*$", re.IGNORECASE)

DURATION_HELP = "write a duration like '1 business hour', '2 business days', '30 minutes' or '4h'"


@dataclass(frozen=True, slots=True)
class Duration:
    """An amount of time, either wall-clock or counted in the company's business time."""

    amount: float
    unit: str
    """minute, hour, day or week."""
    business: bool
    text: str
    fixed: float | None
    """Length in seconds when it does not depend on the calendar (all but business days)."""

    def seconds(self, calendar: BusinessCalendar) -> float:
        """Length in seconds of (business) time; a business day is one working day long."""
        fixed = self.fixed
        return fixed if fixed is not None else self.amount * calendar.day_seconds

    def elapsed(self, calendar: BusinessCalendar, start: float, end: float) -> float:
        """Seconds from epoch second ``start`` to ``end`` in this duration's kind of time."""
        if self.business:
            return calendar.business_seconds_between(start, end)
        return end - start

    def exceeded(self, calendar: BusinessCalendar, start: float, end: float) -> bool:
        """True when more than this duration passes from ``start`` to ``end``."""
        limit = self.fixed if self.fixed is not None else self.amount * calendar.day_seconds
        if end - start <= limit:
            return False  # business time never runs faster than the clock: no calendar needed
        if self.business:
            return calendar.business_seconds_between(start, end) > limit
        return True

    def after(self, calendar: BusinessCalendar, start: datetime) -> datetime:
        """The instant this duration after ``start`` (the earliest, for business time)."""
        if self.business:
            return calendar.add_business_time(start, timedelta(seconds=self.seconds(calendar)))
        return start + timedelta(seconds=self.seconds(calendar))

    def __str__(self) -> str:
        return self.text


def parse_duration(text: object) -> Duration:
    """Parse a duration as written in a rules file; :class:`ValueError` when it isn't one."""
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a duration; {DURATION_HELP}")
    m = _LONG_RE.match(text)
    if m:
        amount, business, unit = float(m.group(1)), bool(m.group(2)), m.group(3).lower()
    else:
        m = _SHORT_RE.match(text)
        if not m:
            raise ValueError(f"bad duration {text!r}; {DURATION_HELP}")
        amount, business, unit = float(m.group(1)), bool(m.group(2)), _SHORT[m.group(3).lower()]
    if business and unit == "week":
        raise ValueError(f"{text!r}: business time is counted in minutes, hours or days")
    if amount <= 0:
        raise ValueError(f"{text!r}: a duration must be more than zero")
    fixed = None if business and unit == "day" else amount * _UNITS[unit]
    return Duration(amount, unit, business, text.strip(), fixed)
