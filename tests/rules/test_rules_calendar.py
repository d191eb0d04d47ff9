"""Business calendar: business time across nights, weekends, holidays and timezones."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasuki.calendar import BusinessCalendar
from tasuki.settings import CalendarConfig
from tests.rules.rules_support import CALENDAR, jst

H = 3600.0


@pytest.mark.parametrize(
    ("start", "end", "hours"),
    [
        ("2025-03-10 10:00", "2025-03-10 11:30", 1.5),  # within one Monday
        ("2025-03-10 07:00", "2025-03-10 10:00", 1.0),  # before opening counts nothing
        ("2025-03-10 17:00", "2025-03-11 10:00", 2.0),  # overnight
        ("2025-03-07 17:00", "2025-03-10 10:00", 2.0),  # Friday → Monday: weekend skipped
        ("2025-03-08 12:00", "2025-03-09 12:00", 0.0),  # all weekend
        ("2025-03-10 19:00", "2025-03-10 23:00", 0.0),  # after closing
        ("2025-03-10 09:00", "2025-03-17 09:00", 45.0),  # a full working week
        ("2025-04-28 17:00", "2025-05-07 10:00", 29.0),  # Golden Week: 4/29, 5/3-6 off
        ("2025-12-26 17:00", "2026-01-05 10:00", 38.0),  # only 1/1 is a public holiday
        ("2025-02-10 17:00", "2025-02-12 10:00", 2.0),  # 2/11 National Foundation Day
    ],
)
def test_business_hours_between(start: str, end: str, hours: float) -> None:
    assert CALENDAR.business_seconds(jst(start), jst(end)) == hours * H
    assert CALENDAR.business_seconds(jst(end), jst(start)) == -hours * H


@pytest.mark.parametrize(
    ("start", "amount", "deadline"),
    [
        ("2025-03-10 10:00", timedelta(hours=1), "2025-03-10 11:00"),
        ("2025-03-10 17:30", timedelta(hours=1), "2025-03-11 09:30"),
        ("2025-03-07 17:30", timedelta(hours=1), "2025-03-10 09:30"),  # over the weekend
        ("2025-03-08 11:00", timedelta(hours=1), "2025-03-10 10:00"),  # from a Saturday
        ("2025-03-10 15:00", timedelta(hours=9), "2025-03-11 15:00"),  # one business day
        ("2025-03-10 09:00", timedelta(hours=9), "2025-03-10 18:00"),  # ends at closing
        ("2025-03-14 20:00", timedelta(hours=9), "2025-03-17 18:00"),
        ("2025-05-02 17:00", timedelta(hours=2), "2025-05-07 10:00"),  # Golden Week
    ],
)
def test_add_business_time(start: str, amount: timedelta, deadline: str) -> None:
    assert CALENDAR.add_business_time(jst(start), amount) == jst(deadline)


def test_business_days_and_hours_helpers() -> None:
    assert CALENDAR.add_business_days(jst("2025-03-10 15:00"), 1) == jst("2025-03-11 15:00")
    assert CALENDAR.add_business_hours(jst("2025-03-10 17:00"), 2) == jst("2025-03-11 10:00")
    assert CALENDAR.next_business_day(date(2025, 5, 2)) == date(2025, 5, 7)
    assert CALENDAR.business_days_between(date(2025, 5, 1), date(2025, 5, 8)) == 3
    assert CALENDAR.day_length == timedelta(hours=9)


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2025, 3, 10), True),
        (date(2025, 3, 8), False),  # Saturday
        (date(2025, 3, 20), False),  # Vernal Equinox Day
        (date(2025, 1, 13), False),  # Coming of Age Day
        (date(2031, 11, 3), False),  # Culture Day, far from the preloaded years
        (date(1999, 1, 1), False),  # and far before
        (date(1999, 1, 4), True),
    ],
)
def test_japanese_holidays(day: date, working: bool) -> None:
    assert CALENDAR.is_business_day(day) is working


def test_timezones_are_converted_before_counting() -> None:
    # 01:00–10:00 UTC is 10:00–19:00 in Tokyo (8 working hours) and Sunday night to Monday
    # 06:00 in New York (none); 13:00–16:00 UTC is 09:00–12:00 in New York (EDT since 3/9).
    ny = BusinessCalendar("America/New_York", holidays="US")
    morning = (datetime(2025, 3, 10, 1, tzinfo=UTC), datetime(2025, 3, 10, 10, tzinfo=UTC))
    evening = (datetime(2025, 3, 10, 13, tzinfo=UTC), datetime(2025, 3, 10, 16, tzinfo=UTC))
    assert CALENDAR.business_seconds(*morning) == 8 * H
    assert ny.business_seconds(*morning) == 0
    assert CALENDAR.business_seconds(*evening) == 0
    assert ny.business_seconds(*evening) == 3 * H
    # The working day after the DST switch is a normal 9 hours.
    monday = datetime(2025, 3, 10, 9, 0, tzinfo=ZoneInfo("America/New_York"))
    assert ny.business_seconds(monday - timedelta(days=3), monday) == 9 * H


def test_from_config_and_company_days_off() -> None:
    cfg = CalendarConfig(
        timezone="Europe/London",
        workday_start=time(8, 30),
        workday_end=time(17, 0),
        workdays=("mon", "tue", "wed", "thu"),
        holidays=None,
        extra_holidays=["2025-03-11"],
    )
    cal = BusinessCalendar.from_config(cfg)
    london = ZoneInfo("Europe/London")
    start = datetime(2025, 3, 10, 16, 0, tzinfo=london)
    # Monday 16:00 → Thursday 09:30: Tuesday is a company day off, Friday is not a workday.
    assert cal.business_seconds(start, datetime(2025, 3, 13, 9, 30, tzinfo=london)) == 10.5 * H
    assert cal.add_business_time(start, timedelta(hours=2)) == datetime(
        2025, 3, 12, 9, 30, tzinfo=london
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"holidays": "XX"}, "unknown holiday country"),
        ({"workdays": ()}, "at least one working weekday"),
        ({"workday_start": time(18), "workday_end": time(9)}, "after workday_start"),
        ({"extra_holidays": ["2025-02-30"]}, "day is out of range"),
    ],
)
def test_bad_calendar(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BusinessCalendar(**kwargs)  # type: ignore[arg-type]


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        CALENDAR.business_seconds(datetime(2025, 3, 10), jst("2025-03-11 10:00"))


# ---- properties -------------------------------------------------------------------------

CALENDARS = {
    "tokyo": BusinessCalendar(),
    "new_york": BusinessCalendar("America/New_York", holidays="US"),
    "london_short_week": BusinessCalendar(
        "Europe/London", time(8), time(16, 30), ("mon", "tue", "wed", "thu"), "GB"
    ),
}

instants = st.datetimes(
    min_value=datetime(2023, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=0))


def reference_seconds(cal: BusinessCalendar, start: datetime, end: datetime) -> float:
    """Business seconds counted the slow way: each local day's working window, in UTC."""
    total = 0.0
    day = start.astimezone(cal.tz).date() - timedelta(days=1)
    while day <= end.astimezone(cal.tz).date() + timedelta(days=1):
        if cal.is_business_day(day):
            ws = cal.localize(datetime.combine(day, cal_start(cal))).astimezone(UTC)
            we = ws + cal.day_length
            lo, hi = max(ws, start), min(we, end)
            if hi > lo:
                total += (hi - lo).total_seconds()
        day += timedelta(days=1)
    return total


