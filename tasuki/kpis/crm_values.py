"""KPI figures as CRM values for the one write-back path: user fields, KPI rows, record fields."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from tasuki.kpis.books import book, company_tz
from tasuki.kpis.engine import (
    Subjects,
    explain_rows,
    target_for,
)
from tasuki.kpis.periods import bounds, containing, declared, kind_of, period_of, previous
from tasuki.kpis.query import Context
from tasuki.kpis.schema import KpiBook, KpiKind
from tasuki.kpis.summary import KpiFigure, capped_attainment, no_events, person_summary
from tasuki.settings import Settings
from tasuki.store.db import Store
from tasuki.store.models import KpiValue
from tasuki.writeback import DesiredValue


def _text(period: str, figs: Sequence[KpiFigure]) -> str:
    shown = "; ".join(f"{f.label}: {f.shown(f.value)} / {f.shown(f.target)}" for f in figs)
    return f"{period} {shown}"


def pushed_periods(settings: Settings, now: datetime | None = None) -> list[str]:
    """What a scheduled push covers: the current period and the one before it (closed, but late
    changes still reach it)."""
    b = book(settings)
    tz = company_tz(settings)
    current = period_of(now or datetime.now(UTC), b.period, b.fiscal_year_start, tz)
    return [previous(current, b.period, b.fiscal_year_start, tz), current]


def _kpi_periods(b: KpiBook, tz: ZoneInfo, periods: Sequence[str]) -> dict[str, list[str]]:
    """Each KPI's periods for ``periods`` as declared (a monthly KPI over a quarter: the quarter
    whole; a quarterly KPI for 3 months: their one quarter)."""
    out: dict[str, list[str]] = {}
    for kpi in b.kpis.values():
        own = {declared(p, b.period_kind(kpi), b.fiscal_year_start, tz) for p in periods}
        out[kpi.id] = sorted(own)
    return out


def _user_values(store: Store, settings: Settings, period: str) -> list[DesiredValue]:
    """Each person's KPI user fields (``writeback.kpi``: own, neighbour, attainment in whole %)
    on object ``user``, record id = the person's CRM user id. Values are rounded text and whole
    numbers, so figures that did not change produce identical values and no write."""
    fields = settings.config.writeback.kpi
    mapped = set(settings.config.fields("user")) if "user" in settings.config.objects else set()
    out = []
    for p in person_summary(store, settings, period):
        pairs: list[tuple[str | None, str | int | None]] = [
            (fields.own, _text(period, p.own)),
            (fields.neighbour, _text(period, p.neighbour)),
            (fields.attainment, None if p.attainment is None else round(100 * p.attainment)),
        ]
        for name, value in pairs:
            if name and name in mapped:
                out.append(DesiredValue("user", p.person_id, name, value))
    return out


def _number(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def row_key(period: str, kpi_id: str, subject_kind: str, subject: str) -> str:
    """A KPI row's external id: ``2026-11|mk_mqls|person:005…``."""
    return f"{period}|{kpi_id}|{subject_kind}:{subject}"


