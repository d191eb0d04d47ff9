"""The KPI book a process works with and the company's periods.

The book (the validated ``kpis:`` files of the config) is a pure function of the files and the
config; :func:`book` memoises it by the files' size and modification time (a ``stat`` each) and
the config, so an edited file is read again on the next call and nobody clears a cache."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from tasuki.catalog import catalog
from tasuki.kpis.periods import period_of
from tasuki.kpis.schema import KpiBook, load_kpibook
from tasuki.settings import Settings
from tasuki.yamlsource import Stamps, file_stamps

_Key = tuple[Stamps, str]
_read: dict[_Key, KpiBook] = {}
"""Books read, by their files' stamps (paths included) and the config's JSON: a memo of a pure
function (an edited file has new stamps and is read again), at most :data:`_KEPT` of them."""
_KEPT = 16


def book(settings: Settings) -> KpiBook:
    """The validated KPI book named in the config (ConfigError if bad), read again only when a
    file or the config changed."""
    cfg = settings.config
    key = (file_stamps(settings.kpi_paths), cfg.model_dump_json())
    found = _read.get(key)
    if found is None:
        boundaries: dict[str, str | None] = {b.id: b.object for b in cfg.boundaries}
        found = load_kpibook(
            list(settings.kpi_paths), catalog(cfg), boundaries, related=cfg.related
        )
        if len(_read) >= _KEPT:
            _read.clear()
        _read[key] = found
    return found


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
