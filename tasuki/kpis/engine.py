"""KPI computation in SQL on the store, the same on SQLite and PostgreSQL (SQLAlchemy Core; JSON
fields read with ``fields[name].as_string()``).

Each KPI is an *event query*: one row per event (a handoff, a dated record, a field change)
with the person it is credited to, that person's department at the time when the store knows
it (a handoff records both sides' departments), the record, the event's time and its
contribution to the numerator and denominator. Every other event counts for the team and
department its person belonged to at the time of the event (:mod:`tasuki.membership`), never
today's. ``kpi explain`` runs one KPI's query ungrouped, so an explanation lists exactly the
records behind a figure. The stored figures are computed with one statement per source of
events and run of consecutive periods (a year of months), shared by the KPIs counting those
events (:func:`shared_figures`, :mod:`tasuki.kpis.crossings`): the same events, conditions and
contributions, the scan done once.

Semantics worth knowing:

- A record counts once per KPI and period: when it crossed the same boundary twice in a period
  (bounced back and handed over again), the latest crossing stands, with its sender and receiver.
- Deleted records (and handoffs whose record tasuki never saw) count nowhere.
- Rates with nothing to divide are ``None``, not 0: "no MQLs" is not "0% converted".
- Durations and SLAs are counted in the company's business hours by default; their clocks are
  read in SQL and measured in Python with the business calendar, which SQL cannot express.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    delete,
    func,
    or_,
    select,
    tuple_,
)
from sqlalchemy.orm import Session

from tasuki.kpis.crossings import SharedScan, Span, source_key
from tasuki.kpis.periods import (
    PeriodKind,
    bounds,
    declared,
    first_month,
    kind_of,
    months_in,
    period_of,
)
from tasuki.kpis.query import Context, EventQuery, EventRow, event_query, text_field
from tasuki.kpis.schema import Kpi, KpiBook, KpiKind
from tasuki.membership import Memberships
from tasuki.store.models import Handoff, KpiValue, Record, Verdict
from tasuki.store.upsert import upsert

ORG = "org"
"""Subject id of the whole organisation's figures."""

SUBJECT_KINDS = ("person", "team", "department", "org")
"""What a figure can be about, finest first."""

DECIMALS = 9
"""Stored values are rounded to this many decimals, so SQLite and PostgreSQL agree exactly and an
unchanged figure is never rewritten because of float noise."""


@dataclass(frozen=True)
class Figure:
    """One KPI's value for one subject: ``value`` is numerator / denominator for ratios."""

    value: float | None
    numerator: float | None
    denominator: float | None


def _instant(value: datetime | str | None) -> datetime | None:
    """A datetime or ISO text as an aware instant (naive = UTC); ``None`` for nothing or not a
    date."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(value)  # "Z" included, since Python 3.11
        except ValueError:
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_NAIVE_EPOCH = datetime(1970, 1, 1)


def _epoch(value: datetime | str | None) -> float | None:
    """:func:`_instant` as epoch seconds: durations and SLAs are measured on these.

    Written out for the shared scan, which reads two per event of a year: a naive (UTC) time is
    measured from a naive epoch, the very subtraction ``timestamp()`` does on its aware copy."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)  # "Z" included, since Python 3.11
        except ValueError:
            return None
    if value.tzinfo is None:
        return (value - _NAIVE_EPOCH).total_seconds()
    return value.timestamp()


def _hours(ctx: Context, kpi: Kpi, start: float, end: float) -> float:
    if kpi.business_hours:
        return ctx.calendar.business_seconds_between(start, end) / 3600
    return (end - start) / 3600


def measure(ctx: Context, kpi: Kpi, row: Any) -> tuple[float | None, float | None]:
    """(numerator, denominator) one event adds; durations and SLAs measured here."""
    kind = kpi.kind
    if kind is not KpiKind.DURATION and kind is not KpiKind.SLA:
        return float(row.num), float(row.den)
    return clock(ctx, kpi, row.at, row.until)


def clock(
    ctx: Context, kpi: Kpi, at: datetime | str | None, until: datetime | str | None
) -> tuple[float | None, float | None]:
    """(numerator, denominator) of a duration's or an SLA's event started at ``at`` and
    stopped at ``until``: ``(None, None)`` when it does not count (yet)."""
    return clock_epochs(ctx, kpi, _epoch(at), _epoch(until))


