"""Cross-department KPIs: each person's goal = own department's KPI + the neighbour's.

- :func:`compute` keeps ``kpi_values`` up to date in SQL on the store, per person, team,
  department and the whole org, for the periods changes touched.
- :func:`person_summary` gives each person's own and neighbour figures against target, and one
  weighted attainment (the demo's table and the HTML report).
- :func:`desired_values` turns them into CRM user fields for the single write-back path.
- :func:`explain` lists the records behind one figure.

The KPI definitions (``kpis:`` files in ``tasuki.yaml``) are described in
:mod:`tasuki.kpis.schema`; the semantics of the computation in :mod:`tasuki.kpis.engine`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tasuki.catalog import catalog
from tasuki.kpis.engine import (
    Subjects,
    compute_period,
    dated_rows,
    explain_rows,
    longest_window,
    prefetchable,
    target_for,
    touched_instants,
)
from tasuki.kpis.periods import containing, kind_of, period_of, previous, spanning
from tasuki.kpis.query import Context, EventRow
from tasuki.kpis.schema import Kpi, KpiBook, KpiKind, load_kpibook
from tasuki.settings import Settings
from tasuki.store.db import Store
from tasuki.store.models import Handoff, KpiValue, Person, SyncCursor
from tasuki.store.upsert import upsert
from tasuki.writeback import DesiredValue

__all__ = [
    "Explanation",
    "KpiBook",
    "KpiFigure",
    "PersonKpis",
    "book",
    "compute",
    "current_period",
    "desired_values",
    "explain",
    "load_kpibook",
    "person_summary",
]

ATTAINMENT_CAP = 1.5
"""One KPI far over target cannot hide another far under it."""

CHANGE_MARGIN = timedelta(minutes=10)
"""Changes are looked for from this long before the last computation (clock skew, races)."""

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


def _tz(settings: Settings) -> ZoneInfo:
    return ZoneInfo(settings.config.calendar.timezone)


def current_period(settings: Settings, day: date | None = None) -> str:
    """The book's period containing ``day`` (default: now) in the company's timezone."""
    b = book(settings)
    tz = _tz(settings)
    at = datetime.now(UTC) if day is None else datetime(day.year, day.month, day.day, 12, tzinfo=tz)
    return period_of(at, b.period, b.fiscal_year_start, tz)


def _noon(day: date, tz: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, 12, tzinfo=tz)


def _plan(ctx: Context, settings: Settings, periods: Sequence[str] | None) -> dict[str, list[Kpi]]:
    """Which KPIs to recompute for which periods."""
    b, tz, fy = ctx.book, ctx.tz, ctx.book.fiscal_year_start
    plan: dict[str, list[Kpi]] = {}

    def add(kpi: Kpi, period: str) -> None:
        plan.setdefault(period, [])
        if kpi not in plan[period]:
            plan[period].append(kpi)

    if periods is not None:
        for p in periods:
            kind_of(p)  # a typo fails here, not as an empty result
            for kpi in b.kpis.values():
                add(kpi, containing(p, b.period_kind(kpi), fy, tz))
        return plan
    session, system = ctx.session, ctx.system
    last = _watermark(ctx)
    instants: list[datetime]
    if last is None:
        # First run: every period since the first handoff the store knows.
        first = session.scalar(select(func.min(Handoff.handed_at)).where(Handoff.system == system))
        instants = [first] if first is not None else []
    else:
        instants = touched_instants(ctx, last - CHANGE_MARGIN)
    reach = longest_window(b)
    # Distinct local days are enough to place periods (thousands of changes, a few days).
    days = {(at - reach).astimezone(tz).date() for at in instants if at <= ctx.now}
    days |= {at.astimezone(tz).date() for at in instants if at <= ctx.now}
    last_day = ctx.now.astimezone(tz).date() if last is None else None
    for kpi in b.kpis.values():
        kind = b.period_kind(kpi)
        current = period_of(ctx.now, kind, fy, tz)
        add(kpi, previous(current, kind, fy, tz))
        add(kpi, current)
        for day in days:
            add(kpi, period_of(_noon(day, tz), kind, fy, tz))
        if last_day is not None and days:
            for p in spanning(_noon(min(days), tz), _noon(last_day, tz), kind, fy, tz):
                add(kpi, p)
    return plan


WATERMARK = "tasuki:kpis"
"""The ``sync_cursors`` row holding when the last incremental computation started."""


def _watermark(ctx: Context) -> datetime | None:
    """When the last incremental computation started (computations of named periods, such as
    ``kpi show --period``, do not move it: they looked at no other period)."""
    cursor = ctx.session.scalar(
        select(SyncCursor.cursor).where(
            SyncCursor.system == ctx.system, SyncCursor.object == WATERMARK
        )
    )
    if cursor is not None:
        return datetime.fromisoformat(cursor)
    # A store computed before the watermark existed: its newest figure stands in for it.
    last = ctx.session.scalar(
        select(func.max(KpiValue.computed_at)).where(KpiValue.system == ctx.system)
    )
    return None if last is None else (last if last.tzinfo else last.replace(tzinfo=UTC))


def _set_watermark(ctx: Context) -> None:
    row = {
        "system": ctx.system,
        "object": WATERMARK,
        "cursor": ctx.now.isoformat(),
        "updated_at": ctx.now,
    }
    upsert(ctx.session, SyncCursor, [row], ["system", "object"], ["cursor", "updated_at"])


def compute(
    store: Store,
    settings: Settings,
    *,
    now: datetime,
    periods: Sequence[str] | None = None,
    then: Callable[[Session, int], object] | None = None,
) -> int:
    """Recompute KPI values and upsert them into ``kpi_values``; returns rows changed.

    Without ``periods``: the current period and the previous one (late changes still reach it),
    plus every period a change since the last computation touched (a handoff detected or judged,
    a record synced, a record pointing at one, reaching back over the longest cohort window);
    on the first run, every period since the first handoff. A month given for a KPI counted per
    quarter recomputes that quarter. Idempotent: a second run with no change writes nothing.
    ``then(session, changed)`` runs last in the same transaction (a job settles its debt there).
    """
    b = book(settings)
    changed = 0
    with store.session() as session:
        ctx = Context(session, settings.config, b, settings.config.crm, now)
        plan = _plan(ctx, settings, periods)
        prefetched = {
            kpi.id: dated_rows(ctx, kpi, [p for p, ks in plan.items() if kpi in ks])
            for kpi in b.kpis.values()
            if prefetchable(kpi) and sum(kpi in ks for ks in plan.values()) > 1
        }
        for period, kpis in sorted(plan.items()):
            changed += compute_period(ctx, kpis, period, prefetched)
        if periods is None:
            _set_watermark(ctx)
        if then is not None:
            then(session, changed)
    return changed


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


def _no_events(kpi: Kpi) -> float | None:
    """A person's figure when nothing was counted: zero for counts and sums, unknown (``None``)
    for rates and durations."""
    return None if kpi.is_ratio or kpi.kind == KpiKind.DURATION else 0.0


def _attainment(kpi: Kpi, value: float | None, target: float | None) -> float | None:
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


def person_summary(store: Store, settings: Settings, period: str) -> list[PersonKpis]:
    """Every person whose current department has a goal, in funnel order then by name.

    Each KPI is read for the period of its own kind containing ``period``. A count or sum with
    no events is 0; a rate with none is unknown (``None``) and leaves the attainment out.
    Attainment = the part weights (own, neighbour) over the KPI-weighted means of each part,
    over the parts that have a figure."""
    b = book(settings)
    tz = _tz(settings)
    system = settings.config.crm
    kpi_period = {
        k.id: containing(period, b.period_kind(k), b.fiscal_year_start, tz) for k in b.kpis.values()
    }
    with store.session() as session:
        values = {
            (v.kpi_id, v.subject_id, v.period): v.value
            for v in session.scalars(
                select(KpiValue).where(
                    KpiValue.system == system,
                    KpiValue.period.in_(set(kpi_period.values())),
                    KpiValue.subject_kind == "person",
                )
            )
        }
        people = session.scalars(select(Person).where(Person.system == system)).all()
        subjects = Subjects.load(session, system)
    order = {d: i for i, d in enumerate(("MK", "IS", "FS", "CS"))}
    out = []
    for p in sorted(people, key=lambda p: (order.get(p.department or "", 9), p.name, p.user_id)):
        goal = b.goals.get(p.department or "")
        if goal is None:
            continue
        parts: list[list[KpiFigure]] = []
        for items in (goal.own, goal.neighbour):
            figs = []
            for kpi_id, item in items.items():
                kpi = b.kpis[kpi_id]
                value = values.get((kpi_id, p.user_id, kpi_period[kpi_id]))
                if value is None:
                    value = _no_events(kpi)
                target = target_for(b, kpi_id, "person", p.user_id, subjects) or item.target
                figs.append(
                    KpiFigure(
                        kpi_id,
                        kpi.label,
                        value,
                        target,
                        _attainment(kpi, value, target),
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
        out.append(PersonKpis(p.user_id, p.name, p.department or "", own, neighbour, attainment))
    return out


def _text(period: str, figs: Sequence[KpiFigure]) -> str:
    shown = "; ".join(f"{f.label}: {f.shown(f.value)} / {f.shown(f.target)}" for f in figs)
    return f"{period} {shown}"


def pushed_periods(settings: Settings, now: datetime | None = None) -> list[str]:
    """What a scheduled push covers: the current period and the one before it (closed, but late
    changes still reach it)."""
    b = book(settings)
    tz = _tz(settings)
    current = period_of(now or datetime.now(UTC), b.period, b.fiscal_year_start, tz)
    return [previous(current, b.period, b.fiscal_year_start, tz), current]


def _kpi_periods(b: KpiBook, tz: ZoneInfo, periods: Sequence[str]) -> dict[str, list[str]]:
    """Each KPI's own periods containing ``periods`` (a quarterly KPI: one quarter for 3 months)."""
    out: dict[str, list[str]] = {}
    for kpi in b.kpis.values():
        own = {containing(p, b.period_kind(kpi), b.fiscal_year_start, tz) for p in periods}
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
    b, tz = book(settings), _tz(settings)
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
        for user_id, dept in subjects.departments.items():
            goal = b.goals.get(dept or "")
            if goal is None:
                continue
            for kpi_id, item in {**goal.own, **goal.neighbour}.items():
                kpi = b.kpis[kpi_id]
                zero = _no_events(kpi)
                goal_target = target_for(b, kpi_id, "person", user_id, subjects) or item.target
                for p in per_kpi[kpi_id]:
                    figures.setdefault(
                        (kpi_id, p, "person", user_id), (zero, zero, None, goal_target)
                    )
    out: list[DesiredValue] = []
    for (kpi_id, p, kind, subject), (value, num, den, target) in sorted(figures.items()):
        kpi = b.kpis[kpi_id]
        attainment = _attainment(kpi, value, target)
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
    b, tz = book(settings), _tz(settings)
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
    b, tz = book(settings), _tz(settings)
    current = period_of(now, b.period, b.fiscal_year_start, tz)
    if any(containing(current, kind_of(p), b.fiscal_year_start, tz) == p for p in periods):
        out += _user_values(store, settings, current)
    return out


