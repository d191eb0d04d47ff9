"""The KPI book a process works with and the company's periods.

The book (the validated ``kpis:`` files of the config) is a pure function of the files and the
config. :func:`book` keeps it on the settings that name those files
(:class:`~tasuki.yamlsource.KeptReads`), read again when a file's stamps move: an edited file is
read on the next call, nobody clears a cache, and no module holds one. A runtime keeps the book
its jobs use and watches the files for changes (:meth:`tasuki.runtime.Runtime.refresh`)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from tasuki.catalog import catalog
from tasuki.kpis.periods import period_of
from tasuki.kpis.schema import KpiBook, load_kpibook
from tasuki.settings import Settings


def read_book(settings: Settings) -> KpiBook:
    """Read and validate the KPI book named in the config now (ConfigError if bad)."""
    cfg = settings.config
    boundaries: dict[str, str | None] = {b.id: b.object for b in cfg.boundaries}
    return load_kpibook(list(settings.kpi_paths), catalog(cfg), boundaries, related=cfg.related)


def book(settings: Settings) -> KpiBook:
    """The validated KPI book named in the config (ConfigError if bad), read again only when a
    file changed."""
    return settings.kept.get("kpis", settings.kpi_paths, lambda: read_book(settings))


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
