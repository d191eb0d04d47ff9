"""Each person's own and neighbour figures against target, and one weighted attainment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from tasuki.kpis.books import book, company_tz
from tasuki.kpis.engine import (
    Subjects,
    target_for,
)
from tasuki.kpis.periods import bounds, declared
from tasuki.kpis.schema import Kpi, KpiKind
from tasuki.settings import Settings
from tasuki.store.db import Store
from tasuki.store.models import KpiValue, Person

ATTAINMENT_CAP = 1.5
"""One KPI far over target cannot hide another far under it."""


@dataclass(frozen=True)
class KpiFigure:
    """One KPI of one person: actual, target and attainment (capped at ``ATTAINMENT_CAP``)."""

    kpi_id: str
    label: str
    value: float | None
    target: float | None
    attainment: float | None
    is_rate: bool = False
    period: str = ""
    weight: float = 1.0

    def shown(self, x: float | None) -> str:
        """A value of this KPI as people read it: rates in %, amounts with separators."""
        if x is None:
            return "–"
        if self.is_rate:
            return f"{x:.0%}"
        return f"{x:,.0f}" if abs(x) >= 100 or x == int(x) else f"{x:,.1f}"


@dataclass(frozen=True)
class PersonKpis:
    """A person's own and neighbour KPIs and the weighted attainment of both."""

    person_id: str
    name: str
    department: str
    own: list[KpiFigure]
    neighbour: list[KpiFigure]
    attainment: float | None


def no_events(kpi: Kpi) -> float | None:
    """A person's figure when nothing was counted: zero for counts and sums, unknown (``None``)
    for rates and durations."""
    return None if kpi.is_ratio or kpi.kind == KpiKind.DURATION else 0.0


def capped_attainment(kpi: Kpi, value: float | None, target: float | None) -> float | None:
    """Value against target (target over value when lower is better), at most
    :data:`ATTAINMENT_CAP`; unknown without a value or a target."""
    if value is None or not target:
        return None
    if kpi.lower_is_better:
        ratio = target / value if value > 0 else ATTAINMENT_CAP
    else:
        ratio = value / target
    return min(ratio, ATTAINMENT_CAP)


def _weighted(figs: Sequence[KpiFigure]) -> float | None:
    known = [(f.weight, f.attainment) for f in figs if f.attainment is not None and f.weight > 0]
    total = sum(w for w, _ in known)
    return sum(w * a for w, a in known if a is not None) / total if total else None


def person_summary(
    store: Store, settings: Settings, period: str, now: datetime | None = None
) -> list[PersonKpis]:
    """Every person whose department in ``period`` (at its end, or now while it runs) has a
    goal, in funnel order then by name.

    Each KPI is read for ``period`` whole (the period of its own kind containing ``period`` when
    that is longer). A count or sum with
    no events is 0; a rate with none is unknown (``None``) and leaves the attainment out.
    Attainment = the part weights (own, neighbour) over the KPI-weighted means of each part,
    over the parts that have a figure."""
    b = book(settings)
    tz = company_tz(settings)
    system = settings.config.crm
    kpi_period = {
        k.id: declared(period, b.period_kind(k), b.fiscal_year_start, tz) for k in b.kpis.values()
    }
    with store.session() as session:
        values = {
            (v.kpi_id, v.subject_id, v.period): (v.value, v.target)
            for v in session.scalars(
                select(KpiValue).where(
                    KpiValue.system == system,
                    KpiValue.period.in_(set(kpi_period.values())),
                    KpiValue.subject_kind == "person",
                )
            )
        }
        names = dict(
            session.execute(
                select(Person.user_id, Person.name).where(Person.system == system)
            ).all()
        )
        subjects = Subjects.load(session, system)
    _, end = bounds(period, b.fiscal_year_start, tz)
    counted_at = min(end - timedelta(microseconds=1), now or datetime.now(UTC))
    members = subjects.people_in(counted_at)
    order = {d: i for i, d in enumerate(("MK", "IS", "FS", "CS"))}
    out = []
    for uid, (dept, _team) in sorted(
        members.items(), key=lambda m: (order.get(m[1][0] or "", 9), names.get(m[0], ""), m[0])
    ):
        goal = b.goals.get(dept or "")
        if goal is None:
            continue
        parts: list[list[KpiFigure]] = []
        for items in (goal.own, goal.neighbour):
            figs = []
            for kpi_id, item in items.items():
                kpi = b.kpis[kpi_id]
                value, stored_target = values.get((kpi_id, uid, kpi_period[kpi_id]), (None, None))
                if value is None:
                    value = no_events(kpi)
                # The stored target: a closed period keeps the one it was computed with.
                target = stored_target or target_for(
                    b, kpi_id, "person", uid, subjects, counted_at, kpi_period[kpi_id]
                )
                figs.append(
                    KpiFigure(
                        kpi_id,
                        kpi.label,
                        value,
                        target,
                        capped_attainment(kpi, value, target),
                        kpi.is_ratio,
                        kpi_period[kpi_id],
                        item.weight,
                    )
                )
            parts.append(figs)
        own, neighbour = parts
        weighted = [
            (goal.weights.own, _weighted(own)),
            (goal.weights.neighbour, _weighted(neighbour)),
        ]
        known = [(w, a) for w, a in weighted if a is not None and w > 0]
        total_w = sum(w for w, _ in known)
        attainment = sum(w * a for w, a in known if a is not None) / total_w if total_w else None
        out.append(PersonKpis(uid, names.get(uid, ""), dept or "", own, neighbour, attainment))
    return out
