"""Raising alarms: each pair's two KPIs compared period over period, from ``kpi_values``.

For a pair of department D, every subject of the kinds the pair names is judged: D itself,
D's teams and D's people (their department as the store knows it now). A subject raises the
alarm when, from the previous period to the current one,

- its own KPI got better by at least ``own_improves_by`` (relative; "better" is lower for a KPI
  where lower is better, such as a duration), and
- its neighbour KPI got worse by at least ``neighbour_worsens_by``.

A count or sum with no events in a period is zero there; a ratio with no events is unknown and
not judged, nor is one resting on fewer than ``min_events`` events (its denominator) in either
period. From zero, any improvement counts as past the threshold. A period is judged once the
longest cohort window of the pair's KPIs has run out after it (:func:`settles_at`): until then
its newest events have not had their chance to succeed.

Stored idempotently: one row per (system, pair, subject, period), updated in place when the
figures move; an alarm that no longer holds when its period is evaluated again is removed.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tasuki import kpis
from tasuki.alarms.alarm import Alarm, raised
from tasuki.alarms.schema import AlarmBook, AlarmPair, alarm_book
from tasuki.errors import TasukiError
from tasuki.kpis.periods import bounds, containing, kind_of, period_of, previous
from tasuki.kpis.schema import Kpi, KpiBook, KpiKind
from tasuki.settings import Settings
from tasuki.store.db import Store
from tasuki.store.models import AlarmRow, KpiValue, Person
from tasuki.store.upsert import upsert


class AlarmPeriodError(TasukiError):
    """A period name tasuki cannot read (``2026-13``, ``Q3``)."""


@dataclass(frozen=True)
class Figure:
    """One KPI value of one subject in one period, with the number of events behind it."""

    value: float | None
    events: float | None


def check_period(period: str) -> str:
    """``period`` when it names a month, quarter or fiscal year; else :class:`AlarmPeriodError`."""
    try:
        kind_of(period)
    except ValueError as exc:
        raise AlarmPeriodError(str(exc)) from exc
    return period


def last_closed_period(settings: Settings, now: datetime | None = None) -> str:
    """The KPI book's period before the one ``now`` falls in (the last closed month, by
    default), in the company's timezone: a period still running is not compared with a whole
    one."""
    b = kpis.book(settings)
    tz = kpis.company_tz(settings)
    current = period_of(now or datetime.now(UTC), b.period, b.fiscal_year_start, tz)
    return previous(current, b.period, b.fiscal_year_start, tz)


def improvement(kpi: Kpi, before: float, after: float) -> float:
    """How much better ``after`` is than ``before``, relative to ``before`` (negative: worse);
    from zero, any change is infinitely large."""
    change = (before - after) if kpi.lower_is_better else (after - before)
    if before == 0:
        return 0.0 if change == 0 else math.copysign(math.inf, change)
    return change / abs(before)


def _no_events(kpi: Kpi) -> float | None:
    return 0.0 if kpi.kind in (KpiKind.COUNT, KpiKind.SUM) else None


def _judgeable(kpi: Kpi, figure: Figure | None, min_events: int) -> float | None:
    """The value to judge, or ``None`` when there is none or it rests on too few events."""
    if figure is None or figure.value is None:
        return _no_events(kpi)
    if kpi.is_ratio and (figure.events or 0) < min_events:
        return None
    return figure.value


def _value(
    figures: dict[tuple[str, str, str, str], Figure],
    kpi: Kpi,
    subject: tuple[str, str],
    period: str,
    min_events: int,
) -> float | None:
    """The subject's judgeable value of ``kpi`` in ``period`` (see :func:`_judgeable`)."""
    return _judgeable(kpi, figures.get((kpi.id, subject[0], subject[1], period)), min_events)


def _subjects(session: Session, system: str, pair: AlarmPair) -> list[tuple[str, str]]:
    """(kind, id) of every subject the pair judges, the department's people as known now."""
    out: list[tuple[str, str]] = []
    if "department" in pair.subjects:
        out.append(("department", pair.department))
    if "team" in pair.subjects or "person" in pair.subjects:
        people = session.execute(
            select(Person.user_id, Person.team).where(
                Person.system == system, Person.department == pair.department
            )
        ).all()
        if "team" in pair.subjects:
            out += [("team", t) for t in sorted({team for _, team in people if team})]
        if "person" in pair.subjects:
            out += [("person", user_id) for user_id, _ in people]
    return out


