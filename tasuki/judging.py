"""Judging: each handoff's verdict from the rules, kept in the store only when it changed."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from tasuki import replan
from tasuki.facts import history_before
from tasuki.handoffs import contexts_for, detect, unknown_owners
from tasuki.mapping import Mapper
from tasuki.owed import Owed, owe, owed, settle
from tasuki.people_file import apply_people_file
from tasuki.runtime import Runtime
from tasuki.store.models import Handoff, LedgerEntry, Record, Verdict, Violation, utcnow
from tasuki.sync import sync_people
from tasuki.testhooks import checkpoint
from tasuki.verdicts import Verdict as RuleVerdict
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
    fingerprint = rt.rules_fingerprint
    calendar = rt.calendar
    changed = 0
    contexts = contexts_for(session, rt.settings.config, handoffs, now)
    rejudged: list[tuple[str, str]] = []
    for h, context in zip(handoffs, contexts, strict=True):
        fresh = rulebook.evaluate(context, calendar)
        if _same(h.verdict, fresh):
            assert h.verdict is not None
            if h.verdict.fingerprint != fingerprint:
                h.verdict.fingerprint = fingerprint  # same verdict, judged by this rule set
            continue
        changed += 1
        rejudged.append((h.object, h.record_id))
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
                fingerprint=fingerprint,
                violations=[
                    Violation(rule_id=v.rule_id, severity=v.severity.value, message=v.message)
                    for v in fresh.violations
                ],
            )
        )
    # The record's verdict fields may have to be written: the next write-back plans it.
    replan.mark(session, rt.system, rejudged)
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


def written_before(rt: Runtime, session: Session, objects: set[str]) -> set[tuple[str, str]]:
    """(logical object, record) pairs whose verdict outcome tasuki has written to the CRM."""
    mapper = Mapper(rt.settings.config)
    outcome = rt.settings.config.writeback.verdict.outcome
    out: set[tuple[str, str]] = set()
    for obj in objects:
        if outcome not in rt.settings.config.fields(obj):
            continue
        physical = mapper.physical_object(obj)
        out.update(
            (obj, rid)
            for rid in session.scalars(
                select(LedgerEntry.record_id).where(
                    LedgerEntry.system == rt.system,
                    LedgerEntry.object == physical,
                    LedgerEntry.field == mapper.physical_field(obj, outcome),
                )
            )
        )
    return out


def verdict_values(
    rt: Runtime,
    session: Session,
    records: Sequence[tuple[str, str]] | None = None,
    *,
    write_history: bool = False,
) -> list[DesiredValue]:
    """The verdict fields each handed-over record should carry: those of its latest handoff.
    Every handed-over record's, or only those of ``records`` ((logical object, id) pairs): the
    same values for them, read through their handoffs alone.

    A record whose latest handoff is history (before :func:`tasuki.facts.history_before`,
    set by the first back-fill) is left alone unless ``write_history`` or tasuki has written its
    verdict before (then it is kept current, so the CRM never holds a stale verdict of ours)."""
    fields = rt.settings.config.writeback.verdict
    latest: dict[tuple[str, str], Handoff] = {}
    for h in _handoffs(rt, session, records):
        if h.verdict is not None:
            latest[(h.object, h.record_id)] = h
    horizon = None if write_history else history_before(session)
    if horizon is not None:
        old = {k for k, h in latest.items() if h.handed_at < horizon}
        kept = written_before(rt, session, {obj for obj, _ in old}) if old else set()
        for key in old - kept:
            del latest[key]
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


_RECORDS_PER_QUERY = 500
"""Record ids per handoff look-up when planning some records (IN lists of any database)."""


def _handoffs(
    rt: Runtime, session: Session, records: Sequence[tuple[str, str]] | None
) -> Iterator[Handoff]:
    """Handoffs with their verdicts, oldest first per record (so the last one seen is the
    latest): all of them, or those of ``records`` (through ``ix_handoffs_record``)."""
    query = (
        select(Handoff)
        .where(Handoff.system == rt.system)
        .order_by(Handoff.handed_at, Handoff.id)
        .options(selectinload(Handoff.verdict).selectinload(Verdict.violations))
    )
    if records is None:
        yield from session.scalars(query)
        return
    by_object: dict[str, list[str]] = {}
    for obj, rid in sorted(set(records)):
        by_object.setdefault(obj, []).append(rid)
    for obj, ids in by_object.items():
        for start in range(0, len(ids), _RECORDS_PER_QUERY):
            chunk = ids[start : start + _RECORDS_PER_QUERY]
            yield from session.scalars(
                query.where(Handoff.object == obj, Handoff.record_id.in_(chunk))
            )


def dependents(
    session: Session, rt: Runtime, logical: str, ids: Sequence[str]
) -> dict[str, list[str]]:
    """Records whose rules look at the changed records (a lead looks at its account)."""
    out: dict[str, list[str]] = {}
    for obj, links in rt.settings.config.related.items():
        for rel_obj, lookup in links.items():
            if rel_obj != logical:
                continue
            rows = session.scalars(
                select(Record.record_id).where(
                    Record.system == rt.system,
                    Record.object == obj,
                    Record.fields[lookup].as_string().in_(list(ids)),
                )
            ).all()
            if rows:
                out.setdefault(obj, []).extend(rows)
    return out


def judge_with_dependents(
    rt: Runtime, session: Session, records: Mapping[str, Sequence[str]], now: datetime
) -> int:
    """Judge the handoffs of ``records`` (logical object → ids) and of the records that look at
    them, each handoff once; returns how many verdicts changed."""
    every: dict[str, set[str]] = {obj: set(ids) for obj, ids in records.items() if ids}
    for obj, ids in list(every.items()):
        for dep, dep_ids in dependents(session, rt, obj, sorted(ids)).items():
            every.setdefault(dep, set()).update(dep_ids)
    return sum(
        judge_records(rt, session, obj, sorted(ids), now) for obj, ids in sorted(every.items())
    )


@dataclass(frozen=True)
class Judged:
    """What settling the owed detection and judging did."""

    handoffs: int = 0
    """New handoffs detected."""
    verdicts_changed: int = 0


def judge_owed(
    rt: Runtime,
    logical: str | None = None,
    record_ids: Sequence[str] | None = None,
    *,
    before: datetime | None = None,
) -> Judged:
    """Detect and judge the handoffs of the records a sync left owed (:data:`Owed.JUDGE`), for
    ``logical`` / ``record_ids`` / owed ``before`` when given.

    Detection, judging, the settling of those debts and the debts of the KPI and write-back
    passes that follow commit in one transaction: a crash before it leaves the debts for the
    next run, a crash after it leaves the follow-up passes owed.
    """
    with rt.store.session() as session:
        debts = owed(session, Owed.JUDGE, logical, record_ids, before=before)
        by_object: dict[str, list[str]] = {}
        for d in debts:
            by_object.setdefault(d.object, []).append(d.record_id)
        missing = any(
            unknown_owners(session, rt.system, obj, ids) for obj, ids in by_object.items()
        )
    if not debts:
        return Judged()
    if missing:
        # A record moved to someone tasuki has not met yet: learn the users first, or the
        # departments of this handoff would be unknown.
        sync_people(rt)
    now = utcnow()
    new_handoffs = 0
    with rt.store.session() as session:
        apply_people_file(session, rt.settings)
        for obj, ids in sorted(by_object.items()):
            new_handoffs += detect(session, rt.settings.config, rt.system, obj, ids)
        changed = judge_with_dependents(rt, session, by_object, now)
        settle(session, debts)
        if new_handoffs or changed:
            owe(session, Owed.KPIS)
            owe(session, Owed.WRITE_BACK)
    checkpoint("judge.committed")
    return Judged(new_handoffs, changed)
