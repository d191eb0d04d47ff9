"""The console's figures for one period, read from the store with grouped, indexed queries.

Every query is bounded by the ``(boundary, handed_at)`` index of ``handoffs`` (or reads the
stored ``kpi_values``): a page costs a few statements whatever the size of the store, and no
page loads every record into Python. Times to accept read one pair of instants per handoff of
the period and boundary, never the records' whole fields.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from rules.values import to_instant
from tasuki.calendar import BusinessCalendar
from tasuki.meeting.answer import AnswerSla
from tasuki.store.models import Handoff, Person, Record, Verdict, Violation

FUNNEL = ("MK→IS", "IS→FS", "FS→CS")
"""The boundaries of The Model's relay, in order: MK hands to IS, IS to FS, FS to CS."""
TOP_VIOLATIONS = 5
"""Violations listed per boundary."""
OUTCOMES = ("passed", "warned", "failed")


@dataclass
class Tally:
    """Handoffs and how they fared."""

    handoffs: int = 0
    passed: int = 0
    warned: int = 0
    failed: int = 0

    @property
    def unjudged(self) -> int:
        """Handoffs with no verdict yet."""
        return self.handoffs - self.judged

    @property
    def judged(self) -> int:
        """Handoffs with a verdict."""
        return self.passed + self.warned + self.failed

    @property
    def pass_rate(self) -> float | None:
        """Share of judged handoffs that passed (warned ones count as passed)."""
        return None if self.judged == 0 else (self.passed + self.warned) / self.judged

    def add(self, outcome: str | None, n: int) -> None:
        """Count ``n`` handoffs of ``outcome`` (``None``: not judged yet)."""
        self.handoffs += n
        if outcome in OUTCOMES:
            setattr(self, outcome, getattr(self, outcome) + n)


@dataclass
class Breakdown:
    """One sender or receiver (a person, team or department) at a boundary."""

    kind: str
    """``person``, ``team`` or ``department``."""
    key: str
    """The person's CRM user id, the team's or the department's name."""
    name: str
    tally: Tally = field(default_factory=Tally)


@dataclass
class BoundaryFigures:
    """One boundary over one period."""

    boundary: str
    tally: Tally = field(default_factory=Tally)
    records: int = 0
    """Distinct records handed over (a record handed twice counts once)."""
    sla_rules: tuple[str, ...] = ()
    sla_broken: int = 0
    """Judged handoffs that broke one of ``sla_rules``."""
    accept_hours: list[float] = field(default_factory=list)
    """Business hours from handoff to the receiver's answer, of answered handoffs, sorted."""
    top_violations: list[tuple[str, str, int]] = field(default_factory=list)
    """(rule id, a message of it, count), most frequent first."""
    senders: list[Breakdown] = field(default_factory=list)
    receivers: list[Breakdown] = field(default_factory=list)

    @property
    def sla_attainment(self) -> float | None:
        """Share of judged handoffs that kept every SLA rule of the boundary (``None`` when the
        boundary has no SLA rule or nothing was judged)."""
        if not self.sla_rules or self.tally.judged == 0:
            return None
        return 1 - self.sla_broken / self.tally.judged

    @property
    def accept_median(self) -> float | None:
        """Median business hours to the receiver's answer."""
        return percentile(self.accept_hours, 0.5)

    @property
    def accept_p90(self) -> float | None:
        """90th percentile of business hours to the receiver's answer."""
        return percentile(self.accept_hours, 0.9)


