"""KPI periods in the company's timezone: month ``2026-11``, quarter ``FY2026-Q3``, ``FY2026``.

Quarters and fiscal years start at ``fiscal_year_start`` (April is common in Japan): with April,
FY2026 runs from 2026-04-01 to 2027-03-31 and FY2026-Q1 is April to June.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo


def _fy(day: date, start: int) -> int:
    return day.year if day.month >= start else day.year - 1


def period_of(at: datetime, kind: str, fy_start: int, tz: ZoneInfo) -> str:
    """The period that the instant ``at`` falls in."""
    day = at.astimezone(tz).date()
    if kind == "month":
        return f"{day.year:04d}-{day.month:02d}"
    fy = _fy(day, fy_start)
    if kind == "fiscal_year":
        return f"FY{fy}"
    months_in = (day.month - fy_start) % 12
    return f"FY{fy}-Q{months_in // 3 + 1}"


def _month_start(year: int, month: int, tz: ZoneInfo) -> datetime:
    year += (month - 1) // 12
    month = (month - 1) % 12 + 1
    return datetime(year, month, 1, tzinfo=tz).astimezone(UTC)


def bounds(period: str, fy_start: int, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of ``period`` as UTC instants."""
    if period.startswith("FY"):
        fy_text, _, quarter = period[2:].partition("-Q")
        fy = int(fy_text)
        if quarter:
            first = fy_start + 3 * (int(quarter) - 1)
            return _month_start(fy, first, tz), _month_start(fy, first + 3, tz)
        return _month_start(fy, fy_start, tz), _month_start(fy + 1, fy_start, tz)
    year, month = (int(x) for x in period.split("-"))
    return _month_start(year, month, tz), _month_start(year, month + 1, tz)


def previous(period: str, kind: str, fy_start: int, tz: ZoneInfo) -> str:
    """The period just before ``period``."""
    start, _ = bounds(period, fy_start, tz)
    return period_of(start - timedelta(seconds=1), kind, fy_start, tz)