def clock_epochs(
    ctx: Context, kpi: Kpi, start: float | None, stop: float | None
) -> tuple[float | None, float | None]:
    """:func:`clock` for epoch seconds (the shared scan reads hundreds of thousands)."""
    kind = kpi.kind
    if start is None:
        return None, None
    if kind is KpiKind.DURATION:
        if stop is None or stop < start:
            return None, None
        return _hours(ctx, kpi, start, stop), 1.0
    assert kpi.within_hours is not None
    if stop is not None:
        return (1.0 if _hours(ctx, kpi, start, stop) <= kpi.within_hours else 0.0), 1.0
    if _hours(ctx, kpi, start, ctx.now.timestamp()) > kpi.within_hours:
        return 0.0, 1.0  # overdue and still unanswered: missed
    return None, None  # the clock is still running: not yet counted either way


def percentile(values: Sequence[float], p: float) -> float | None:
    """The ``p``-th percentile with linear interpolation (PostgreSQL's percentile_cont)."""
    if not values:
        return None
    xs = sorted(values)
    k = (len(xs) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, DECIMALS)


def _figure(kpi: Kpi, nums: Sequence[float], dens: float) -> Figure:
    if kpi.kind == KpiKind.DURATION:
        return Figure(_round(percentile(nums, kpi.percentile)), None, dens)
    n = sum(nums)
    if kpi.is_ratio:
        return Figure(_round(n / dens) if dens else None, _round(n), dens)
    return Figure(_round(n), _round(n), dens)


@dataclass(frozen=True)
class Subjects:
    """Who belonged where when (:mod:`tasuki.membership`): an event counts for the team and
    department its person was in at the time of the event."""

    memberships: Memberships

    @classmethod
    def load(cls, session: Session, system: str) -> Subjects:
        return cls(Memberships.load(session, system))

    def at(self, person: str | None, when: datetime) -> tuple[str | None, str | None]:
        """(department, team) of ``person`` at ``when``."""
        return self.memberships.at(person, when)

    def people_in(self, when: datetime) -> dict[str, tuple[str | None, str | None]]:
        """Everyone with their (department, team) at ``when``."""
        return self.memberships.people_in(when)


def reference_instant(ctx: Context, period: str) -> datetime:
    """The instant a period's people are counted at (whose goal, which team's target): the
    period's last instant, or now while it runs."""
    _, end = bounds(period, ctx.book.fiscal_year_start, ctx.tz)
    return min(end - timedelta(microseconds=1), ctx.now)


RowGroup = tuple[str | None, str | None, list[float], float, datetime | None]
"""(person, department, numerator contributions, denominator, when): a group of events; ``when``
None: the group spans the period (its person's membership does not change in it)."""

Rows = list[RowGroup]


def _event_instant(value: datetime | str | None, tz: ZoneInfo) -> datetime | None:
    """An event's time as an instant (a plain local date: its noon)."""
    if isinstance(value, str) and len(value) == 10:
        try:
            day = datetime.fromisoformat(value)
        except ValueError:
            return None
        return datetime(day.year, day.month, day.day, 12, tzinfo=tz)
    return _instant(value)


def dated_rows(ctx: Context, kpi: Kpi, periods: Sequence[str]) -> dict[str, Rows]:
    """Grouped events of a KPI over records dated by a field, for many periods in one scan.

    Such a KPI reads every record of its object (a JSON date field cannot be indexed), so the
    periods share one statement grouped by minute (or by date for plain dates), and the groups
    are placed into periods here."""
    fy, tz = ctx.book.fiscal_year_start, ctx.tz
    spans = [bounds(p, fy, tz) for p in periods]
    q = EventQuery(ctx, kpi, min(a for a, _ in spans), max(b for _, b in spans)).build()
    sub = q.subquery("events")
    when = func.substr(sub.c.at, 1, 16)
    grouped = select(
        sub.c.person, sub.c.dept, when, func.sum(sub.c.num), func.sum(sub.c.den)
    ).group_by(sub.c.person, sub.c.dept, when)
    kinds = sorted({kind_of(p) for p in periods})
    wanted = set(periods)
    out: dict[str, Rows] = {p: [] for p in periods}
    for person, dept, key, n, den in ctx.session.execute(grouped):
        try:
            if len(key) == 10:
                day = datetime.fromisoformat(key)
                at = datetime(day.year, day.month, day.day, 12, tzinfo=tz)
            else:
                at = datetime.fromisoformat(key[:16]).replace(tzinfo=UTC)
        except (TypeError, ValueError):
            continue  # not a date: such a record is in no period (as in the per-period query)
        for kind in kinds:
            period = period_of(at, kind, fy, tz)
            if period in wanted:
                out[period].append((person, dept, [float(n or 0)], float(den or 0), at))
    return out


