"""The people page's tables: each person's KPIs as rows, and teams' and departments' figures
read from the stored ``kpi_values``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from tasuki.kpis.books import book, company_tz
from tasuki.kpis.engine import Subjects, target_for
from tasuki.kpis.periods import bounds, containing
from tasuki.kpis.summary import PersonKpis, capped_attainment
from tasuki.settings import Settings
from tasuki.store.db import Store
from tasuki.store.models import KpiValue

FUNNEL_ORDER = ("MK", "IS", "FS", "CS")


@dataclass(frozen=True)
class GroupFigure:
    """One KPI of one team or department against its target."""

    kind: str
    """``team`` or ``department``."""
    subject: str
    kpi_id: str
    label: str
    part: str
    """``own`` or ``neighbour`` for the department whose goal names the KPI."""
    period: str
    value: float | None
    target: float | None
    attainment: float | None
    is_rate: bool


def person_rows(summary: Sequence[PersonKpis]) -> list[tuple[object, ...]]:
    """Each person's KPIs, one row per KPI, for the CSV."""
    return [
        (
            f.period,
            p.name,
            p.department,
            part,
            f.label,
            f.period,
            f.value,
            f.target,
            f.attainment,
            p.attainment,
        )
        for p in summary
        for part, figs in (("own", p.own), ("neighbour", p.neighbour))
        for f in figs
    ]


def department_rows(store: Store, settings: Settings, period: str) -> list[GroupFigure]:
    """Every department's and team's goal KPIs for the periods containing ``period``.

    A figure's target is the one stored with its ``kpi_values`` row when the computation kept
    one; else a team's comes from the KPI book's team targets and a department's from its goal
    for rates (a goal's count target is per person, so a department's count has none)."""
    b = book(settings)
    tz = company_tz(settings)
    system = settings.config.crm
    wanted: dict[str, tuple[str, str]] = {}
    for dept, goal in b.goals.items():
        for part, items in (("own", goal.own), ("neighbour", goal.neighbour)):
            for kpi_id in items:
                wanted.setdefault(kpi_id, (dept, part))
    periods = {
        k: containing(period, b.period_kind(b.kpis[k]), b.fiscal_year_start, tz) for k in wanted
    }
    out: list[GroupFigure] = []
    with store.session() as s:
        subjects = Subjects.load(s, system)
        rows = s.scalars(
            select(KpiValue).where(
                KpiValue.system == system,
                KpiValue.kpi_id.in_(list(wanted)),
                KpiValue.subject_kind.in_(("team", "department")),
                KpiValue.period.in_(set(periods.values())),
            )
        ).all()
    for v in rows:
        if periods.get(v.kpi_id) != v.period:
            continue
        dept, part = wanted[v.kpi_id]
        if v.subject_kind == "department" and v.subject_id != dept:
            continue  # a department's figure of another department's goal KPI
        kpi = b.kpis[v.kpi_id]
        target = v.target
        if target is None:
            if v.subject_kind == "team":
                # the targets as they applied at the period's end (or now, while it runs)
                at = min(bounds(v.period, b.fiscal_year_start, tz)[1], datetime.now(UTC))
                target = target_for(b, v.kpi_id, "team", v.subject_id, subjects, at, v.period)
            else:
                goal = b.goals[dept]
                item = goal.own.get(v.kpi_id) or goal.neighbour.get(v.kpi_id)
                target = item.target if item is not None and kpi.is_ratio else None
        out.append(
            GroupFigure(
                v.subject_kind,
                v.subject_id,
                v.kpi_id,
                kpi.label,
                part,
                v.period,
                v.value,
                target,
                capped_attainment(kpi, v.value, target),
                kpi.is_ratio,
            )
        )
    order = {d: i for i, d in enumerate(FUNNEL_ORDER)}
    out.sort(
        key=lambda g: (
            g.kind != "department",
            order.get(wanted[g.kpi_id][0], 9),
            g.subject,
            g.part != "own",
            g.label,
        )
    )
    return out