@dataclass(frozen=True)
class Explanation:
    """A figure and the events behind it."""

    kpi: Kpi
    period: str
    person: str | None
    value: float | None
    numerator: float | None
    denominator: float | None
    events: list[EventRow]


def explain(
    store: Store, settings: Settings, kpi_id: str, period: str, person: str | None = None
) -> Explanation:
    """The records behind ``kpi_id``'s figure for ``person`` (``None``: the org) in the period
    of the KPI's kind containing ``period``; the figure is computed afresh, not read back."""
    from tasuki.kpis.engine import kpi_figures

    b = book(settings)
    if kpi_id not in b.kpis:
        raise KeyError(f"unknown KPI {kpi_id!r}; known: {', '.join(sorted(b.kpis))}")
    kpi = b.kpis[kpi_id]
    p = containing(period, b.period_kind(kpi), b.fiscal_year_start, _tz(settings))
    with store.session() as session:
        ctx = Context(session, settings.config, b, settings.config.crm, datetime.now(UTC))
        rows = explain_rows(ctx, kpi, p, person)
        figs = kpi_figures(ctx, kpi, p, Subjects.load(session, ctx.system))
    fig = figs.get(("person", person) if person else ("org", "org"))
    return Explanation(
        kpi,
        p,
        person,
        fig.value if fig else None,
        fig.numerator if fig else None,
        fig.denominator if fig else None,
        rows,
    )
