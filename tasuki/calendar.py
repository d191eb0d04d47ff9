"""The company's business calendar: business time between two instants, and deadlines.

SLAs at a boundary ("IS first touch within 1 business hour of the MQL") are counted in working
time only: working hours on working days in the company's timezone, minus public holidays
(from the maintained ``holidays`` package, Japan by default) and the company's own days off.

A *business day* is one working day's worth of working time (``workday_end - workday_start``,
9 hours by default), so "1 business day" after Monday 15:00 is Tuesday 15:00, and after Friday
20:00 it is Monday 18:00.

Working hours are wall-clock times of the company's timezone. Arithmetic is done on the local
wall clock inside a working day, which is exact as long as no DST transition falls inside the
working hours (true of every real timezone with sensible working hours).

Rule evaluation calls :meth:`BusinessCalendar.business_seconds` for every SLA of every handoff,
so the holiday lookups are precomputed into per-day flags and cumulative counts, a year at a time.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import holidays as holidays_pkg

if TYPE_CHECKING:
    from tasuki.settings import CalendarConfig

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Weekday names as written in ``tasuki.yaml``, Monday first (``date.weekday()`` order)."""

_DAY = 86_400
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _fixed_offset(tz: tzinfo) -> int | None:
    """The zone's UTC offset in seconds when it has had one offset since 1980 (Asia/Tokyo)."""
    seen = {
        tz.utcoffset(datetime(year, month, 1, 12))
        for year in range(1980, 2101)
        for month in (1, 4, 7, 10)
    }
    if len(seen) != 1:
        return None
    (only,) = seen
    if only is None:
        return None
    return int(only.total_seconds())


