"""KPI periods in the company's timezone: month ``2026-11``, quarter ``FY2026-Q3``, ``FY2026``.

Quarters and fiscal years start at ``fiscal_year_start`` (April is common in Japan): with April,
FY2026 runs from 2026-04-01 to 2027-03-31 and FY2026-Q1 is April to June. A fiscal year is named
after the calendar year it starts in. Boundaries are local midnights of the company's timezone,
turned into UTC instants, so a deal won at 2026-10-31T16:00Z counts in November in Tokyo.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from enum import Enum
from zoneinfo import ZoneInfo


class PeriodKind(str, Enum):
    """How long one KPI period is."""

    MONTH = "month"
    QUARTER = "quarter"
    FISCAL_YEAR = "fiscal_year"


_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^FY(\d{4})-Q([1-4])$")
_YEAR = re.compile(r"^FY(\d{4})$")


def kind_of(period: str) -> PeriodKind:
    """The kind of a period name; ``ValueError`` when it is none of them."""
    if (m := _MONTH.match(period)) and 1 <= int(m.group(2)) <= 12:
        return PeriodKind.MONTH
    if _QUARTER.match(period):
        return PeriodKind.QUARTER
    if _YEAR.match(period):
        return PeriodKind.FISCAL_YEAR
    raise ValueError(f"not a period: {period!r} (expected 2026-11, FY2026-Q3 or FY2026)")


def period_of(at: datetime, kind: str, fy_start: int, tz: ZoneInfo) -> str:
    """The period of ``kind`` that the instant ``at`` falls in."""
    day = at.astimezone(tz).date()
    if kind == PeriodKind.MONTH:
        return f"{day.year:04d}-{day.month:02d}"
    fy = day.year if day.month >= fy_start else day.year - 1
    if kind == PeriodKind.FISCAL_YEAR:
        return f"FY{fy}"
    months_in = (day.month - fy_start) % 12
    return f"FY{fy}-Q{months_in // 3 + 1}"


def _month_start(year: int, month: int, tz: ZoneInfo) -> datetime:
    year += (month - 1) // 12
    month = (month - 1) % 12 + 1
    return datetime(year, month, 1, tzinfo=tz).astimezone(UTC)


def bounds(period: str, fy_start: int, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of ``period`` as UTC instants."""
    kind = kind_of(period)
    if kind == PeriodKind.MONTH:
        year, month = (int(x) for x in period.split("-"))
        return _month_start(year, month, tz), _month_start(year, month + 1, tz)
    fy_text, _, quarter = period[2:].partition("-Q")
    fy = int(fy_text)
    if quarter:
        first = fy_start + 3 * (int(quarter) - 1)
        return _month_start(fy, first, tz), _month_start(fy, first + 3, tz)
    return _month_start(fy, fy_start, tz), _month_start(fy + 1, fy_start, tz)


def previous(period: str, kind: str, fy_start: int, tz: ZoneInfo) -> str:
    """The period of ``kind`` just before ``period`` starts."""
    start, _ = bounds(period, fy_start, tz)
    return period_of(start - timedelta(seconds=1), kind, fy_start, tz)


def containing(period: str, kind: str, fy_start: int, tz: ZoneInfo) -> str:
    """The period of ``kind`` containing the start of ``period`` (``2026-11`` → ``FY2026-Q3``)."""
    start, _ = bounds(period, fy_start, tz)
    return period_of(start, kind, fy_start, tz)


def spanning(start: datetime, end: datetime, kind: str, fy_start: int, tz: ZoneInfo) -> list[str]:
    """Every period of ``kind`` that [start, end] touches, oldest first."""
    out = [period_of(start, kind, fy_start, tz)]
    while True:
        _, upper = bounds(out[-1], fy_start, tz)
        if upper > end:
            return out
        out.append(period_of(upper, kind, fy_start, tz))