def prefetchable(kpi: Kpi) -> bool:
    """Whether :func:`dated_rows` can serve this KPI."""
    return kpi.events.records is not None and kpi.kind not in (KpiKind.DURATION, KpiKind.SLA)


def kpi_figures(
    ctx: Context, kpi: Kpi, period: str, subjects: Subjects, grouped_rows: Rows | None = None
) -> dict[tuple[str, str], Figure]:
    """``kpi`` in ``period`` for every person, team, department and the org with events; each
    event counts for the team and department its person was in at the time of the event."""
    q = event_query(ctx, kpi, period)
    start, end = bounds(period, ctx.book.fiscal_year_start, ctx.tz)
    rows: Iterable[RowGroup]
    if grouped_rows is not None:
        rows = grouped_rows
    elif kpi.kind in (KpiKind.DURATION, KpiKind.SLA):
        rows = (
            (r.person, r.dept, [n], d, _event_instant(r.at, ctx.tz))
            for r in ctx.session.execute(q)
            for n, d in [measure(ctx, kpi, r)]
            if n is not None and d is not None
        )
    else:
        sub = q.subquery("events")
        movers = sorted(subjects.memberships.movers(start, end))
        grouped = select(
            sub.c.person, sub.c.dept, func.sum(sub.c.num), func.sum(sub.c.den)
        ).group_by(sub.c.person, sub.c.dept)
        steady: Iterable[RowGroup] = (
            (p, d, [float(n or 0)], float(den or 0), None)
            for p, d, n, den in ctx.session.execute(
                grouped.where(or_(sub.c.person.is_(None), sub.c.person.not_in(movers)))
                if movers
                else grouped
            )
        )
        # People who changed team or department during the period: event by event.
        moving: Iterable[RowGroup] = (
            (
                (p, d, [float(n or 0)], float(den or 0), _event_instant(at, ctx.tz))
                for p, d, at, n, den in ctx.session.execute(
                    select(sub.c.person, sub.c.dept, sub.c.at, sub.c.num, sub.c.den).where(
                        sub.c.person.in_(movers)
                    )
                )
            )
            if movers
            else iter(())
        )
        rows = itertools.chain(steady, moving)
    return tally(kpi, rows, subjects, start)


def tally(
    kpi: Kpi, rows: Iterable[RowGroup], subjects: Subjects, start: datetime
) -> dict[tuple[str, str], Figure]:
    """Figures of ``kpi`` from its groups of events: each group counts for the org, its person,
    and the team and department the person was in at the group's time (the period's ``start``
    for a group that spans it)."""
    nums: dict[tuple[str, str], list[float]] = defaultdict(list)
    dens: dict[tuple[str, str], float] = defaultdict(float)
    # Subjects of each (person, department, time) once: a duration's events share a handful.
    subjects_of: dict[tuple[str | None, str | None, datetime | None], list[tuple[str, str]]] = {}
    for person, dept, n, d, when in rows:
        keys = subjects_of.get((person, dept, when))
        if keys is None:
            keys = subjects_of[(person, dept, when)] = [("org", ORG)]
            department: str | None = dept
            if person is not None:
                keys.append(("person", person))
                held_dept, team = subjects.at(person, when or start)
                department = dept or held_dept
                if team:
                    keys.append(("team", team))
            if department:
                keys.append(("department", department))
        for key in keys:
            nums[key].extend(n)
            dens[key] += d
    return {key: _figure(kpi, nums[key], dens[key]) for key in dens}


KpiFigures = dict[str, dict[tuple[str, str], Figure]]
"""KPI id → (subject kind, subject) → figure, for one period."""


def runs(ctx: Context, periods: Iterable[str]) -> list[list[str]]:
    """``periods`` as runs of consecutive periods of one kind, each run read by one shared scan
    (the twelve months of a year: one run; a month and a quarter never share one)."""
    fy, tz = ctx.book.fiscal_year_start, ctx.tz
    out: list[list[str]] = []
    last_end: datetime | None = None
    last_kind: PeriodKind | None = None
    for period in sorted(set(periods), key=lambda p: (kind_of(p), bounds(p, fy, tz))):
        start, end = bounds(period, fy, tz)
        if out and kind_of(period) == last_kind and start == last_end:
            out[-1].append(period)
        else:
            out.append([period])
        last_end, last_kind = end, kind_of(period)
    return out