def cal_start(cal: BusinessCalendar) -> time:
    seconds = cal._start  # the one private read: the oracle needs the opening time
    return time(seconds // 3600, seconds % 3600 // 60)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(CALENDARS)), instants, instants)
def test_matches_a_day_by_day_count(name: str, a: datetime, b: datetime) -> None:
    cal = CALENDARS[name]
    start, end = min(a, b), max(a, b)
    assert abs(cal.business_seconds(start, end) - reference_seconds(cal, start, end)) < 1e-6


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(sorted(CALENDARS)),
    instants,
    st.integers(min_value=1, max_value=60 * 9 * 30).map(lambda m: timedelta(minutes=m)),
)
def test_adding_then_measuring_gives_the_amount_back(
    name: str, start: datetime, amount: timedelta
) -> None:
    cal = CALENDARS[name]
    deadline = cal.add_business_time(start, amount)
    assert deadline > start
    assert cal.business_duration(start, deadline) == amount
    # and it is the earliest such instant: a minute earlier, the amount is not reached yet
    assert cal.business_duration(start, deadline - timedelta(minutes=1)) < amount


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(CALENDARS)), instants, instants, instants)
def test_business_time_adds_up_and_never_outruns_the_clock(
    name: str, a: datetime, b: datetime, c: datetime
) -> None:
    cal = CALENDARS[name]
    x, y, z = sorted((a, b, c))
    xy, yz, xz = (
        cal.business_seconds(x, y),
        cal.business_seconds(y, z),
        cal.business_seconds(x, z),
    )
    assert abs(xy + yz - xz) < 1e-6
    assert 0 <= xz <= (z - x).total_seconds()
