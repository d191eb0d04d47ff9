"""One scan of a period's events shared by every KPI that counts them.

Most KPIs of a book count the same events: the default set reads each boundary's latest crossings
four times (a count, a rate, a pass rate and a duration or SLA of ``MK→IS``). Each of those once
ran its own ranked query over the handoffs of the period, joined to the records; at a million
records the scans, not the arithmetic, were the cost. :class:`SharedScan` builds **one**
statement per source (a boundary's handoffs, a field's changes or an object's dated records) and
period, and every KPI of that source becomes a few columns of it:

- counts, sums, rates and pass rates are summed in SQL, each KPI as a pair of columns (events it
  counts, what they add to the numerator: ``CASE WHEN <its where> THEN … ELSE 0 END``), grouped
  by the person credited (one branch per credit: sender, receiver, a user field) and, for people
  whose team or department changed during the period, by the event's time;
- durations and SLAs need each event's clock (business hours are measured in Python), so the
  same scan also yields one row per event for them.

The crossings are materialised once and every branch of the ``UNION ALL`` reads them.

A scan reads a run of consecutive periods at once (:class:`Span`: the twelve months of a year
recomputed, the current and the previous month): the latest crossing of a record is taken in
each period and every row says which period it belongs to, so the crossings of a year, the
cohort windows ``reached`` probes and the records behind them are read in one pass instead of
one per period (the windows of consecutive months overlap by as long as they are).

The semantics are exactly those of the per-KPI :class:`~tasuki.kpis.query.EventQuery` (same
source, same conditions, same contributions); ``tests/kpis`` compares both on every KPI.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Float,
    Integer,
    Select,
    String,
    and_,
    case,
    cast,
    func,
    literal,
    null,
    or_,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.sql.sqltypes import NullType

from tasuki.kpis.query import Context, EventQuery
from tasuki.kpis.schema import Events, Kpi, KpiKind
from tasuki.store.models import UTCDateTime

TIMED_KINDS = (KpiKind.DURATION, KpiKind.SLA)
"""Kinds measured event by event in Python (business hours), not summed in SQL."""


def source_key(ctx: Context, kpi: Kpi) -> tuple[Events, str]:
    """What identifies a KPI's events: KPIs with the same key share one scan per run of
    consecutive periods."""
    return kpi.events, ctx.book.event_objects[kpi.id]


@dataclass(frozen=True)
class Span:
    """One period a shared scan reads: ``[start, end)`` and the people whose team or department
    changed inside it (their events are placed one by one)."""

    start: datetime
    end: datetime
    movers: frozenset[str]


@dataclass(frozen=True)
class Layout:
    """What a row of the shared statement holds, by position (the rows of a large period are
    read without a mapping per row): ``(timed, credit, period, person, dept, when, at, …)``,
    then an (events, numerator) pair per summed KPI and a (counts, until) pair per timed KPI.

    A row is one group of events for the summed KPIs crediting ``credits[credit]`` (``timed``
    0), or one event for the timed KPIs crediting it (``timed`` 1), in the scan's ``period``-th
    span. ``when`` is the event's time when its person moved during that period (their events
    are placed one by one), else ``NULL``; ``when`` and ``at`` come as the driver reads them.
    """

    credits: tuple[str, ...]
    """The distinct credits of the KPIs (``sender``, ``receiver``, ``by``, a user field)."""
    summed: tuple[Kpi, ...]
    timed: tuple[Kpi, ...]

    AT = 6
    """Position of the event's time (rows of timed KPIs)."""

    def summed_of(self, credit: int) -> list[tuple[Kpi, int, int]]:
        """The summed KPIs crediting ``credits[credit]``, with the positions of their number of
        events and their numerator."""
        first = self.AT + 1
        return [
            (k, first + 2 * i, first + 2 * i + 1)
            for i, k in enumerate(self.summed)
            if k.credit == self.credits[credit]
        ]

    def timed_of(self, credit: int) -> list[tuple[Kpi, int, int]]:
        """The timed KPIs crediting ``credits[credit]``, with the positions of whether the
        event counts for them (their ``where``) and of the time that stops their clock."""
        first = self.AT + 1 + 2 * len(self.summed)
        return [
            (k, first + 2 * i, first + 2 * i + 1)
            for i, k in enumerate(self.timed)
            if k.credit == self.credits[credit]
        ]