def _figures(
    session: Session, system: str, kpi_ids: Iterable[str], periods: Iterable[str]
) -> dict[tuple[str, str, str, str], Figure]:
    """(kpi, subject kind, subject id, period) → figure, for the KPIs and periods asked."""
    rows = session.execute(
        select(
            KpiValue.kpi_id,
            KpiValue.subject_kind,
            KpiValue.subject_id,
            KpiValue.period,
            KpiValue.value,
            KpiValue.denominator,
        ).where(
            KpiValue.system == system,
            KpiValue.kpi_id.in_(sorted(set(kpi_ids))),
            KpiValue.period.in_(sorted(set(periods))),
            KpiValue.subject_kind.in_(("department", "team", "person")),
        )
    ).all()
    return {(k, sk, sid, p): Figure(v, d) for k, sk, sid, p, v, d in rows}


def _periods(kb: KpiBook, pair: AlarmPair, period: str, settings: Settings) -> tuple[str, str]:
    """The pair's current and previous period for ``period`` (the one of its KPIs' kind that
    contains ``period``'s start)."""
    tz = kpis.company_tz(settings)
    kind = kb.period_kind(kb.kpis[pair.own])
    current = containing(period, kind, kb.fiscal_year_start, tz)
    return current, previous(current, kind, kb.fiscal_year_start, tz)


def settles_at(kb: KpiBook, pair: AlarmPair, period: str, settings: Settings) -> datetime:
    """When the pair's figures for ``period`` stop changing with the mere passage of time: the
    end of the pair's period plus the longest cohort window of its two KPIs (``success:
    {reached: IS→FS, within_days: 30}``: a lead handed over on the 30th has 30 days to become a
    meeting). Before then the newest cohort looks worse than it will be, and would raise a
    false alarm every month."""
    current, _ = _periods(kb, pair, period, settings)
    _, end = bounds(current, kb.fiscal_year_start, kpis.company_tz(settings))
    days = max(
        (
            c.within_days or 0
            for kpi in (kb.kpis[pair.own], kb.kpis[pair.neighbour])
            for c in kpi.success
            if c.reached is not None
        ),
        default=0,
    )
    return end + timedelta(days=days)


def unsettled(
    settings: Settings, period: str, now: datetime | None = None
) -> list[tuple[AlarmPair, datetime]]:
    """The pairs :func:`evaluate` does not judge yet for ``period`` at ``now``, each with when
    it will (see :func:`settles_at`)."""
    check_period(period)
    now = now or datetime.now(UTC)
    kb = kpis.book(settings)
    waiting = [
        (pair, settles_at(kb, pair, period, settings)) for pair in alarm_book(settings).pairs
    ]
    return [(pair, at) for pair, at in waiting if at > now]


def _row(
    system: str,
    pair: AlarmPair,
    own: Kpi,
    neighbour: Kpi,
    subject: tuple[str, str],
    periods: tuple[str, str],
    values: tuple[float, float, float, float],
    now: datetime,
) -> dict[str, object]:
    own_prev, own_cur, nb_prev, nb_cur = values
    return {
        "system": system,
        "pair_id": pair.id,
        "pair_label": pair.label[:200],
        "department": pair.department,
        "subject_kind": subject[0],
        "subject_id": subject[1],
        "period": periods[0],
        "previous_period": periods[1],
        "own_kpi_id": own.id,
        "own_label": own.label[:200],
        "own_is_ratio": own.is_ratio,
        "own_previous": own_prev,
        "own_current": own_cur,
        "own_threshold": pair.own_improves_by,
        "neighbour_kpi_id": neighbour.id,
        "neighbour_label": neighbour.label[:200],
        "neighbour_is_ratio": neighbour.is_ratio,
        "neighbour_previous": nb_prev,
        "neighbour_current": nb_cur,
        "neighbour_threshold": pair.neighbour_worsens_by,
        "raised_at": now,
    }


def judge(
    session: Session,
    settings: Settings,
    kb: KpiBook,
    book: AlarmBook,
    period: str,
    *,
    now: datetime,
) -> list[dict[str, object]]:
    """The rows of every alarm that holds for ``period`` on the stored KPI values (nothing is
    written)."""
    system = settings.config.crm
    plans = [(pair, _periods(kb, pair, period, settings)) for pair in book.pairs]
    figures = _figures(
        session,
        system,
        [k for pair in book.pairs for k in (pair.own, pair.neighbour)],
        [p for _, periods in plans for p in periods],
    )
    rows: list[dict[str, object]] = []
    for pair, (current, before) in plans:
        own, neighbour = kb.kpis[pair.own], kb.kpis[pair.neighbour]
        for kind, subject_id in _subjects(session, system, pair):
            subject = (kind, subject_id)
            own_prev = _value(figures, own, subject, before, pair.min_events)
            own_cur = _value(figures, own, subject, current, pair.min_events)
            nb_prev = _value(figures, neighbour, subject, before, pair.min_events)
            nb_cur = _value(figures, neighbour, subject, current, pair.min_events)
            if own_prev is None or own_cur is None or nb_prev is None or nb_cur is None:
                continue
            got_better = improvement(own, own_prev, own_cur)
            got_worse = -improvement(neighbour, nb_prev, nb_cur)
            if (
                got_better > 0
                and got_better >= pair.own_improves_by
                and (got_worse > 0 and got_worse >= pair.neighbour_worsens_by)
            ):
                rows.append(
                    _row(
                        system,
                        pair,
                        own,
                        neighbour,
                        (kind, subject_id),
                        (current, before),
                        (own_prev, own_cur, nb_prev, nb_cur),
                        now,
                    )
                )
    return rows


