"""The periods the console shows: which one a request asked for, the last closed one, the
current one (month to date, with its pace) and the twelve before it for trends."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from tasuki.kpis.periods import PeriodKind, bounds, kind_of, period_of, previous

TREND_PERIODS = 12
"""Periods in a trend chart, the chosen one last."""


class UnknownPeriod(ValueError):
    """A period name that is not ``2026-11``, ``FY2026-Q3`` or ``FY2026``, or one in the future."""


@dataclass(frozen=True)
class Period:
    """One period as the console shows it: its name, [start, end) in UTC, and how much of it
    has passed (1.0 for a closed period; the share elapsed for the current one)."""

    name: str
    kind: PeriodKind
    start: datetime
    end: datetime
    elapsed: float

    @property
    def closed(self) -> bool:
        """True once the period has ended: its figures no longer change."""
        return self.elapsed >= 1.0

    def pace(self, so_far: float) -> float | None:
        """What ``so_far`` would come to by the period's end at the same rate (``None`` before
        any of it has passed)."""
        if self.elapsed <= 0:
            return None
        return so_far / self.elapsed


def resolve(
    name: str | None, fy_start: int, tz: ZoneInfo, default_kind: str, now: datetime | None = None
) -> Period:
    """The period ``name`` names (default: the last closed period of ``default_kind``).

    Raises :class:`UnknownPeriod` for a malformed name or a period that has not started yet.
    """
    now = now or datetime.now(UTC)
    if not name:
        current = period_of(now, default_kind, fy_start, tz)
        name = previous(current, default_kind, fy_start, tz)
    try:
        kind = kind_of(name)
        start, end = bounds(name, fy_start, tz)
    except ValueError as exc:
        raise UnknownPeriod(str(exc)) from exc
    if start > now:
        raise UnknownPeriod(f"{name} has not started yet")
    span = (end - start).total_seconds()
    elapsed = min(1.0, (now - start).total_seconds() / span)
    return Period(name, kind, start, end, elapsed)


def current(fy_start: int, tz: ZoneInfo, kind: str, now: datetime | None = None) -> Period:
    """The period of ``kind`` now runs in (its ``elapsed`` below 1)."""
    now = now or datetime.now(UTC)
    return resolve(period_of(now, kind, fy_start, tz), fy_start, tz, kind, now)


def trailing(
    period: Period, fy_start: int, tz: ZoneInfo, now: datetime | None = None
) -> list[Period]:
    """The :data:`TREND_PERIODS` periods of ``period``'s kind ending with it, oldest first."""
    names = [period.name]
    for _ in range(TREND_PERIODS - 1):
        names.append(previous(names[-1], period.kind, fy_start, tz))
    return [resolve(n, fy_start, tz, period.kind, now) for n in reversed(names)]