def _raw(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """``column`` read as the driver returns it (SQLite's text, PostgreSQL's naive UTC datetime):
    the engine turns the times it needs into instants itself, and SQLAlchemy's processing of
    every time of a year's crossings cost more than the business-hours arithmetic."""
    return type_coerce(column, NullType())


class SharedScan:
    """The one statement reading the events of consecutive periods (``spans``, each starting
    where the one before ends) for ``kpis`` (all of the same :func:`source_key`); its rows are
    read with :attr:`layout`."""

    def __init__(self, ctx: Context, kpis: Sequence[Kpi], spans: Sequence[Span]) -> None:
        if len({source_key(ctx, k) for k in kpis}) != 1:
            raise ValueError("a shared scan reads the events of one source")
        if not spans or any(a.end != b.start for a, b in zip(spans, spans[1:], strict=False)):
            raise ValueError("a shared scan reads consecutive periods")
        self.layout = Layout(
            credits=tuple(dict.fromkeys(k.credit for k in kpis)),
            summed=tuple(k for k in kpis if k.kind not in TIMED_KINDS),
            timed=tuple(k for k in kpis if k.kind in TIMED_KINDS),
        )
        splits = [s.end for s in spans[:-1]]
        self.events = EventQuery(ctx, kpis[0], spans[0].start, spans[-1].end, splits)
        self.spans = tuple(spans)

    def statement(self) -> Select[Any] | CompoundSelect[Any]:
        """The crossings (or changes, or dated records) of the period with every KPI's columns,
        read once; then one branch per credit: its summed KPIs grouped by person, its timed
        KPIs event by event."""
        ev, lay = self.events, self.layout
        base = ev.source()
        by_credit = {k.credit: k for k in (*lay.summed, *lay.timed)}
        columns: list[ColumnElement[Any]] = []
        for i, credit in enumerate(lay.credits):
            person, dept = ev.credited(by_credit[credit])
            columns += [person.label(f"p{i}"), dept.label(f"d{i}")]
            columns.append(self._when(person, ev.at).label(f"w{i}"))
        columns.append(ev.at.label("at"))
        columns.append(ev.bucket.label("period"))
        one = literal(1, Integer)
        for i, kpi in enumerate(lay.summed):
            where = ev.where(kpi)
            num, _ = ev.contribution(kpi)
            columns.append((one if where is None else case((where, 1), else_=0)).label(f"c{i}"))
            columns.append((num if where is None else case((where, num), else_=0.0)).label(f"n{i}"))
        for i, kpi in enumerate(lay.timed):
            where = ev.where(kpi)
            columns.append((one if where is None else case((where, 1), else_=0)).label(f"f{i}"))
            columns.append(ev.until(kpi).label(f"u{i}"))
        events = ev.joined(base.add_columns(*columns))
        groups = [(i, lay.summed_of(i), lay.timed_of(i)) for i in range(len(lay.credits))]
        n_branches = sum(bool(s) + bool(t) for _, s, t in groups)
        # Several branches read the same materialised crossings: the source is scanned once.
        shared = (
            events.cte("crossings").prefix_with("MATERIALIZED")
            if n_branches > 1
            else events.subquery("crossings")
        )
        c = shared.c
        # Typed NULLs: PostgreSQL types the branches of a UNION pair by pair, and two bare NULLs
        # become text that a later branch's number cannot join.
        no_time = cast(null(), UTCDateTime())
        no_sum: list[ColumnElement[Any]] = [cast(null(), Integer), cast(null(), Float)]
        no_clock: list[ColumnElement[Any]] = [cast(null(), Integer), cast(null(), String)]
        branches: list[Select[Any]] = []
        for i, summed, timed in groups:
            keys = [c.period, c[f"p{i}"], c[f"d{i}"], _raw(c[f"w{i}"])]
            if summed:
                mine = {k.id for k, _, _ in summed}
                sums: list[ColumnElement[Any]] = []
                for j, kpi in enumerate(lay.summed):
                    if kpi.id in mine:
                        sums += [func.sum(c[f"c{j}"]), func.sum(c[f"n{j}"])]
                    else:
                        sums += no_sum
                sums += no_clock * len(lay.timed)
                head = [literal(0, Integer), literal(i, Integer), *keys, _raw(no_time)]
                branches.append(select(*head, *sums).group_by(*keys))
            if timed:
                mine = {k.id for k, _, _ in timed}
                values: list[ColumnElement[Any]] = no_sum * len(lay.summed)
                flags = []
                for j, kpi in enumerate(lay.timed):
                    if kpi.id in mine:
                        values += [c[f"f{j}"], c[f"u{j}"]]
                        flags.append(c[f"f{j}"] == 1)
                    else:
                        values += no_clock
                head = [literal(1, Integer), literal(i, Integer), *keys, _raw(c.at)]
                branches.append(select(*head, *values).where(or_(*flags)))
        return branches[0] if len(branches) == 1 else union_all(*branches)

    def _when(self, person: ColumnElement[Any], at: ColumnElement[Any]) -> ColumnElement[Any]:
        """The event's time for a person who moved during the event's period; ``NULL`` for
        everyone else, whose membership held all period long."""
        moved = [
            person.in_(sorted(s.movers))
            if len(self.spans) == 1
            else and_(self.events.bucket == i, person.in_(sorted(s.movers)))
            for i, s in enumerate(self.spans)
            if s.movers
        ]
        if not moved:
            return cast(null(), at.type)
        return case((or_(*moved), at), else_=null())
