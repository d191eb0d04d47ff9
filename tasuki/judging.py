"""Judging: each handoff's verdict from the rules, kept in the store only when it changed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from rules.verdict import Verdict as RuleVerdict
from tasuki.handoffs import contexts_for
from tasuki.runtime import Runtime
from tasuki.store.models import Handoff, Verdict, Violation, utcnow
from tasuki.writeback import DesiredValue

VIOLATIONS_TEXT_LIMIT = 4000
"""Longest violations summary written to a CRM field (long text areas hold more; people don't)."""

SLA_SWEEP_WINDOW = timedelta(days=14)
"""How far back the SLA sweep re-judges handoffs whose verdict may change with time alone."""


def _same(stored: Verdict | None, fresh: RuleVerdict) -> bool:
    if stored is None:
        return False
    return (
        stored.outcome == fresh.outcome.value
        and stored.score == fresh.score
        and [(v.rule_id, v.severity, v.message) for v in stored.violations]
        == [(v.rule_id, v.severity.value, v.message) for v in fresh.violations]
    )


def judge_handoffs(
    rt: Runtime, session: Session, handoffs: Sequence[Handoff], now: datetime
) -> int:
    """Evaluate ``handoffs`` against the rulebook; returns how many verdicts changed."""
    rulebook = rt.rulebook
    calendar = rt.calendar
    changed = 0
    contexts = contexts_for(session, rt.settings.config, handoffs, now)
    for h, context in zip(handoffs, contexts, strict=True):
        fresh = rulebook.evaluate(context, calendar)
        if _same(h.verdict, fresh):
            continue
        changed += 1
        if h.verdict is not None:
            session.delete(h.verdict)
            session.flush()
        session.add(
            Verdict(
                handoff_id=h.id,
                outcome=fresh.outcome.value,
                score=fresh.score,
                evaluated_at=now,
                rules_digest=rulebook.digest,
                violations=[
                    Violation(rule_id=v.rule_id, severity=v.severity.value, message=v.message)
                    for v in fresh.violations
                ],
            )
        )
    return changed


def judge_records(
    rt: Runtime, session: Session, logical: str, record_ids: Sequence[str], now: datetime
) -> int:
    """Judge every handoff of the given records; returns how many verdicts changed."""
    if not record_ids:
        return 0
    handoffs = session.scalars(
        select(Handoff)
        .where(
            Handoff.system == rt.system,
            Handoff.object == logical,
            Handoff.record_id.in_(record_ids),
        )
        .options(selectinload(Handoff.verdict).selectinload(Verdict.violations))
    ).all()
    return judge_handoffs(rt, session, handoffs, now)


def sla_sweep(rt: Runtime, now: datetime | None = None) -> int:
    """Re-judge recent handoffs: an SLA that was pending may have run out with no change at all."""
    now = now or utcnow()
    with rt.store.session() as session:
        handoffs = session.scalars(
            select(Handoff)
            .where(Handoff.system == rt.system, Handoff.handed_at >= now - SLA_SWEEP_WINDOW)
            .options(selectinload(Handoff.verdict).selectinload(Verdict.violations))
        ).all()
        return judge_handoffs(rt, session, handoffs, now)


def verdict_values(rt: Runtime, session: Session) -> list[DesiredValue]:
    """The verdict fields each handed-over record should carry: those of its latest handoff."""
    fields = rt.settings.config.writeback.verdict
    latest: dict[tuple[str, str], Handoff] = {}
    for h in session.scalars(
        select(Handoff)
        .where(Handoff.system == rt.system)
        .order_by(Handoff.handed_at, Handoff.id)
        .options(selectinload(Handoff.verdict).selectinload(Verdict.violations))
    ):
        if h.verdict is not None:
            latest[(h.object, h.record_id)] = h
    mapped = rt.settings.config
    out = []
    for (obj, rid), h in sorted(latest.items()):
        v = h.verdict
        assert v is not None
        known = set(mapped.fields(obj))
        text = "; ".join(f"{x.rule_id}: {x.message}" for x in v.violations)
        for name, value in (
            (fields.outcome, f"{h.boundary} {v.outcome}"),
            (fields.score, v.score),
            (fields.violations, text[:VIOLATIONS_TEXT_LIMIT]),
        ):
            if name in known:
                out.append(DesiredValue(obj, rid, name, value))
    return out