def _seconds_of(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


class BusinessCalendar:
    """Working hours, working days and holidays of one company, with business-time arithmetic.

    All instants given must be timezone-aware; instants returned are in the calendar's timezone.
    """

    def __init__(
        self,
        timezone: str = "Asia/Tokyo",
        workday_start: time = time(9, 0),
        workday_end: time = time(18, 0),
        workdays: Iterable[str] = ("mon", "tue", "wed", "thu", "fri"),
        holidays: str | None = "JP",
        extra_holidays: Iterable[date | str] = (),
    ) -> None:
        self.tz: tzinfo = ZoneInfo(timezone)
        self._offsets: dict[float, int] = {}
        self._date_ts: dict[str, float] = {}
        self._fixed_offset = _fixed_offset(self.tz)
        self.timezone = timezone
        self._start = _seconds_of(workday_start)
        self._end = _seconds_of(workday_end)
        if self._end <= self._start:
            raise ValueError("workday_end must be after workday_start")
        self._workdays = frozenset(WEEKDAYS.index(d) for d in workdays)
        if not self._workdays:
            raise ValueError("a business calendar needs at least one working weekday")
        self.country = holidays
        self._extra: frozenset[date] = frozenset(
            d if isinstance(d, date) else date.fromisoformat(d) for d in extra_holidays
        )
        if holidays is not None:
            self._country_holidays(2000)  # fail now on an unknown country code, not mid-run
        # Day flags and cumulative working-day counts over [_base, _base + len(_flags)).
        # Start with the years around today; any other year is filled in when first asked for.
        this_year = date.today().year
        self._base = date(this_year - 2, 1, 1).toordinal()
        self._flags = bytearray()
        self._cum: list[int] = [0]
        # Local day number since 1970-01-01 → (1 if working else 0, working days before it):
        # the hot path looks days up by the float its arithmetic yields (19000.0 == 19000).
        self._days: dict[float, tuple[int, int]] = {}
        self._fill(self._base, date(this_year + 2, 12, 31).toordinal())

    @classmethod
    def from_config(cls, cfg: CalendarConfig) -> BusinessCalendar:
        """The calendar described by the ``calendar:`` block of ``tasuki.yaml``.

        Raises :class:`ValueError` for an unknown holiday country or a malformed extra holiday.
        """
        return cls(
            timezone=cfg.timezone,
            workday_start=cfg.workday_start,
            workday_end=cfg.workday_end,
            workdays=cfg.workdays,
            holidays=cfg.holidays,
            extra_holidays=cfg.extra_holidays,
        )

    # ---- days -------------------------------------------------------------------------------

    def _country_holidays(self, year: int) -> set[date]:
        assert self.country is not None
        try:
            found = holidays_pkg.country_holidays(self.country, years=year)
        except NotImplementedError as exc:
            raise ValueError(f"unknown holiday country {self.country!r}") from exc
        return set(found.keys())

    def _ensure(self, first: int, last: int) -> None:
        """Make day flags cover ordinals ``first..last``, extending a whole year at a time."""
        if first < self._base:
            start = date(date.fromordinal(first).year, 1, 1).toordinal()
            end = self._base + len(self._flags) - 1
            self._base, self._flags, self._cum, self._days = start, bytearray(), [0], {}
            self._fill(start, max(end, last))
            return
        have_last = self._base + len(self._flags) - 1
        if last > have_last:
            self._fill(have_last + 1, date(date.fromordinal(last).year, 12, 31).toordinal())

    def _fill(self, first: int, last: int) -> None:
        off: set[date] = set(self._extra)
        if self.country is not None:
            for year in range(date.fromordinal(first).year, date.fromordinal(last).year + 1):
                off |= self._country_holidays(year)
        for o in range(first, last + 1):
            d = date.fromordinal(o)
            working = d.weekday() in self._workdays and d not in off
            self._days[o - _EPOCH_ORDINAL] = (int(working), self._cum[-1])
            self._flags.append(1 if working else 0)
            self._cum.append(self._cum[-1] + working)

    def is_business_day(self, day: date) -> bool:
        """True when ``day`` is a working weekday and not a public or company holiday."""
        o = day.toordinal()
        i = o - self._base
        if i < 0 or i >= len(self._flags):
            self._ensure(o, o)
            i = o - self._base
        return bool(self._flags[i])

    def _days_before(self, o: int) -> int:
        """Working days in ``[_base, o)``; ``o`` must be covered by the flags (or one past)."""
        return self._cum[o - self._base]

    def business_days_between(self, first: date, last: date) -> int:
        """Working days ``d`` with ``first <= d < last`` (0 when ``last <= first``)."""
        a, b = first.toordinal(), last.toordinal()
        if b <= a:
            return 0
        self._ensure(a, b)
        return self._days_before(b) - self._days_before(a)

    def next_business_day(self, day: date, n: int = 1) -> date:
        """The ``n``-th working day after ``day`` (``n >= 1``)."""
        o = day.toordinal()
        self._ensure(o, o + 366)
        target = self._days_before(o + 1) + n
        while target > self._cum[-1]:
            self._ensure(o, self._base + len(self._flags) + 366)
        # _cum[k] counts working days before ordinal _base + k; find the first k reaching target.
        k = bisect.bisect_left(self._cum, target)
        return date.fromordinal(self._base + k - 1)

    # ---- time -------------------------------------------------------------------------------

    @property
    def day_length(self) -> timedelta:
        """Working time in one business day."""
        return timedelta(seconds=self._end - self._start)

    @property
    def day_seconds(self) -> int:
        """Working seconds in one business day."""
        return self._end - self._start

    def localize(self, naive: datetime) -> datetime:
        """A naive wall-clock datetime read as the calendar's local time."""
        return naive.replace(tzinfo=self.tz)

    def _offset(self, ts: float) -> int:
        """UTC offset in seconds at epoch second ``ts``, cached per quarter hour.

        Every real UTC offset, hence every transition, falls on a quarter hour, so one
        lookup per 15-minute bucket is exact; it spares a zoneinfo conversion per instant.
        """
        bucket = ts // 900.0
        off = self._offsets.get(bucket)
        if off is None:
            delta = datetime.fromtimestamp(bucket * 900, self.tz).utcoffset()
            off = int(delta.total_seconds()) if delta is not None else 0
            self._offsets[bucket] = off
        return off

    def date_timestamp(self, text: str) -> float:
        """Epoch seconds of local midnight of an ISO date ``YYYY-MM-DD`` (cached: dates repeat)."""
        ts = self._date_ts.get(text)
        if ts is None:
            midnight = datetime.combine(date.fromisoformat(text), time())
            ts = self.naive_timestamp(midnight)
            if len(self._date_ts) < 100_000:
                self._date_ts[text] = ts
        return ts

    def naive_timestamp(self, naive: datetime) -> float:
        """Epoch seconds of a naive wall-clock time read in the calendar's timezone."""
        if self._fixed_offset is not None:
            return naive.replace(tzinfo=UTC).timestamp() - self._fixed_offset
        return naive.replace(tzinfo=self.tz).timestamp()

    def local_day(self, ts: float) -> int:
        """The local calendar day (a date ordinal) of epoch second ``ts``."""
        off = self._fixed_offset
        return int((ts + (off if off is not None else self._offset(ts))) // _DAY) + _EPOCH_ORDINAL

    def _local(self, at: datetime) -> tuple[int, float]:
        if at.tzinfo is None:
            raise ValueError("naive datetime given to the business calendar")
        return self._split(at.timestamp())

    def _split(self, ts: float) -> tuple[int, float]:
        local = ts + self._offset(ts)
        days = local // _DAY
        return int(days) + _EPOCH_ORDINAL, local - days * _DAY

    def business_seconds(self, start: datetime, end: datetime) -> float:
        """Working seconds between two instants; negative when ``end`` is before ``start``."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("naive datetime given to the business calendar")
        return self.business_seconds_between(start.timestamp(), end.timestamp())

    def business_seconds_between(self, start: float, end: float) -> float:
        """:meth:`business_seconds` for epoch seconds (the fast path rule checks use)."""
        if end < start:
            return -self.business_seconds_between(end, start)
        # Written out flat, with operators rather than builtins (min, max, int, divmod cost
        # more than the arithmetic): this runs for every SLA of every handoff.
        fixed = self._fixed_offset
        if fixed is not None:
            ls, le = start + fixed, end + fixed
        else:
            ls, le = start + self._offset(start), end + self._offset(end)
        sd = ls // 86_400.0
        ed = le // 86_400.0
        days = self._days
        a = days.get(sd)
        b = days.get(ed)
        if a is None or b is None:
            self._ensure(int(sd) + _EPOCH_ORDINAL, int(ed) + _EPOCH_ORDINAL + 1)
            return self.business_seconds_between(start, end)
        ss = ls - sd * 86_400.0
        es = le - ed * 86_400.0
        ws, we = self._start, self._end
        if sd == ed:
            if not a[0]:
                return 0.0
            lo = ss if ss > ws else ws
            hi = es if es < we else we
            return hi - lo if hi > lo else 0.0
        total = 0.0
        if a[0] and ss < we:
            total += we - (ss if ss > ws else ws)
        if b[0] and es > ws:
            total += (es if es < we else we) - ws
        # Working days strictly between the two: counted before ed, minus those up to sd.
        return total + (b[1] - a[1] - a[0]) * (we - ws)

    def business_duration(self, start: datetime, end: datetime) -> timedelta:
        """Working time between two instants (negative when ``end`` is before ``start``)."""
        return timedelta(seconds=self.business_seconds(start, end))

    def _at(self, ordinal: int, seconds: float) -> datetime:
        midnight = datetime.combine(date.fromordinal(ordinal), time())
        return (midnight + timedelta(seconds=seconds)).replace(tzinfo=self.tz)

    def add_business_time(self, start: datetime, amount: timedelta) -> datetime:
        """The earliest instant ``t`` with ``business_duration(start, t) == amount``.

        ``amount`` must not be negative. When the amount runs out exactly at the end of a working
        day, that end is returned (not the next morning, which is the same business instant).
        """
        left = amount.total_seconds()
        if left < 0:
            raise ValueError("cannot add a negative business time")
        o, sec = self._local(start)
        ws, we = self._start, self._end
        if left == 0:
            return start.astimezone(self.tz)
        if self.is_business_day(date.fromordinal(o)) and sec < we:
            begin = max(sec, ws)
            if left <= we - begin:
                return self._at(o, begin + left)
            left -= we - begin
        length = we - ws
        full, rest = divmod(left, length)
        if rest == 0:
            day = self.next_business_day(date.fromordinal(o), int(full))
            return self._at(day.toordinal(), we)
        day = self.next_business_day(date.fromordinal(o), int(full) + 1)
        return self._at(day.toordinal(), ws + rest)

    def add_business_hours(self, start: datetime, hours: float) -> datetime:
        """The instant ``hours`` working hours after ``start``."""
        return self.add_business_time(start, timedelta(hours=hours))

    def add_business_days(self, start: datetime, days: float) -> datetime:
        """The instant ``days`` business days (each one working day long) after ``start``."""
        return self.add_business_time(start, self.day_length * days)

    def __repr__(self) -> str:
        return (
            f"BusinessCalendar({self.timezone!r}, holidays={self.country!r}, "
            f"{self._start // 3600:02d}:{self._start % 3600 // 60:02d}–"
            f"{self._end // 3600:02d}:{self._end % 3600 // 60:02d})"
        )