KEY = ["system", "pair_id", "subject_kind", "subject_id", "period"]
FIGURES = [
    "pair_label",
    "department",
    "previous_period",
    "own_kpi_id",
    "own_label",
    "own_is_ratio",
    "own_previous",
    "own_current",
    "own_threshold",
    "neighbour_kpi_id",
    "neighbour_label",
    "neighbour_is_ratio",
    "neighbour_previous",
    "neighbour_current",
    "neighbour_threshold",
]
"""What an evaluation updates in a stored alarm; ``raised_at`` stays when it was first raised."""


def store_alarms(
    session: Session,
    system: str,
    periods: Sequence[str],
    rows: Sequence[dict[str, object]],
    keep: Collection[str] = (),
) -> None:
    """Make the stored alarms of ``periods`` exactly ``rows``, except those of the pairs in
    ``keep`` (not judged this time); alarms of a pair since removed from the book go too."""
    upsert(session, AlarmRow, rows, KEY, FIGURES)
    holding = {tuple(r[k] for k in KEY) for r in rows}
    stored = session.execute(
        select(
            AlarmRow.id,
            AlarmRow.system,
            AlarmRow.pair_id,
            AlarmRow.subject_kind,
            AlarmRow.subject_id,
            AlarmRow.period,
        ).where(
            AlarmRow.system == system,
            AlarmRow.period.in_(list(periods)),
            AlarmRow.pair_id.not_in(list(keep)),
        )
    ).all()
    gone = [row_id for row_id, *key in stored if tuple(key) not in holding]
    if gone:
        session.execute(delete(AlarmRow).where(AlarmRow.id.in_(gone)))


def evaluate(
    store: Store,
    settings: Settings,
    period: str,
    *,
    now: datetime | None = None,
    compute: bool = True,
) -> list[Alarm]:
    """Raise and store the alarms of ``period`` (and return them, in :func:`raised`'s order).

    With ``compute``, the KPI values of ``period`` and the period before are recomputed first
    (:func:`tasuki.kpis.compute`); without, the stored values are used as they are. Running it
    twice stores nothing new; an alarm that no longer holds is removed. A pair whose cohort
    window has not yet run out (:func:`settles_at`, :func:`unsettled`) is not judged: its
    stored alarms, if any, stay as they are. Raises
    :class:`AlarmPeriodError` for a period name it cannot read and ConfigError for a wrong
    alarms or KPI file.
    """
    check_period(period)
    now = now or datetime.now(UTC)
    kb = kpis.book(settings)
    everything = alarm_book(settings)
    settled = tuple(p for p in everything.pairs if settles_at(kb, p, period, settings) <= now)
    book = AlarmBook(pairs=settled, file=everything.file)
    waiting = [p.id for p in everything.pairs if p not in settled]
    periods = sorted({p for pair in book.pairs for p in _periods(kb, pair, period, settings)})
    if compute and periods:
        kpis.compute(store, settings, now=now, periods=periods)
    current = sorted({_periods(kb, pair, period, settings)[0] for pair in book.pairs})
    system = settings.config.crm
    with store.session() as session:
        rows = judge(session, settings, kb, book, period, now=now)
        store_alarms(session, system, current, rows, keep=waiting)
    with store.session() as session:
        return [a for p in current for a in raised(session, p, system=system)]


def evaluate_recent(
    store: Store, settings: Settings, *, now: datetime | None = None, compute: bool = False
) -> list[Alarm]:
    """:func:`evaluate` the last two closed periods at ``now``: the one before the last is
    where pairs with a cohort window (MQL→meeting within 30 days) settle. What a nightly job
    calls after the KPIs of the closed period are recomputed (hence ``compute`` off)."""
    now = now or datetime.now(UTC)
    return [
        alarm
        for period in recent_periods(settings, now)
        for alarm in evaluate(store, settings, period, now=now, compute=compute)
    ]


def recent_periods(settings: Settings, now: datetime) -> tuple[str, str]:
    """The last two closed periods at ``now``, older first: those the nightly job evaluates
    and notifications send."""
    b = kpis.book(settings)
    last = last_closed_period(settings, now)
    return previous(last, b.period, b.fiscal_year_start, kpis.company_tz(settings)), last
