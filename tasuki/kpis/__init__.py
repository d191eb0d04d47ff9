"""Cross-department KPIs: each person's goal = own department's KPI + the neighbour's.

``compute`` keeps ``kpi_values`` up to date, ``person_summary`` gives each person's own and
neighbour figures against target with one attainment, ``desired_values`` turns them into CRM
user fields for the single write-back path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from tasuki.catalog import catalog
from tasuki.kpis.engine import compute_period
from tasuki.kpis.periods import period_of, previous
from tasuki.kpis.schema import KpiBook, load_kpibook
from tasuki.settings import Settings
from tasuki.store.db import Store
from tasuki.store.models import KpiValue, Person
from tasuki.writeback import DesiredValue

__all__ = [
    "KpiBook",
    "PersonKpis",
    "compute",
    "current_period",
    "desired_values",
    "load_kpibook",
    "person_summary",
]

ATTAINMENT_CAP = 1.5
"""One KPI far over target cannot hide another far under it."""


_books: dict[tuple[tuple[str, ...], int], KpiBook] = {}


def book(settings: Settings) -> KpiBook:
    """The validated KPI book named in the config (read once per config)."""
    cfg = settings.config
    key = (tuple(str(p) for p in settings.kpi_paths), id(cfg))
    if key not in _books:
        boundaries = [b.id for b in cfg.boundaries]
        _books[key] = load_kpibook(list(settings.kpi_paths), catalog(cfg), boundaries)
    return _books[key]


def current_period(settings: Settings, day: date | None = None) -> str:
    """The period containing ``day`` (default: now) in the company's timezone."""
    b = book(settings)
    tz = ZoneInfo(settings.config.calendar.timezone)
    at = datetime.now(UTC) if day is None else datetime(day.year, day.month, day.day, 12, tzinfo=tz)
    return period_of(at, b.period, b.fiscal_year_start, tz)


def compute(
    store: Store, settings: Settings, *, now: datetime, periods: Sequence[str] | None = None
) -> int:
    """Recompute the given periods (default: the current one and the one before, which late
    changes still touch); returns how many stored values changed."""
    b = book(settings)
    tz = ZoneInfo(settings.config.calendar.timezone)
    if periods is None:
        current = period_of(now, b.period, b.fiscal_year_start, tz)
        periods = [previous(current, b.period, b.fiscal_year_start, tz), current]
    changed = 0
    with store.session() as session:
        for period in periods:
            changed += compute_period(session, settings.config, settings.config.crm, b, period)
    return changed


@dataclass(frozen=True)
class KpiFigure:
    """One KPI of one person: actual, target and attainment (actual / target, capped)."""

    kpi_id: str
    label: str
    value: float | None
    target: float
    attainment: float | None
    is_rate: bool = False

    def shown(self, x: float | None) -> str:
        """A value of this KPI as people read it: rates in %, amounts with separators."""
        if x is None:
            return "–"
        return f"{x:.0%}" if self.is_rate else f"{x:,.0f}"


@dataclass(frozen=True)
class PersonKpis:
    """A person's own and neighbour KPIs and the weighted attainment of both."""

    person_id: str
    name: str
    department: str
    own: list[KpiFigure]
    neighbour: list[KpiFigure]
    attainment: float | None


def _mean(xs: Sequence[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return sum(vals) / len(vals) if vals else None


def person_summary(store: Store, settings: Settings, period: str) -> list[PersonKpis]:
    """Every person of a department with a goal, in funnel order then by name."""
    b = book(settings)
    system = settings.config.crm
    out = []
    with store.session() as session:
        values = {
            (v.kpi_id, v.subject_id): v.value
            for v in session.scalars(
                select(KpiValue).where(
                    KpiValue.system == system,
                    KpiValue.period == period,
                    KpiValue.subject_kind == "person",
                )
            )
        }
        people = session.scalars(select(Person).where(Person.system == system)).all()
    order = {d: i for i, d in enumerate(("MK", "IS", "FS", "CS"))}
    for p in sorted(people, key=lambda p: (order.get(p.department or "", 9), p.name)):
        goal = b.goals.get(p.department or "")
        if goal is None:
            continue

        def figs(targets: dict[str, float], person: Person = p) -> list[KpiFigure]:
            out_figs = []
            for kpi_id, target in targets.items():
                kpi = b.kpis[kpi_id]
                value = values.get((kpi_id, person.user_id))
                if value is None and kpi.kind != "rate":
                    value = 0.0  # nothing handed over: zero, not unknown
                att = None if value is None or not target else min(value / target, ATTAINMENT_CAP)
                out_figs.append(
                    KpiFigure(kpi_id, kpi.label, value, target, att, kpi.kind == "rate")
                )
            return out_figs

        own, neighbour = figs(goal.own), figs(goal.neighbour)
        parts = [
            (goal.weights.own, _mean([f.attainment for f in own])),
            (goal.weights.neighbour, _mean([f.attainment for f in neighbour])),
        ]
        known = [(w, a) for w, a in parts if a is not None and w > 0]
        total_w = sum(w for w, _ in known)
        attainment = sum(w * a for w, a in known) / total_w if total_w else None
        out.append(PersonKpis(p.user_id, p.name, p.department or "", own, neighbour, attainment))
    return out


def _text(figs: Sequence[KpiFigure]) -> str:
    return "; ".join(f"{f.label}: {f.shown(f.value)} / {f.shown(f.target)}" for f in figs)


def desired_values(store: Store, settings: Settings, period: str) -> list[DesiredValue]:
    """Each person's KPI fields (own, neighbour, attainment %) for the CRM user record."""
    fields = settings.config.writeback.kpi
    mapped = set(settings.config.fields("user")) if "user" in settings.config.objects else set()
    out = []
    for p in person_summary(store, settings, period):
        pairs: list[tuple[str | None, str | int | None]] = [
            (fields.own, f"{period} {_text(p.own)}"),
            (fields.neighbour, f"{period} {_text(p.neighbour)}"),
            (fields.attainment, None if p.attainment is None else round(100 * p.attainment)),
        ]
        for name, value in pairs:
            if name and name in mapped:
                out.append(DesiredValue("user", p.person_id, name, value))
    return out
