"""The KPI event query: one row per event a KPI counts, built in SQLAlchemy Core so the same
statement runs on SQLite and PostgreSQL (JSON fields read with ``fields[name].as_string()``).

A row carries the person the event is credited to, that person's department at the time when the
store knows it, the record, the event's time and its contribution to numerator and denominator.
:mod:`tasuki.kpis.engine` groups these rows into figures; ``kpi explain`` lists them as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    Select,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    null,
    or_,
    select,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.expression import FunctionElement

from tasuki.calendar import BusinessCalendar
from tasuki.kpis.periods import bounds
from tasuki.kpis.schema import Condition, Kpi, KpiBook, KpiKind
from tasuki.settings import Config
from tasuki.store.models import Handoff, Record, Transition, UTCDateTime, Verdict


class plus_days(FunctionElement[datetime]):
    """``instant + n days`` on either database (SQLite has no interval type)."""

    type = UTCDateTime()
    inherit_cache = True


@compiles(plus_days, "sqlite")
def _plus_days_sqlite(element: plus_days, compiler: Any, **kw: Any) -> str:
    instant, days = list(element.clauses)
    # The same text shape SQLAlchemy stores SQLite datetimes in, so comparisons stay textual.
    at, n = compiler.process(instant, **kw), compiler.process(days, **kw)
    return f"strftime('%Y-%m-%d %H:%M:%f000', {at}, '+' || {n} || ' days')"


@compiles(plus_days, "postgresql")
def _plus_days_pg(element: plus_days, compiler: Any, **kw: Any) -> str:
    instant, days = list(element.clauses)
    at, n = compiler.process(instant, **kw), compiler.process(days, **kw)
    return f"({at} + make_interval(days => {n}))"


@dataclass(frozen=True)
class EventRow:
    """One event behind a figure, as ``kpi explain`` lists it."""

    record_id: str
    object: str
    at: datetime | str | None
    person: str | None
    department: str | None
    numerator: float | None
    """What the event adds to the numerator (1/0 for rates, the amount for sums, hours for
    durations); ``None`` when it does not count (a pending SLA)."""
    denominator: float | None


@dataclass
class Context:
    """What every query of one computation needs."""

    session: Session
    config: Config
    book: KpiBook
    system: str
    now: datetime
    calendar: BusinessCalendar = field(init=False)

    def __post_init__(self) -> None:
        self.calendar = BusinessCalendar.from_config(self.config.calendar)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.config.calendar.timezone)

    def lookup(self, obj: str, related: str) -> str:
        """The field of ``obj`` that holds the id of its ``related`` record."""
        return self.config.related[obj][related]


def text_field(rec: Any, name: str) -> ColumnElement[str]:
    """A logical field of a record's JSON as text, the same on SQLite and PostgreSQL."""
    expr: ColumnElement[str] = rec.fields[name].as_string()
    return expr


def _number(rec: Any, name: str) -> ColumnElement[float]:
    return cast(func.nullif(text_field(rec, name), ""), Float)


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _text_in_period(s: ColumnElement[str], start: datetime, end: datetime, tz: ZoneInfo) -> Any:
    """An ISO text field (UTC instant, or a plain local date) inside [start, end)."""
    first, last = start.astimezone(tz).date().isoformat(), end.astimezone(tz).date().isoformat()
    return or_(
        and_(func.length(s) == 10, s >= first, s < last),
        and_(func.length(s) > 10, s >= _iso(start), s < _iso(end)),
    )


def _equals_any(s: ColumnElement[str], values: Sequence[str]) -> Any:
    expanded: list[str] = []
    for v in values:
        # JSON booleans read back as 'true' on PostgreSQL and '1' on SQLite.
        expanded += {"true": ["true", "1"], "false": ["false", "0"]}.get(v.lower(), [v])
    return s.in_(expanded)


