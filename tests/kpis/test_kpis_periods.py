"""Periods in the company's timezone, with a configurable first month of the fiscal year."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from tasuki.kpis.periods import bounds, containing, kind_of, period_of, previous, spanning

TOKYO = ZoneInfo("Asia/Tokyo")
NEW_YORK = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("at", "kind", "fy_start", "expected"),
    [
        ("2026-10-31T14:59:59", "month", 4, "2026-10"),
        ("2026-10-31T15:00:00", "month", 4, "2026-11"),  # 00:00 on 1 Nov in Tokyo
        ("2027-03-31T14:59:59", "fiscal_year", 4, "FY2026"),
        ("2027-03-31T15:00:00", "fiscal_year", 4, "FY2027"),
        ("2026-04-01T00:00:00", "quarter", 4, "FY2026-Q1"),
        ("2026-12-31T14:59:59", "quarter", 4, "FY2026-Q3"),
        ("2026-12-31T15:00:00", "quarter", 4, "FY2026-Q4"),  # 1 Jan 2027 in Tokyo
        ("2026-12-31T15:00:00", "fiscal_year", 1, "FY2027"),
        ("2026-06-30T15:00:00", "quarter", 10, "FY2025-Q4"),
    ],
)
def test_period_of_an_instant(at: str, kind: str, fy_start: int, expected: str) -> None:
    instant = datetime.fromisoformat(at).replace(tzinfo=UTC)
    assert period_of(instant, kind, fy_start, TOKYO) == expected


def test_bounds_are_local_midnights() -> None:
    start, end = bounds("2026-11", 4, TOKYO)
    assert (start.isoformat(), end.isoformat()) == (
        "2026-10-31T15:00:00+00:00",
        "2026-11-30T15:00:00+00:00",
    )
    start, end = bounds("FY2026", 4, TOKYO)
    assert (start.isoformat(), end.isoformat()) == (
        "2026-03-31T15:00:00+00:00",
        "2027-03-31T15:00:00+00:00",
    )
    start, end = bounds("FY2026-Q4", 4, TOKYO)
    assert (start.date().isoformat(), end.date().isoformat()) == ("2026-12-31", "2027-03-31")
    # A zone with daylight saving: November starts at 04:00 UTC (EDT), ends at 05:00 (EST).
    start, end = bounds("2026-11", 4, NEW_YORK)
    assert (start.hour, end.hour) == (4, 5)


def test_previous_containing_and_spanning() -> None:
    assert previous("2026-01", "month", 4, TOKYO) == "2025-12"
    assert previous("FY2026-Q1", "quarter", 4, TOKYO) == "FY2025-Q4"
    assert containing("2026-11", "quarter", 4, TOKYO) == "FY2026-Q3"
    assert containing("2027-02", "fiscal_year", 4, TOKYO) == "FY2026"
    first = datetime(2026, 10, 15, tzinfo=UTC)
    last = datetime(2027, 1, 2, tzinfo=UTC)
    assert spanning(first, last, "month", 4, TOKYO) == ["2026-10", "2026-11", "2026-12", "2027-01"]


@pytest.mark.parametrize("bad", ["2026-13", "2026/11", "FY2026-Q5", "Q3"])
def test_a_malformed_period_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not a period"):
        kind_of(bad)


@pytest.mark.parametrize(
    ("text", "fy_start", "expected"),
    [
        ("2026-11", 4, "2026-11"),
        ("FY2026-Q3", 4, "FY2026-Q3"),
        ("fy2026", 4, "FY2026"),
        ("2026-Q3", 4, "FY2026-Q2"),  # July to September 2026
        ("2027-Q1", 4, "FY2026-Q4"),  # January to March 2027
        ("2026-Q3", 1, "FY2026-Q3"),
        ("2026-Q4", 10, "FY2026-Q1"),
    ],
)
def test_periods_as_people_type_them(text: str, fy_start: int, expected: str) -> None:
    from tasuki.kpis.periods import parse_period

    assert parse_period(text, fy_start) == expected


def test_a_calendar_quarter_that_is_no_fiscal_quarter_is_refused() -> None:
    from tasuki.kpis.periods import parse_period

    with pytest.raises(ValueError, match="calendar quarter"):
        parse_period("2026-Q3", 2)
    with pytest.raises(ValueError, match="not a period"):
        parse_period("2026-Q5", 4)


def test_a_period_is_computed_whole_for_kpis_of_shorter_periods() -> None:
    from tasuki.kpis.periods import declared, label, months_in

    assert declared("FY2026-Q3", "month", 4, TOKYO) == "FY2026-Q3"
    assert declared("FY2026", "quarter", 4, TOKYO) == "FY2026"
    assert declared("2026-11", "quarter", 4, TOKYO) == "FY2026-Q3"
    assert [months_in(p) for p in ("2026-11", "FY2026-Q3", "FY2026")] == [1, 3, 12]
    assert label("2026-12", current=True) == "2026-12, month to date"
    assert label("FY2026-Q3", current=True) == "FY2026-Q3, quarter to date"
