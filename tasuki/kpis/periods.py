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


_SIZE = {PeriodKind.MONTH: 1, PeriodKind.QUARTER: 3, PeriodKind.FISCAL_YEAR: 12}
"""Months in a period of each kind."""

_CALENDAR_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")


def months_in(period: str) -> int:
    """How many months ``period`` spans (1, 3 or 12)."""
    return _SIZE[kind_of(period)]


def declared(period: str, kind: str, fy_start: int, tz: ZoneInfo) -> str:
    """The period a KPI counted per ``kind`` is computed over when ``period`` is asked for:
    ``period`` itself, whole, when it is as long as ``kind`` or longer (a monthly KPI over
    FY2026-Q3 is computed over October to December, not October); else the period of ``kind``
    containing it (a quarterly KPI asked for 2026-11 is its quarter)."""
    if _SIZE[kind_of(period)] >= _SIZE[PeriodKind(kind)]:
        return period
    return containing(period, kind, fy_start, tz)


def parse_period(text: str, fy_start: int) -> str:
    """A period as people type it, named as tasuki stores it: ``2026-11``, ``FY2026-Q3`` and
    ``FY2026`` as they are; a calendar quarter ``2026-Q3`` (July to September 2026) as the
    fiscal quarter of the same months (``FY2026-Q2`` with an April fiscal year), which exists
    only when the fiscal year starts in January, April, July or October. ``ValueError`` with
    what is expected otherwise."""
    value = text.strip().upper() if text.strip()[:2].upper() == "FY" else text.strip()
    if m := _CALENDAR_QUARTER.match(value.upper()):
        year, quarter = int(m.group(1)), int(m.group(2))
        first = 3 * (quarter - 1) + 1
        if (first - fy_start) % 3:
            raise ValueError(
                f"{text!r} is a calendar quarter, and quarters start in month {fy_start} here: "
                "name the fiscal quarter (FY2026-Q3)"
            )
        fy = year if first >= fy_start else year - 1
        return f"FY{fy}-Q{(first - fy_start) % 12 // 3 + 1}"
    kind_of(value)
    return value


def label(period: str, current: bool = False) -> str:
    """A period's heading; the running one says it is not over (``2026-12, month to date``)."""
    if not current:
        return period
    return f"{period}, {kind_of(period).value.replace('fiscal_year', 'year')} to date"


def first_month(period: str, fy_start: int) -> tuple[int, int]:
    """(year, month) of the first month of ``period``: periods of any kind in time order."""
    kind = kind_of(period)
    if kind == PeriodKind.MONTH:
        year, month = (int(x) for x in period.split("-"))
        return (year, month)
    fy_text, _, quarter = period[2:].partition("-Q")
    index = int(fy_text) * 12 + fy_start - 1 + (3 * (int(quarter) - 1) if quarter else 0)
    return (index // 12, index % 12 + 1)
