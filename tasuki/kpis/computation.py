"""Keeping ``kpi_values`` up to date in SQL, for the periods changes touched."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from tasuki.kpis.books import book, noon
from tasuki.kpis.engine import (
    PeriodFigures,
    Subjects,
    compute_period,
    dated_rows,
    longest_window,
    prefetchable,
    scanned_figures,
    shared_figures,
    touched_instants,
)
from tasuki.kpis.periods import declared, kind_of, period_of, previous, spanning
from tasuki.kpis.query import Context
from tasuki.kpis.schema import Kpi
from tasuki.people_file import apply_people_file
from tasuki.settings import Settings
from tasuki.store.db import Store
from tasuki.store.models import Handoff, KpiValue, SyncCursor
from tasuki.store.upsert import upsert

CHANGE_MARGIN = timedelta(minutes=10)
"""Changes are looked for from this long before the last computation (clock skew, races)."""


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
                add(kpi, declared(p, b.period_kind(kpi), fy, tz))
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
            add(kpi, period_of(noon(day, tz), kind, fy, tz))
        if last_day is not None and days:
            for p in spanning(noon(min(days), tz), noon(last_day, tz), kind, fy, tz):
                add(kpi, p)
    return plan


SORT_MEMORY = "64MB"
"""PostgreSQL's ``work_mem`` in a computation's transaction: a year of a million records'
crossings is ranked, hashed against its records and grouped in memory instead of temporary files
(the server's default is 4MB, sized for many small queries, not one report)."""


def _sort_in_memory(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"SET LOCAL work_mem = '{SORT_MEMORY}'"))


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
    restate: bool = False,
    figures_of: PeriodFigures = shared_figures,
) -> int:
    """Recompute KPI values and upsert them into ``kpi_values``; returns rows changed.

    Without ``periods``: the current period and the previous one (late changes still reach it),
    plus every period a change since the last computation touched (a handoff detected or judged,
    a record synced, a record pointing at one, reaching back over the longest cohort window);
    on the first run, every period since the first handoff. A period given is computed whole for
    every KPI counted per period as long or shorter (a quarter: the three months together); a
    month given for a KPI counted per quarter recomputes that quarter. A period that has ended
    keeps its stored targets unless ``restate`` (:func:`restatement` previews it). Idempotent: a
    second run with no change writes nothing.
    ``then(session, changed)`` runs last in the same transaction (a job settles its debt there).
    ``figures_of``: how the periods' figures are computed (one shared scan per boundary and run
    of consecutive periods; ``bench/kpis.py`` measures it against one statement per KPI and
    period).
    """
    b = book(settings)
    changed = 0
    with store.session() as session:
        apply_people_file(session, settings)  # an edited people file counts from this run
        _sort_in_memory(session)
        ctx = Context(session, settings.config, b, settings.config.crm, now)
        plan = _plan(ctx, settings, periods)
        prefetched = {
            kpi.id: dated_rows(ctx, kpi, [p for p, ks in plan.items() if kpi in ks])
            for kpi in b.kpis.values()
            if prefetchable(kpi) and sum(kpi in ks for ks in plan.values()) > 1
        }
        subjects = Subjects.load(session, ctx.system)
        scanned = scanned_figures(ctx, plan, prefetched, subjects, figures_of)
        for period, kpis in sorted(plan.items()):
            changed += compute_period(
                ctx,
                kpis,
                period,
                prefetched,
                restate=restate,
                subjects=subjects,
                scanned=scanned[period],
            )
        if periods is None:
            _set_watermark(ctx)
        if then is not None:
            then(session, changed)
    return changed


Figures = dict[tuple[str, str, str], tuple[float | None, float | None]]
"""(KPI, subject kind, subject) → (value, target) of one period."""

Restated = tuple[
    tuple[str, str, str],
    tuple[float | None, float | None] | None,
    tuple[float | None, float | None] | None,
]
"""(key, (value, target) stored, (value, target) restated); None: no such row on that side."""


class _Preview(Exception):
    """Carries a computation's figures out of the transaction that is then rolled back."""

    def __init__(self, figures: Figures) -> None:
        super().__init__("preview")
        self.figures = figures


def _stored(session: Session, system: str, period: str) -> Figures:
    return {
        (v.kpi_id, v.subject_kind, v.subject_id): (v.value, v.target)
        for v in session.scalars(
            select(KpiValue).where(KpiValue.system == system, KpiValue.period == period)
        )
    }


def restatement(store: Store, settings: Settings, period: str, *, now: datetime) -> list[Restated]:
    """What restating ``period`` (recomputing it with today's targets) would change, computed
    in a transaction that is rolled back: every row that differs."""
    system = settings.config.crm
    with store.session() as session:
        before = _stored(session, system, period)
    after: Figures = {}
    try:
        with store.session() as session:
            ctx = Context(session, settings.config, book(settings), system, now)
            _sort_in_memory(session)
            for p, kpis in sorted(_plan(ctx, settings, [period]).items()):
                compute_period(ctx, kpis, p, restate=True)
            raise _Preview(_stored(session, system, period))
    except _Preview as preview:
        after = preview.figures
    return [
        (key, before.get(key), after.get(key))
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    ]
