"""Reading values out of a handoff: field references, instants, emptiness.

A rule names a value as ``object.field`` in logical names. When ``object`` is the handed-over
record's own object the value comes from the record, otherwise from the related record of that
object (``account.is_target`` on a lead reads the lead's account). Two names are not fields:
``handoff.at`` (the moment of the handoff) and ``now`` (the moment of evaluation).

Values arrive as the pipeline stores them: instants as ISO-8601 strings, numbers as numbers,
booleans as bools. Checks read them through the helpers here so that a CRM's quirks (numbers as
strings, ``"true"``) are handled in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from tasuki.calendar import BusinessCalendar
from tasuki.verdicts import HandoffContext

HANDOFF_AT = "handoff.at"
NOW = "now"
INSTANT_NAMES = (HANDOFF_AT, NOW)
"""Instants a time check may name besides fields."""


@dataclass(frozen=True, slots=True)
class FieldRef:
    """``object.field``: a logical field of the handed-over record or of a related record."""

    object: str
    field: str

    def get(self, ctx: HandoffContext) -> Any:
        """The field's value, or None when the field or the related record is absent."""
        rec = ctx.record if ctx.object == self.object else ctx.related.get(self.object)
        if rec is None:
            return None
        return rec.get(self.field)

    def __str__(self) -> str:
        return f"{self.object}.{self.field}"


@dataclass(frozen=True, slots=True)
class InstantRef:
    """A field holding an instant, or ``handoff.at`` / ``now``."""

    name: str
    field: FieldRef | None = None

    def get(self, ctx: HandoffContext, calendar: BusinessCalendar) -> datetime | None:
        """The instant, aware; None when the field is empty. ValueError when unreadable."""
        if self.field is not None:
            return to_instant(self.field.get(ctx), calendar)
        if self.name == NOW:
            return ctx.now
        return ctx.handed_at

    def ts(self, ctx: HandoffContext, calendar: BusinessCalendar) -> float | None:
        """The instant as epoch seconds (the fast path of time checks); None when empty."""
        ref = self.field
        if ref is not None:
            rec = ctx.record if ctx.object == ref.object else ctx.related.get(ref.object)
            return None if rec is None else to_timestamp(rec.get(ref.field), calendar)
        if self.name == NOW:
            return ctx.now.timestamp()
        return ctx.handed_at.timestamp()

    def __str__(self) -> str:
        return self.name


def is_empty(value: Any) -> bool:
    """None, a blank string, or an empty list/dict count as not filled in."""
    if value is None:
        return True
    if type(value) is str:
        return not value or value.isspace()
    if isinstance(value, list | tuple | dict | set):
        return not value
    return False


def to_instant(value: Any, calendar: BusinessCalendar) -> datetime | None:
    """An aware datetime from an ISO-8601 string, a datetime or a date.

    A date or a naive time is read in the company's timezone (a date is its midnight).
    None or blank gives None; anything else unreadable raises :class:`ValueError`.
    """
    if value is None:
        return None
    if isinstance(value, str):
        if not value.strip():
            return None
        at = datetime.fromisoformat(value.strip())
    elif isinstance(value, datetime):
        at = value
    elif isinstance(value, date):
        at = datetime(value.year, value.month, value.day)
    else:
        raise ValueError(f"{value!r} is not a date or time")
    if at.tzinfo is None:
        at = at.replace(tzinfo=calendar.tz)
    return at


def to_timestamp(value: Any, calendar: BusinessCalendar) -> float | None:
    """:func:`to_instant` as epoch seconds (the hot path of every time check)."""
    if type(value) is str:
        if len(value) == 10:
            try:
                return calendar.date_timestamp(value)
            except ValueError:
                pass
        try:
            at = datetime.fromisoformat(value)
        except ValueError:
            instant = to_instant(value, calendar)  # blank (None), or padded, or unreadable
            return None if instant is None else instant.timestamp()
        if at.tzinfo is None:
            return calendar.naive_timestamp(at)
        return at.timestamp()
    instant = to_instant(value, calendar)
    return None if instant is None else instant.timestamp()


def to_number(value: Any) -> float | None:
    """A number from a number or a numeric string; None when empty; ValueError otherwise."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        if not value.strip():
            return None
        return float(value.replace(",", ""))
    raise ValueError(f"{value!r} is not a number")


def same_value(actual: Any, allowed: Any) -> bool:
    """Equality as a CRM means it: ``"true"`` equals True, ``"3"`` equals 3."""
    if actual == allowed and type(actual) is not bool and type(allowed) is not bool:
        return True
    if isinstance(allowed, bool):
        if isinstance(actual, bool):
            return actual is allowed
        if isinstance(actual, str):
            return actual.strip().lower() == ("true" if allowed else "false")
        return False
    if isinstance(actual, bool):
        return False
    if isinstance(allowed, int | float) and isinstance(actual, str):
        try:
            return float(actual) == allowed
        except ValueError:
            return False
    if isinstance(allowed, str) and isinstance(actual, int | float):
        return str(actual) == allowed
    return False


def shown(value: Any, limit: int = 40) -> str:
    """A value as it appears in a reason: quoted, cut to ``limit`` characters."""
    if value is None:
        return "empty"
    text = repr(value) if not isinstance(value, str) else f"'{value}'"
    return text if len(text) <= limit else text[: limit - 1] + "…'"