def shared_figures(
    ctx: Context, kpis: Sequence[Kpi], periods: Sequence[str], subjects: Subjects
) -> dict[str, KpiFigures]:
    """Figures of ``kpis`` in each of ``periods`` with one statement per source of events and
    run of consecutive periods (:mod:`tasuki.kpis.crossings`): the KPIs of a boundary share one
    scan of its crossings over the months of a year. Identical to :func:`per_kpi_figures`,
    which runs one statement per KPI and period."""
    tz, fy = ctx.tz, ctx.book.fiscal_year_start
    sources: dict[tuple[Any, str], list[Kpi]] = defaultdict(list)
    for kpi in kpis:
        sources[source_key(ctx, kpi)].append(kpi)
    figures: dict[str, KpiFigures] = {p: {} for p in periods}
    for group in sources.values():
        dated = group[0].events.records is not None
        for run in [[p] for p in periods] if dated else runs(ctx, periods):
            spans = []
            for period in run:
                start, end = bounds(period, fy, tz)
                spans.append(Span(start, end, frozenset(subjects.memberships.movers(start, end))))
            for period, found in zip(run, _scan(ctx, group, spans, subjects), strict=True):
                figures[period].update(found)
    return figures


def _scan(
    ctx: Context, kpis: Sequence[Kpi], spans: Sequence[Span], subjects: Subjects
) -> list[KpiFigures]:
    """Figures of ``kpis`` (one source) in each of the consecutive ``spans``, from one scan."""
    tz = ctx.tz
    scan = SharedScan(ctx, kpis, spans)
    lay = scan.layout
    rows: list[dict[str, list[RowGroup]]] = [{k.id: [] for k in kpis} for _ in spans]
    summed = [lay.summed_of(i) for i in range(len(lay.credits))]
    timed = [lay.timed_of(i) for i in range(len(lay.credits))]
    # A core execution fetched at once: a year of a million records is 300,000 rows.
    for r in ctx.session.connection().execute(scan.statement()).all():
        mine = rows[r[2]]
        person, dept = r[3], r[4]
        when = None if r[5] is None else _event_instant(r[5], tz)
        if not r[0]:
            for kpi, events, numerator in summed[r[1]]:
                if r[events]:
                    n = float(r[numerator] or 0)
                    mine[kpi.id].append((person, dept, [n], float(r[events]), when))
            continue
        started = _epoch(r[lay.AT])  # read raw: naive UTC or text
        for kpi, counts, until in timed[r[1]]:
            if r[counts]:
                hours, den = clock_epochs(ctx, kpi, started, _epoch(r[until]))
                if hours is not None and den is not None:
                    mine[kpi.id].append((person, dept, [hours], den, when))
    return [
        {kpi.id: tally(kpi, mine[kpi.id], subjects, span.start) for kpi in kpis}
        for span, mine in zip(spans, rows, strict=True)
    ]


def per_kpi_figures(
    ctx: Context, kpis: Sequence[Kpi], periods: Sequence[str], subjects: Subjects
) -> dict[str, KpiFigures]:
    """Figures of ``kpis`` in each of ``periods``, one statement per KPI and period
    (:func:`kpi_figures`): the straightforward computation the shared scans are checked against
    (tests) and measured against (``bench/kpis.py``)."""
    return {p: {kpi.id: kpi_figures(ctx, kpi, p, subjects) for kpi in kpis} for p in periods}


PeriodFigures = Callable[[Context, Sequence[Kpi], Sequence[str], Subjects], dict[str, KpiFigures]]
"""How the figures of many periods are computed: :func:`shared_figures` or
:func:`per_kpi_figures`."""