def percentile(values: Sequence[float], share: float) -> float | None:
    """The nearest-rank percentile of sorted ``values`` (``None`` when empty)."""
    if not values:
        return None
    rank = max(1, -(-len(values) * share // 1))  # ceil without floats drifting
    return values[int(rank) - 1]


def _in_period(system: str, start: datetime, end: datetime) -> list[object]:
    return [Handoff.system == system, Handoff.handed_at >= start, Handoff.handed_at < end]


def tallies(
    session: Session, system: str, boundaries: Sequence[str], start: datetime, end: datetime
) -> dict[str, Tally]:
    """Each boundary's handoffs made in ``[start, end)`` by verdict outcome (config order).

    One statement per boundary, so each is a range of the ``(boundary, handed_at)`` index."""
    out = {b: Tally() for b in boundaries}
    for b in boundaries:
        rows = session.execute(
            select(Verdict.outcome, func.count())
            .select_from(Handoff)
            .outerjoin(Verdict, Verdict.handoff_id == Handoff.id)
            .where(Handoff.boundary == b, *_in_period(system, start, end))  # type: ignore[arg-type]
            .group_by(Verdict.outcome)
        )
        for outcome, n in rows:
            out[b].add(outcome, int(n))
    return out


def records_handed(
    session: Session, system: str, start: datetime, end: datetime, boundaries: Sequence[str]
) -> dict[str, int]:
    """Distinct records handed over each of ``boundaries`` in ``[start, end)``."""
    return {
        b: int(
            session.scalar(
                select(func.count(func.distinct(Handoff.record_id))).where(
                    Handoff.boundary == b,
                    *_in_period(system, start, end),  # type: ignore[arg-type]
                )
            )
            or 0
        )
        for b in boundaries
    }


def trend(
    session: Session,
    system: str,
    boundaries: Sequence[str],
    spans: Sequence[tuple[datetime, datetime]],
) -> list[tuple[dict[str, int], dict[str, Tally]]]:
    """For each of the contiguous, ascending ``spans``: the records handed over each boundary
    and its :class:`Tally`. Two statements per boundary whatever the number of spans: each
    handoff is put in its span by a ``CASE`` on ``handed_at``, over one range of the
    ``(boundary, handed_at)`` index."""
    out: list[tuple[dict[str, int], dict[str, Tally]]] = [
        ({b: 0 for b in boundaries}, {b: Tally() for b in boundaries}) for _ in spans
    ]
    if not spans:
        return out
    bucket = case(
        *((Handoff.handed_at < end, i) for i, (_, end) in enumerate(spans)), else_=len(spans)
    ).label("bucket")
    for b in boundaries:
        where = _in_period(system, spans[0][0], spans[-1][1])
        rows = session.execute(
            select(bucket, Verdict.outcome, func.count())
            .select_from(Handoff)
            .outerjoin(Verdict, Verdict.handoff_id == Handoff.id)
            .where(Handoff.boundary == b, *where)  # type: ignore[arg-type]
            .group_by(bucket, Verdict.outcome)
        )
        for i, outcome, n in rows:
            if 0 <= i < len(spans):
                out[i][1][b].add(outcome, int(n))
        counted = session.execute(
            select(bucket, func.count(func.distinct(Handoff.record_id)))
            .where(Handoff.boundary == b, *where)  # type: ignore[arg-type]
            .group_by(bucket)
        )
        for i, n in counted:
            if 0 <= i < len(spans):
                out[i][0][b] = int(n)
    return out


def names(session: Session, system: str, user_ids: Iterable[str]) -> dict[str, Person]:
    """The people of ``user_ids`` (500 to a query)."""
    ids = sorted(set(user_ids))
    found: dict[str, Person] = {}
    for i in range(0, len(ids), 500):
        for p in session.scalars(
            select(Person).where(Person.system == system, Person.user_id.in_(ids[i : i + 500]))
        ):
            found[p.user_id] = p
    return found


def _breakdowns(
    session: Session,
    system: str,
    boundary: str,
    start: datetime,
    end: datetime,
    side: str,
) -> list[Breakdown]:
    person_col = Handoff.sender_id if side == "sender" else Handoff.receiver_id
    dept_col = Handoff.sender_department if side == "sender" else Handoff.receiver_department
    rows = session.execute(
        select(person_col, dept_col, Verdict.outcome, func.count())
        .select_from(Handoff)
        .outerjoin(Verdict, Verdict.handoff_id == Handoff.id)
        .where(*_in_period(system, start, end), Handoff.boundary == boundary)  # type: ignore[arg-type]
        .group_by(person_col, dept_col, Verdict.outcome)
    ).all()
    people = names(session, system, (r[0] for r in rows if r[0]))
    by: dict[tuple[str, str], Breakdown] = {}
    for user_id, dept, outcome, n in rows:
        person = people.get(user_id or "")
        shown = person.name if person and person.name else (user_id or "—")
        keys = [("person", user_id or "", shown), ("department", dept, dept)]
        if person and person.team:
            keys.append(("team", person.team, person.team))
        for kind, key, name in keys:
            entry = by.setdefault((kind, key), Breakdown(kind, key, name))
            entry.tally.add(outcome, int(n))
    order = {"department": 0, "team": 1, "person": 2}
    return sorted(by.values(), key=lambda b: (order[b.kind], -b.tally.handoffs, b.name))


def _accept_hours(
    session: Session,
    system: str,
    boundary: str,
    start: datetime,
    end: datetime,
    sla: AnswerSla,
    calendar: BusinessCalendar,
) -> list[float]:
    obj = sla.check.end.field.object if sla.check.end.field else ""
    answered = Record.fields[sla.end_field].as_string()
    rows = session.execute(
        select(Handoff.handed_at, answered)
        .join(
            Record,
            and_(
                Record.system == Handoff.system,
                Record.object == Handoff.object,
                Record.record_id == Handoff.record_id,
            ),
        )
        .where(
            *_in_period(system, start, end),  # type: ignore[arg-type]
            Handoff.boundary == boundary,
            Handoff.object == obj,
            answered.is_not(None),
        )
    )
    within = sla.check.within
    hours = []
    for handed_at, value in rows:
        try:
            done = to_instant(value, calendar)
        except ValueError:
            continue  # an unreadable instant is the rules' business, not a figure
        if done is None or done < handed_at:
            continue
        seconds = within.elapsed(calendar, handed_at.timestamp(), done.timestamp())
        hours.append(seconds / 3600)
    return sorted(hours)


def boundary_figures(
    session: Session,
    system: str,
    boundaries: Sequence[str],
    start: datetime,
    end: datetime,
    *,
    sla_rules: Mapping[str, Sequence[str]],
    answer_slas: Mapping[str, AnswerSla],
    calendar: BusinessCalendar,
) -> list[BoundaryFigures]:
    """Every boundary over ``[start, end)``: verdicts, SLA attainment, time to accept, the most
    common violations and the breakdown by sender and receiver (config order)."""
    tally = tallies(session, system, boundaries, start, end)
    records = records_handed(session, system, start, end, boundaries)
    out = {
        b: BoundaryFigures(b, t, records.get(b, 0), tuple(sla_rules.get(b, ())))
        for b, t in tally.items()
    }
    for b, figures in out.items():
        counted = session.execute(
            select(Violation.rule_id, func.max(Violation.message), func.count())
            .select_from(Handoff)
            .join(Verdict, Verdict.handoff_id == Handoff.id)
            .join(Violation, Violation.verdict_id == Verdict.id)
            .where(Handoff.boundary == b, *_in_period(system, start, end))  # type: ignore[arg-type]
            .group_by(Violation.rule_id)
            .order_by(func.count().desc(), Violation.rule_id)
            .limit(TOP_VIOLATIONS)
        )
        figures.top_violations = [(rule, message, int(n)) for rule, message, n in counted]
    for b, figures in out.items():
        if figures.sla_rules:
            figures.sla_broken = int(
                session.scalar(
                    select(func.count(func.distinct(Verdict.id)))
                    .select_from(Handoff)
                    .join(Verdict, Verdict.handoff_id == Handoff.id)
                    .join(Violation, Violation.verdict_id == Verdict.id)
                    .where(
                        *_in_period(system, start, end),  # type: ignore[arg-type]
                        Handoff.boundary == b,
                        Violation.rule_id.in_(figures.sla_rules),
                    )
                )
                or 0
            )
        if b in answer_slas:
            figures.accept_hours = _accept_hours(
                session, system, b, start, end, answer_slas[b], calendar
            )
        figures.senders = _breakdowns(session, system, b, start, end, "sender")
        figures.receivers = _breakdowns(session, system, b, start, end, "receiver")
    return list(out.values())


@dataclass(frozen=True)
class FunnelStep:
    """One stage of the relay: records handed over a boundary, and the share of the previous
    stage's volume that this is (``None`` for the first stage or after an empty one)."""

    boundary: str
    records: int
    conversion: float | None


def funnel(records: Mapping[str, int], boundaries: Sequence[str]) -> list[FunnelStep]:
    """The relay MK→IS→FS→CS among the configured ``boundaries``, from ``records`` handed."""
    steps: list[FunnelStep] = []
    for b in FUNNEL:
        if b not in boundaries:
            continue
        n = records.get(b, 0)
        before = steps[-1].records if steps else 0
        steps.append(FunnelStep(b, n, n / before if before else None))
    return steps