def _row_values(store: Store, settings: Settings, periods: Sequence[str]) -> list[DesiredValue]:
    """One row per subject, KPI and period on the ``writeback.kpi.rows`` object, keyed by
    :func:`row_key`. A person whose department's goal holds a KPI gets its row even with no
    events (counts and sums 0, rates unknown), so a figure that fell to nothing is rewritten."""
    cfg = settings.config
    obj = cfg.writeback.kpi.rows
    if obj is None or cfg.crm not in cfg.objects.get(obj, {}):
        return []
    mapped = set(cfg.fields(obj))
    kinds = set(cfg.writeback.kpi.row_subjects)
    b, tz = book(settings), company_tz(settings)
    per_kpi = _kpi_periods(b, tz, periods)
    wanted = {(k, p) for k, ps in per_kpi.items() for p in ps}
    Key = tuple[str, str, str, str]
    figures: dict[Key, tuple[float | None, float | None, float | None, float | None]] = {}
    with store.session() as session:
        for v in session.scalars(
            select(KpiValue).where(
                KpiValue.system == cfg.crm,
                KpiValue.kpi_id.in_(list(per_kpi)),
                KpiValue.period.in_({p for ps in per_kpi.values() for p in ps}),
                KpiValue.subject_kind.in_(kinds),
            )
        ):
            if (v.kpi_id, v.period) in wanted:
                figures[(v.kpi_id, v.period, v.subject_kind, v.subject_id)] = (
                    v.value,
                    v.numerator,
                    v.denominator,
                    v.target,
                )
        subjects = Subjects.load(session, cfg.crm)
    if "person" in kinds:
        now = datetime.now(UTC)
        for p in sorted({p for ps in per_kpi.values() for p in ps}):
            _, end = bounds(p, b.fiscal_year_start, tz)
            counted_at = min(end - timedelta(microseconds=1), now)
            for user_id, (dept, _team) in subjects.people_in(counted_at).items():
                goal = b.goals.get(dept or "")
                if goal is None:
                    continue
                for kpi_id, item in {**goal.own, **goal.neighbour}.items():
                    if p not in per_kpi[kpi_id]:
                        continue
                    kpi = b.kpis[kpi_id]
                    zero = no_events(kpi)
                    goal_target = (
                        target_for(b, kpi_id, "person", user_id, subjects, counted_at, p)
                        or item.target
                    )
                    figures.setdefault(
                        (kpi_id, p, "person", user_id), (zero, zero, None, goal_target)
                    )
    out: list[DesiredValue] = []
    for (kpi_id, p, kind, subject), (value, num, den, target) in sorted(figures.items()):
        kpi = b.kpis[kpi_id]
        attainment = capped_attainment(kpi, value, target)
        row: dict[str, str | float | int | None] = {
            "kpi": kpi_id,
            "label": kpi.label,
            "period": p,
            "subject_kind": kind,
            "subject": subject,
            "value": _number(value),
            "target": _number(target),
            "attainment": None if attainment is None else round(100 * attainment),
            "numerator": _number(num),
            "denominator": _number(den),
        }
        if kind == "person":
            row["person"] = subject
        rid = row_key(p, kpi_id, kind, subject)
        out.extend(DesiredValue(obj, rid, name, v) for name, v in row.items() if name in mapped)
    return out


def _record_values(
    store: Store, settings: Settings, periods: Sequence[str], now: datetime
) -> list[DesiredValue]:
    """Record-level figures: for each KPI with a ``record_field``, what each record of its events
    adds (a lead's business hours to first touch), on that record. Records whose clock is still
    running get nothing yet."""
    b, tz = book(settings), company_tz(settings)
    with_field = [k for k in b.kpis.values() if k.record_field]
    if not with_field:
        return []
    per_kpi = _kpi_periods(b, tz, periods)
    out = []
    with store.session() as session:
        ctx = Context(session, settings.config, b, settings.config.crm, now)
        for kpi in with_field:
            obj, field = b.event_objects[kpi.id], kpi.record_field
            assert field is not None
            digits = 1 if kpi.kind == KpiKind.DURATION else 4
            for p in per_kpi[kpi.id]:  # oldest first: a record in two periods keeps the latest
                for e in explain_rows(ctx, kpi, p, None):
                    if e.numerator is not None:
                        out.append(
                            DesiredValue(obj, e.record_id, field, round(e.numerator, digits))
                        )
    return out


def desired_values(
    store: Store,
    settings: Settings,
    periods: Sequence[str] | None = None,
    *,
    now: datetime | None = None,
) -> list[DesiredValue]:
    """What tasuki wants the CRM to hold for KPIs, for the single write-back path: the KPI rows
    and record-level figures of ``periods`` (default :func:`pushed_periods`), and each person's
    user fields when the current period is among them (they always show the current period)."""
    now = now or datetime.now(UTC)
    periods = list(periods) if periods is not None else pushed_periods(settings, now)
    out = _row_values(store, settings, periods) + _record_values(store, settings, periods, now)
    b, tz = book(settings), company_tz(settings)
    current = period_of(now, b.period, b.fiscal_year_start, tz)
    if any(containing(current, kind_of(p), b.fiscal_year_start, tz) == p for p in periods):
        out += _user_values(store, settings, current)
    return out