def target_for(
    book: KpiBook,
    kpi_id: str,
    kind: str,
    subject: str,
    subjects: Subjects,
    at: datetime,
    period: str | None = None,
) -> float | None:
    """The target of a person (own override, else their team's, else their department's goal,
    as they were at ``at``) or a team, as it applies in ``period`` (the targets written
    ``from`` a period on, the latest that began by then, over the ones without a date).

    A count or sum asked for a period longer than the KPI's own (a monthly KPI over a quarter)
    has its target times the number of its periods in it; rates and durations keep theirs."""
    fy = book.fiscal_year_start
    changes = [
        c
        for c in book.target_changes
        if period is None or first_month(c.from_, fy) <= first_month(period, fy)
    ]

    def latest(table: str, who: str | None) -> float | None:
        for c in reversed(changes):
            value = dict(c.tables())[table].get(who or "", {}).get(kpi_id)
            if value is not None:
                return value
        if table == "people":
            return book.targets.people.get(who or "", {}).get(kpi_id)
        if table == "teams":
            return book.targets.teams.get(who or "", {}).get(kpi_id)
        goal = book.goals.get(who or "")
        item = None if goal is None else goal.own.get(kpi_id) or goal.neighbour.get(kpi_id)
        return None if item is None else item.target

    if kind == "team":
        target = latest("teams", subject)
    elif kind != "person":
        return None
    else:
        dept, team = subjects.at(subject, at)
        target = latest("people", subject)
        if target is None and team:
            target = latest("teams", team)
        if target is None:
            target = latest("departments", dept)
    kpi = book.kpis.get(kpi_id)
    if target is None or period is None or kpi is None:
        return target
    if kpi.kind in (KpiKind.COUNT, KpiKind.SUM):
        own = months_in(declared(period, book.period_kind(kpi), fy, ZoneInfo("UTC")))
        target *= max(1, own // _KIND_MONTHS[book.period_kind(kpi)])
    return target


_KIND_MONTHS = {PeriodKind.MONTH: 1, PeriodKind.QUARTER: 3, PeriodKind.FISCAL_YEAR: 12}


def compute_period(
    ctx: Context,
    kpis: Sequence[Kpi],
    period: str,
    prefetched: Mapping[str, Mapping[str, Rows]] | None = None,
    *,
    restate: bool = False,
    figures_of: PeriodFigures = shared_figures,
    subjects: Subjects | None = None,
    scanned: KpiFigures | None = None,
) -> int:
    """Recompute ``kpis`` for ``period``; write only what changed, drop figures that vanished
    (a deleted record's sender has nothing left); returns how many stored rows changed.

    Once ``period`` has ended its stored targets are frozen: a target changed since never
    rewrites its attainment, unless ``restate`` (a deliberate restatement) says so.
    ``scanned``: the figures of the KPIs not prefetched when a scan over many periods already
    computed them (:func:`scanned_figures`); else ``figures_of`` computes them for this period
    (the shared scans; ``bench/kpis.py`` passes :func:`per_kpi_figures` to measure them against
    one statement per KPI)."""
    if not kpis:
        return 0
    session, system = ctx.session, ctx.system
    if subjects is None:
        subjects = Subjects.load(session, system)
    ids = [k.id for k in kpis]
    existing = {
        (v.kpi_id, v.subject_kind, v.subject_id): (v.value, v.numerator, v.denominator, v.target)
        for v in session.scalars(
            select(KpiValue).where(
                KpiValue.system == system, KpiValue.period == period, KpiValue.kpi_id.in_(ids)
            )
        )
    }
    rows = []
    fresh: set[tuple[str, str, str]] = set()
    counted_at = reference_instant(ctx, period)
    frozen = not restate and bounds(period, ctx.book.fiscal_year_start, ctx.tz)[1] <= ctx.now
    figures: KpiFigures = {}
    for kpi in kpis:
        pre = (prefetched or {}).get(kpi.id, {}).get(period)
        if pre is not None:
            figures[kpi.id] = kpi_figures(ctx, kpi, period, subjects, pre)
    if scanned is None:
        rest = [k for k in kpis if k.id not in figures]
        scanned = figures_of(ctx, rest, [period], subjects)[period]
    figures.update(scanned)
    for kpi in kpis:
        for (kind, subject), fig in figures[kpi.id].items():
            key = (kpi.id, kind, subject)
            fresh.add(key)
            if frozen and key in existing:
                target = existing[key][3]
            else:
                target = target_for(ctx.book, kpi.id, kind, subject, subjects, counted_at, period)
            if existing.get(key) == (fig.value, fig.numerator, fig.denominator, target):
                continue
            rows.append(
                {
                    "system": system,
                    "kpi_id": kpi.id,
                    "subject_kind": kind,
                    "subject_id": subject,
                    "period": period,
                    "value": fig.value,
                    "numerator": fig.numerator,
                    "denominator": fig.denominator,
                    "target": target,
                    "computed_at": ctx.now,
                }
            )
    upsert(
        session,
        KpiValue,
        rows,
        ["system", "kpi_id", "subject_kind", "subject_id", "period"],
        ["value", "numerator", "denominator", "target", "computed_at"],
    )
    gone = [k for k in existing if k not in fresh]
    for start in range(0, len(gone), 300):
        chunk = gone[start : start + 300]
        session.execute(
            delete(KpiValue).where(
                KpiValue.system == system,
                KpiValue.period == period,
                tuple_(KpiValue.kpi_id, KpiValue.subject_kind, KpiValue.subject_id).in_(chunk),
            )
        )
    return len(rows) + len(gone)


def scanned_figures(
    ctx: Context,
    plan: Mapping[str, Sequence[Kpi]],
    prefetched: Mapping[str, Mapping[str, Rows]],
    subjects: Subjects,
    figures_of: PeriodFigures = shared_figures,
) -> dict[str, KpiFigures]:
    """Figures of each period's KPIs of ``plan`` that were not prefetched, the periods scanning
    the same KPIs computed together (a year of months: one scan per source, not twelve)."""
    together: dict[tuple[str, ...], list[str]] = defaultdict(list)
    by_id: dict[str, Kpi] = {}
    for period, kpis in plan.items():
        rest = [k for k in kpis if prefetched.get(k.id, {}).get(period) is None]
        by_id.update((k.id, k) for k in rest)
        together[tuple(k.id for k in rest)].append(period)
    out: dict[str, KpiFigures] = {}
    for ids, periods in together.items():
        out.update(figures_of(ctx, [by_id[i] for i in ids], periods, subjects))
    return out


def explain_rows(ctx: Context, kpi: Kpi, period: str, person: str | None) -> list[EventRow]:
    """The events behind ``kpi``'s figure in ``period`` for ``person`` (``None``: everyone)."""
    q = event_query(ctx, kpi, period)
    if person is not None:
        sub = q.subquery("events")
        q = select(sub).where(sub.c.person == person)
    out = []
    obj = ctx.book.event_objects[kpi.id]
    for r in ctx.session.execute(q.order_by("at", "record_id")):
        n, d = measure(ctx, kpi, r)
        out.append(EventRow(r.record_id, obj, r.at, r.person, r.dept, n, d))
    return out


def touched_instants(ctx: Context, since: datetime) -> list[datetime]:
    """Times of events whose figures may have changed since ``since``: handoffs detected or
    judged, records synced (their handoffs and their dates), records pointing at those."""
    session, system = ctx.session, ctx.system
    out: list[datetime] = list(
        session.scalars(
            select(Handoff.handed_at).where(Handoff.system == system, Handoff.detected_at >= since)
        )
    )
    out += session.scalars(
        select(Handoff.handed_at)
        .join(Verdict, Verdict.handoff_id == Handoff.id)
        .where(Handoff.system == system, Verdict.evaluated_at >= since)
    )
    changed: dict[str, set[str]] = defaultdict(set)
    date_fields = {k.events.at for k in ctx.book.kpis.values() if k.events.at is not None} | {
        k.until for k in ctx.book.kpis.values() if k.until
    }
    for obj, rid, fields in session.execute(
        select(Record.object, Record.record_id, Record.fields).where(
            Record.system == system, Record.synced_at >= since
        )
    ):
        changed[obj].add(rid)
        for name in date_fields:
            at = _instant(fields.get(name)) if isinstance(fields.get(name), str) else None
            if at is not None:
                out.append(at)
        # A deal that changed can change its lead's conversion: follow its lookups back.
        for rel, lookup in ctx.config.related.get(obj, {}).items():
            if fields.get(lookup):
                changed[rel].add(str(fields[lookup]))
    # Records pointing at a changed record (a won deal's account churned).
    for obj, links in ctx.config.related.items():
        for rel, lookup in links.items():
            if changed.get(rel):
                ids = sorted(changed[rel])
                for start in range(0, len(ids), 500):
                    out_ids = session.scalars(
                        select(Record.record_id).where(
                            Record.system == system,
                            Record.object == obj,
                            text_field(Record, lookup).in_(ids[start : start + 500]),
                        )
                    )
                    changed[obj].update(out_ids)
    for obj, idset in changed.items():
        ids = sorted(idset)
        for start in range(0, len(ids), 500):
            out += session.scalars(
                select(Handoff.handed_at).where(
                    Handoff.system == system,
                    Handoff.object == obj,
                    Handoff.record_id.in_(ids[start : start + 500]),
                )
            )
    return out


def longest_window(book: KpiBook) -> timedelta:
    """The longest cohort window of any KPI: a conversion today changes figures that far back."""
    days = [
        c.within_days or 0
        for k in book.kpis.values()
        for c in (*k.where, *k.success)
        if c.reached is not None
    ]
    return timedelta(days=max(days, default=0))