class EventQuery:
    """Builds the event query of one KPI for one period: its :meth:`source` (the events) and,
    for any KPI counting the same events, who it credits, its conditions and its contribution
    (:class:`~tasuki.kpis.crossings.SharedScan` puts several KPIs on one source).

    ``splits`` cut ``[start, end)`` into consecutive periods read in one scan (a year of months):
    the latest crossing or change of a record is then taken in each period, and :attr:`bucket`
    says which period (0, 1, …) an event is in. Records dated by a field are read one period at
    a time (their many periods are grouped by :func:`~tasuki.kpis.engine.dated_rows`)."""

    def __init__(
        self,
        ctx: Context,
        kpi: Kpi,
        start: datetime,
        end: datetime,
        splits: Sequence[datetime] = (),
    ) -> None:
        self.ctx = ctx
        self.kpi = kpi
        self.start = start
        self.end = end
        self.splits = tuple(splits)
        if self.splits and kpi.events.records is not None:
            raise ValueError("records dated by a field are read one period at a time")
        self.bucket: ColumnElement[int] = literal(0, Integer)
        """The period (0, 1, … in ``splits`` order) of an event, set by :meth:`source`."""
        self.obj = ctx.book.event_objects[kpi.id]
        self.rec = aliased(Record, name="rec")
        self.handoff: Any = None
        self.ranked: Any = None
        """The columns of the ranked handoffs or changes (``None`` for dated records)."""
        self.at: ColumnElement[Any] = null()
        """The event's time, set by :meth:`source`."""
        self.related: dict[str, Any] = {}
        self.ctes: list[Any] = []
        self.event_source: tuple[Any, Any, Any, list[Any]] = (None, None, None, [])

    def build(self) -> Select[Any]:
        """The event rows of this query's KPI: person, dept, record_id, at, num, den, until."""
        kpi = self.kpi
        q = self.source()
        for c in kpi.where:
            q = q.where(self._condition(c, self.at))
        person, dept = self.credited(kpi)
        num, den = self.contribution(kpi)
        q = q.add_columns(
            person.label("person"),
            dept.label("dept"),
            self.rec.record_id.label("record_id"),
            self.at.label("at"),
            num.label("num"),
            den.label("den"),
            self.until(kpi).label("until"),
        )
        return self.joined(q)

    def source(self) -> Select[Any]:
        """The events of the period with no column yet: the latest crossing (or change) of each
        record joined to its record, or the records dated in the period. Every KPI counting the
        same events reads this one source (:mod:`tasuki.kpis.crossings`)."""
        ev = self.kpi.events
        rec = self.rec
        ctx = self.ctx
        rec_on = and_(
            rec.system == ctx.system,
            rec.object == self.obj,
            rec.deleted.is_(False),
        )
        if ev.handoffs is not None:
            ranked = (
                select(
                    Handoff.id,
                    Handoff.record_id,
                    Handoff.sender_id,
                    Handoff.receiver_id,
                    Handoff.sender_department,
                    Handoff.receiver_department,
                    Handoff.handed_at,
                    *self._ranks(Handoff.record_id, Handoff.handed_at, Handoff.id),
                )
                .where(*self._handoff_filters())
                .subquery("h")
            )
            h = self.handoff = self.ranked = ranked.c
            self.event_source = (Handoff, Handoff.handed_at, ranked.c.id, self._handoff_filters())
            q = select().select_from(ranked).join(rec, and_(rec_on, rec.record_id == h.record_id))
            self.at = h.handed_at
            if self.splits:
                self.bucket = h.bucket
            return q.where(h.latest)
        if ev.transitions is not None:
            ranked = (
                select(
                    Transition.id,
                    Transition.record_id,
                    Transition.at,
                    Transition.by,
                    *self._ranks(Transition.record_id, Transition.at, Transition.id),
                )
                .where(*self._transition_filters())
                .subquery("t")
            )
            t = self.ranked = ranked.c
            self.event_source = (Transition, Transition.at, ranked.c.id, self._transition_filters())
            q = select().select_from(ranked).join(rec, and_(rec_on, rec.record_id == t.record_id))
            self.at = t.at
            if self.splits:
                self.bucket = t.bucket
            return q.where(t.latest)
        assert ev.at is not None
        self.at = text_field(rec, ev.at)
        return select().select_from(rec).where(rec_on, _text_in_period(self.at, *self._span()))

    def _ranks(self, record_id: Any, at: Any, row_id: Any) -> list[ColumnElement[Any]]:
        """Whether each crossing (or change) is its record's latest in its period (``latest``),
        and with ``splits`` the period itself (``bucket``).

        ``latest`` is a boolean column, not a rank compared with 1 outside: PostgreSQL guesses
        that half the rows pass a boolean it has no statistics for, but only one in 200 for
        ``rn = 1``, and at that guess joined a year of crossings to their records one lookup at
        a time instead of in one hash or merge join."""
        order = (at.desc(), row_id.desc())
        if not self.splits:
            rn = func.row_number().over(partition_by=record_id, order_by=order)
            return [(rn == 1).label("latest")]
        bucket = case(
            *((at < split, i) for i, split in enumerate(self.splits)), else_=len(self.splits)
        )
        rn = func.row_number().over(partition_by=(bucket, record_id), order_by=order)
        return [bucket.label("bucket"), (rn == 1).label("latest")]

    def credited(self, kpi: Kpi) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
        """(person, department) an event of ``kpi`` counts for: a handoff's sender or receiver
        with the department it was detected in, a change's author or a user field of the
        record (department ``NULL``: read from memberships at the event's time)."""
        s = self.ranked
        if self.kpi.events.handoffs is not None and kpi.credit in ("sender", "receiver"):
            if kpi.credit == "sender":
                return s.sender_id, s.sender_department
            return s.receiver_id, s.receiver_department
        if self.kpi.events.transitions is not None and kpi.credit == "by":
            return s.by, null()
        return text_field(self.rec, kpi.credit), null()

    def until(self, kpi: Kpi) -> ColumnElement[Any]:
        """The field that stops the clock of a duration or an SLA (``NULL`` for other kinds)."""
        return text_field(self.rec, kpi.until) if kpi.until is not None else null()

    def where(self, kpi: Kpi) -> ColumnElement[bool] | None:
        """Whether an event of the source counts for ``kpi`` (``None``: every event does)."""
        if not kpi.where:
            return None
        return and_(*(self._condition(c, self.at) for c in kpi.where))

    def joined(self, q: Select[Any]) -> Select[Any]:
        """``q`` with the related records its conditions read, outer-joined."""
        for alias, on in self.related.values():
            q = q.outerjoin(alias, on)
        return q

    def _handoff_filters(self) -> list[Any]:
        return [
            Handoff.system == self.ctx.system,
            Handoff.boundary == self.kpi.events.handoffs,
            Handoff.handed_at >= self.start,
            Handoff.handed_at < self.end,
        ]

    def _transition_filters(self) -> list[Any]:
        ev = self.kpi.events
        assert ev.transitions is not None
        return [
            Transition.system == self.ctx.system,
            Transition.object == self.obj,
            Transition.field == ev.transitions.partition(".")[2],
            Transition.at >= self.start,
            Transition.at < self.end,
            *([Transition.new == ev.to] if ev.to is not None else []),
        ]

    def _span(self) -> tuple[datetime, datetime, ZoneInfo]:
        return self.start, self.end, self.ctx.tz

    def _related(self, name: str) -> Any:
        if name not in self.related:
            alias = aliased(Record, name=f"rel_{name}")
            on = and_(
                alias.system == self.ctx.system,
                alias.object == name,
                alias.deleted.is_(False),
                alias.record_id == text_field(self.rec, self.ctx.lookup(self.obj, name)),
            )
            self.related[name] = (alias, on)
        return self.related[name][0]

    def _condition(self, c: Condition, at: ColumnElement[Any]) -> ColumnElement[bool]:
        if c.field is not None:
            rec = self._related(c.related) if c.related is not None else self.rec
            s = text_field(rec, c.field)
            if c.equals is not None:
                return and_(s.is_not(None), _equals_any(s, [c.equals]))
            if c.in_ is not None:
                return and_(s.is_not(None), _equals_any(s, c.in_))
            if c.not_in is not None:
                return or_(s.is_(None), ~_equals_any(s, c.not_in))
            is_set = and_(s.is_not(None), s != "")
            return is_set if c.is_set else ~is_set
        if c.verdict is not None:
            h = self.handoff
            judged: ColumnElement[bool] = exists().where(
                Verdict.handoff_id == h.id, Verdict.outcome == c.verdict
            )
            return judged
        assert c.reached is not None
        reached: ColumnElement[bool] = self._reached(c.reached, c.within_days, at)
        return reached

    def _reached(self, boundary: str, days: int | None, at: ColumnElement[Any]) -> Any:
        """The event's record, or a record whose lookup points at it, crossed ``boundary`` at
        or after the event (and within ``days`` of it)."""
        ctx = self.ctx
        target = next((b.object for b in ctx.config.boundaries if b.id == boundary), None)
        if target is None:
            return literal(False)
        timed = self.kpi.events.records is None
        h2 = aliased(Handoff, name="reached")
        if target == self.obj:
            # The unique index on handoffs (system, boundary, record_id, handed_at) answers this.
            conds: list[Any] = [
                h2.system == ctx.system,
                h2.boundary == boundary,
                h2.record_id == self.rec.record_id,
            ]
            if timed:
                conds.append(h2.handed_at >= at)
                if days is not None:
                    conds.append(h2.handed_at < plus_days(at, literal(days)))
            return select(h2.id).where(*conds).exists()
        # A record pointing at ours (a deal's lead_id): no index can serve a JSON lookup, so the
        # crossings of the period's reach are materialised once as (target id, time) and probed
        # (both databases hash or auto-index the materialised table).
        r2 = aliased(Record, name="reached_rec")
        window = [h2.system == ctx.system, h2.boundary == boundary]
        if timed:
            window.append(h2.handed_at >= self.start)
            if days is not None:
                window.append(h2.handed_at < self.end + timedelta(days=days))
        reach = (
            select(
                text_field(r2, ctx.lookup(target, self.obj)).label("target_id"),
                h2.handed_at.label("reached_at"),
            )
            .join(
                r2,
                and_(
                    r2.system == h2.system,
                    r2.object == target,
                    r2.record_id == h2.record_id,
                    r2.deleted.is_(False),
                ),
            )
            .where(*window)
            .cte(f"reach_{len(self.ctes)}")
            .prefix_with("MATERIALIZED")
        )
        self.ctes.append(reach)
        if not timed:
            return self.rec.record_id.in_(select(reach.c.target_id))
        # Uncorrelated on purpose: the events that reached in time are found in one join and
        # probed by id (a correlated probe re-built SQLite's automatic index for every event).
        model, event_at, event_id, filters = self.event_source
        window_ok = [reach.c.reached_at >= event_at]
        if days is not None:
            window_ok.append(reach.c.reached_at < plus_days(event_at, literal(days)))
        hits = (
            select(model.id)
            .join(reach, reach.c.target_id == model.record_id)
            .where(*filters, *window_ok)
        )
        return event_id.in_(hits)

    def contribution(self, kpi: Kpi) -> tuple[ColumnElement[Any], Any]:
        """What an event adds to ``kpi``'s numerator and denominator."""
        kind, at = kpi.kind, self.at
        one = literal(1.0, Float)
        if kind == KpiKind.COUNT:
            return one, one
        if kind == KpiKind.SUM:
            assert kpi.value is not None
            return func.coalesce(_number(self.rec, kpi.value), 0.0), one
        if kind == KpiKind.RATE:
            hit = and_(*(self._condition(c, at) for c in kpi.success))
            return case((hit, 1.0), else_=0.0), one
        if kind == KpiKind.HANDOFF_PASS_RATE:
            h = self.handoff
            passed = exists().where(Verdict.handoff_id == h.id, Verdict.outcome.in_(kpi.passing))
            return case((passed, 1.0), else_=0.0), one
        return null(), one  # duration, sla: measured in Python from ``at`` and ``until``


def event_query(ctx: Context, kpi: Kpi, period: str) -> Select[Any]:
    """One row per event of ``kpi`` in ``period``: person, dept, record_id, at, num, den, until."""
    start, end = bounds(period, ctx.book.fiscal_year_start, ctx.tz)
    return EventQuery(ctx, kpi, start, end).build()
