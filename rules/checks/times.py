"""Checks on instants: date_order, date_window, sla.

Instants are fields holding ISO-8601 times or dates (a date is its midnight in the company's
timezone), or ``handoff.at`` and ``now``. Durations written ``N business hours/days`` are
counted in the company's business calendar; plain ones on the wall clock.

**SLA semantics.** ``sla`` measures from ``start`` to ``end``. While the end event has not
happened and the deadline has not passed yet, the SLA is *pending*, which is not a violation;
it becomes one once ``now`` is past the deadline. The pipeline re-evaluates handoffs when their
records change and in a periodic SLA sweep, so a pending SLA turns into a violation without any
change to the record. When ``start`` is empty the clock has not started: not a violation (pair
the SLA with a ``required`` check on the start field if it must be there).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rules.checks.base import Check, CheckParser, YamlPath, register
from rules.values import HANDOFF_AT, InstantRef
from tasuki.calendar import BusinessCalendar
from tasuki.durations import Duration
from tasuki.verdicts import HandoffContext


def _hm(seconds: float) -> str:
    """Seconds as a short human duration: 1h05m, 45m."""
    s = int(abs(seconds))
    sign = "-" if seconds < 0 else ""
    h, m = divmod(s // 60, 60)
    return f"{sign}{h}h{m:02d}m" if h else f"{sign}{m}m"


def _local(ts: float, calendar: BusinessCalendar) -> str:
    """Epoch seconds as local time in the company's timezone, for reasons people read."""
    return datetime.fromtimestamp(ts, calendar.tz).strftime("%Y-%m-%d %H:%M")


@register("date_order")
@dataclass(frozen=True, slots=True)
class DateOrder(Check):
    """``first`` comes before ``then`` (both must be set).

    ``strict: false`` allows them to be equal; ``by: day`` compares calendar days in the
    company's timezone instead of instants (for date-only fields like a close date).
    """

    first: InstantRef
    then: InstantRef
    strict: bool
    by_day: bool
    name = "date_order"
    required = ("first", "then")
    optional = ("strict", "by")

    @classmethod
    def parse(cls, p: CheckParser, at: YamlPath, data: Mapping[str, Any]) -> Check | None:
        first = p.instant(at + ("first",), data["first"])
        then = p.instant(at + ("then",), data["then"])
        strict = p.flag(at + ("strict",), data["strict"]) if "strict" in data else True
        by = data.get("by", "instant")
        if by not in ("instant", "day"):
            p.error(at + ("by",), f"by: {by!r}; expected instant or day")
            return None
        if first is None or then is None:
            return None
        return cls(first, then, strict, by == "day")

    def evaluate(self, ctx: HandoffContext, calendar: BusinessCalendar) -> str | None:
        a = self.first.ts(ctx, calendar)
        b = self.then.ts(ctx, calendar)
        if a is None or b is None:
            return f"{self.first if a is None else self.then} is empty"
        if self.by_day:
            da, db = calendar.local_day(a), calendar.local_day(b)
            bad = db <= da if self.strict else db < da
        else:
            bad = b <= a if self.strict else b < a
        if bad:
            return (
                f"{self.then} ({_local(b, calendar)}) is not after "
                f"{self.first} ({_local(a, calendar)})"
            )
        return None

    def describe(self) -> str:
        word = "after" if self.strict else "on or after"
        return f"{self.then} is {word} {self.first}" + (" (by day)" if self.by_day else "")


@register("date_window")
@dataclass(frozen=True, slots=True)
class DateWindow(Check):
    """``field`` falls between ``from`` + ``min`` and ``from`` + ``max`` (both must be set).

    ``from`` defaults to ``handoff.at``; ``min`` defaults to zero (not before ``from``).
    """

    field: InstantRef
    start: InstantRef
    min: Duration | None
    max: Duration | None
    name = "date_window"
    required = ("field",)
    optional = ("from", "min", "max")

    @classmethod
    def parse(cls, p: CheckParser, at: YamlPath, data: Mapping[str, Any]) -> Check | None:
        ref = p.instant(at + ("field",), data["field"])
        start = p.instant(at + ("from",), data.get("from", HANDOFF_AT))
        lo = p.duration(at + ("min",), data["min"]) if "min" in data else None
        hi = p.duration(at + ("max",), data["max"]) if "max" in data else None
        if "max" not in data and "min" not in data:
            p.error(at, "check 'date_window' needs 'max' or 'min'")
            return None
        if ref is None or start is None or ("min" in data and lo is None):
            return None
        if "max" in data and hi is None:
            return None
        return cls(ref, start, lo, hi)

    def evaluate(self, ctx: HandoffContext, calendar: BusinessCalendar) -> str | None:
        value = self.field.ts(ctx, calendar)
        origin = self.start.ts(ctx, calendar)
        if value is None or origin is None:
            return f"{self.field if value is None else self.start} is empty"
        if self.min is None:
            if value < origin:
                return f"{self.field} ({_local(value, calendar)}) is before {self.start}"
        elif self.min.elapsed(calendar, origin, value) < self.min.seconds(calendar):
            shown = _local(value, calendar)
            return f"{self.field} ({shown}) is sooner than {self.min} after {self.start}"
        hi = self.max
        if hi is not None and hi.exceeded(calendar, origin, value):
            shown = _local(value, calendar)
            return f"{self.field} ({shown}) is later than {hi} after {self.start}"
        return None

    def describe(self) -> str:
        lo = f"{self.start} + {self.min}" if self.min else str(self.start)
        if self.max is None:
            return f"{self.field} is at or after {lo}"
        return f"{self.field} is between {lo} and {self.start} + {self.max}"


@register("sla")
@dataclass(frozen=True, slots=True)
class Sla(Check):
    """``end`` happens at most ``within`` after ``start`` (default ``handoff.at``).

    Pending (end not set, deadline not passed) is not a violation; see the module docstring.
    """

    start: InstantRef
    end: InstantRef
    within: Duration
    name = "sla"
    required = ("end", "within")
    optional = ("start",)

    @classmethod
    def parse(cls, p: CheckParser, at: YamlPath, data: Mapping[str, Any]) -> Check | None:
        start = p.instant(at + ("start",), data.get("start", HANDOFF_AT))
        end = p.instant(at + ("end",), data["end"])
        within = p.duration(at + ("within",), data["within"])
        if start is None or end is None or within is None:
            return None
        return cls(start, end, within)

    def evaluate(self, ctx: HandoffContext, calendar: BusinessCalendar) -> str | None:
        begun = self.start.ts(ctx, calendar)
        if begun is None:
            return None
        done = self.end.ts(ctx, calendar)
        within = self.within
        if not within.exceeded(calendar, begun, ctx.now.timestamp() if done is None else done):
            return None
        taken = within.elapsed(calendar, begun, ctx.now.timestamp() if done is None else done)
        if done is None:
            return f"no {self.end} yet, {_hm(taken)} after {self.start}; limit {self.within}"
        return f"{self.end} came {_hm(taken)} after {self.start}; limit {self.within}"

    def note(self, ctx: HandoffContext, calendar: BusinessCalendar) -> str | None:
        begun = self.start.get(ctx, calendar)
        if begun is None:
            return f"not started: {self.start} is empty"
        done = self.end.ts(ctx, calendar)
        if done is None:
            deadline = self.within.after(calendar, begun).timestamp()
            return f"pending until {_local(deadline, calendar)}"
        return f"met in {_hm(self.within.elapsed(calendar, begun.timestamp(), done))}"

    def describe(self) -> str:
        return f"{self.end} within {self.within} of {self.start}"
