"""The KPI book a process works with and the company's periods.

The book (the validated ``kpis:`` files of the config) is read once per config and kept."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from tasuki.catalog import catalog
from tasuki.kpis.periods import period_of
from tasuki.kpis.schema import KpiBook, load_kpibook
from tasuki.settings import Settings

_books: dict[tuple[tuple[str, ...], str], KpiBook] = {}


def book(settings: Settings) -> KpiBook:
    """The validated KPI book named in the config (read once per config; ConfigError if bad)."""
    cfg = settings.config
    key = (tuple(str(p) for p in settings.kpi_paths), cfg.model_dump_json())
    if key not in _books:
        boundaries: dict[str, str | None] = {b.id: b.object for b in cfg.boundaries}
        _books[key] = load_kpibook(
            list(settings.kpi_paths), catalog(cfg), boundaries, related=cfg.related
        )
    return _books[key]


def company_tz(settings: Settings) -> ZoneInfo:
    """The company's timezone: periods and days are counted in it."""
    return ZoneInfo(settings.config.calendar.timezone)


def current_period(settings: Settings, day: date | None = None) -> str:
    """The book's period containing ``day`` (default: now) in the company's timezone."""
    b = book(settings)
    tz = company_tz(settings)
    at = datetime.now(UTC) if day is None else noon(day, tz)
    return period_of(at, b.period, b.fiscal_year_start, tz)


def noon(day: date, tz: ZoneInfo) -> datetime:
    """Noon of ``day`` in ``tz``: an instant safely inside that local day."""
    return datetime(day.year, day.month, day.day, 12, tzinfo=tz)
