"""KPI computation from the store: handoffs of a period, credited per person, rolled up.

First version: handoffs of the period are read once per boundary with their records, related
records and verdicts, and counted in Python. Values are kept per person, department and org in
``kpi_values``; a figure is rewritten only when it changed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from tasuki.kpis.periods import bounds
from tasuki.kpis.schema import Kpi, KpiBook
from tasuki.settings import Config
from tasuki.store.models import Handoff, KpiValue, Person, Record
from tasuki.store.upsert import upsert

ORG = "org"


@dataclass(frozen=True)
class Figure:
    """One KPI's value for one subject: numerator / denominator for a rate."""

    value: float | None
    numerator: float
    denominator: float


def _records(session: Session, system: str, obj: str, ids: set[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    id_list = sorted(ids)
    for i in range(0, len(id_list), 500):
        for r in session.scalars(
            select(Record).where(
                Record.system == system,
                Record.object == obj,
                Record.record_id.in_(id_list[i : i + 500]),
                Record.deleted.is_(False),
            )
        ):
            out[r.record_id] = r.fields
    return out


def _reached(session: Session, config: Config, system: str, obj: str, boundary: str) -> set[str]:
    """Ids of ``obj`` records that went on to cross ``boundary`` (directly or via a lookup)."""
    target = next(b for b in config.boundaries if b.id == boundary)
    ids = set(
        session.scalars(
            select(Handoff.record_id).where(Handoff.system == system, Handoff.boundary == boundary)
        )
    )
    if target.object == obj:
        return ids
    lookup = config.related.get(target.object, {}).get(obj)
    if lookup is None:
        return set()
    return {
        str(f[lookup])
        for f in _records(session, system, target.object, ids).values()
        if f.get(lookup)
    }


def _success(
    kpi: Kpi,
    h: Handoff,
    fields: dict[str, Any],
    related: dict[str, dict[str, dict[str, Any]]],
    reached: set[str],
    config: Config,
) -> bool:
    w = kpi.where
    assert w is not None
    if w.became is not None:
        return h.record_id in reached
    if w.verdict is not None:
        return h.verdict is not None and h.verdict.outcome == w.verdict
    source = fields
    if w.related is not None:
        lookup = config.related.get(h.object, {}).get(w.related)
        rel_id = fields.get(lookup) if lookup else None
        source = related.get(w.related, {}).get(str(rel_id), {}) if rel_id else {}
    return str(source.get(w.field or "")) == w.equals


def figures(
    session: Session, config: Config, system: str, kpi: Kpi, start: datetime, end: datetime
) -> dict[str, Figure]:
    """``kpi`` per credited person id for handoffs in [start, end)."""
    handoffs = session.scalars(
        select(Handoff)
        .options(selectinload(Handoff.verdict))
        .where(
            Handoff.system == system,
            Handoff.boundary == kpi.boundary.replace("->", "→"),
            Handoff.handed_at >= start,
            Handoff.handed_at < end,
        )
    ).all()
    obj = handoffs[0].object if handoffs else ""
    fields = _records(session, system, obj, {h.record_id for h in handoffs}) if handoffs else {}
    related: dict[str, dict[str, dict[str, Any]]] = {}
    if kpi.where and kpi.where.related:
        lookup = config.related.get(obj, {}).get(kpi.where.related, "")
        rel_ids = {str(f[lookup]) for f in fields.values() if f.get(lookup)}
        related[kpi.where.related] = _records(session, system, kpi.where.related, rel_ids)
    reached = (
        _reached(session, config, system, obj, kpi.where.became)
        if kpi.where and kpi.where.became
        else set()
    )
    num: dict[str, float] = defaultdict(float)
    den: dict[str, float] = defaultdict(float)
    for h in handoffs:
        person = h.sender_id if kpi.credit == "sender" else h.receiver_id
        if person is None or h.record_id not in fields:
            continue  # deleted records no longer count
        f = fields[h.record_id]
        den[person] += 1
        if kpi.kind == "count":
            num[person] += 1
        elif kpi.kind == "sum":
            try:
                num[person] += float(f.get(kpi.field or "") or 0)
            except (TypeError, ValueError):
                pass
        elif _success(kpi, h, f, related, reached, config):
            num[person] += 1
    out = {}
    for person in den:
        value = num[person] / den[person] if kpi.kind == "rate" else num[person]
        out[person] = Figure(value, num[person], den[person])
    return out


def roll_up(
    kpi: Kpi, per_person: dict[str, Figure], depts: dict[str, str | None]
) -> dict[tuple[str, str], Figure]:
    """Per-person figures plus department and org totals, keyed (subject kind, subject id)."""
    out: dict[tuple[str, str], Figure] = {("person", p): f for p, f in per_person.items()}
    groups: dict[tuple[str, str], list[Figure]] = defaultdict(list)
    for person, fig in per_person.items():
        groups[("org", ORG)].append(fig)
        if depts.get(person):
            groups[("department", str(depts[person]))].append(fig)
    for key, figs in groups.items():
        n = sum(f.numerator for f in figs)
        d = sum(f.denominator for f in figs)
        value = (n / d if d else None) if kpi.kind == "rate" else n
        out[key] = Figure(value, n, d)
    return out


def compute_period(
    session: Session, config: Config, system: str, book: KpiBook, period: str
) -> int:
    """Recompute every KPI for ``period``; returns how many stored values changed."""
    tz = ZoneInfo(config.calendar.timezone)
    start, end = bounds(period, book.fiscal_year_start, tz)
    depts = dict(
        session.execute(
            select(Person.user_id, Person.department).where(Person.system == system)
        ).all()
    )
    existing = {
        (v.kpi_id, v.subject_kind, v.subject_id): (v.value, v.numerator, v.denominator)
        for v in session.scalars(
            select(KpiValue).where(KpiValue.system == system, KpiValue.period == period)
        )
    }
    rows = []
    for kpi in book.kpis.values():
        per_person = figures(session, config, system, kpi, start, end)
        for (kind, subject), fig in roll_up(kpi, per_person, depts).items():
            key = (kpi.id, kind, subject)
            if existing.get(key) == (fig.value, fig.numerator, fig.denominator):
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
                }
            )
    upsert(
        session,
        KpiValue,
        rows,
        ["system", "kpi_id", "subject_kind", "subject_id", "period"],
        ["value", "numerator", "denominator"],
    )
    return len(rows)
