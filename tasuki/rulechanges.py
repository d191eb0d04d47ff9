"""Rule changes: every stored handoff judged again under the rules files as they are now.

:func:`preview` re-judges without writing anything and says what would change: how many
verdicts, which rules (newly broken, no longer broken, warn → error ...) and which outcomes
(passed → failed ...). :func:`apply` stores the new verdicts (and the current rule set's
fingerprint on every verdict, changed or not) in one transaction, with the KPI and write-back
passes owed in the same transaction; the caller then performs the write-back so the CRM carries
what the store says.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from tasuki.facts import history_before
from tasuki.handoffs import contexts_for
from tasuki.judging import judge_handoffs, written_before
from tasuki.owed import Owed, owe
from tasuki.runtime import Runtime
from tasuki.store.models import Handoff, Verdict
from tasuki.verdicts import Verdict as RuleVerdict

CHUNK = 500
"""Handoffs judged per step (one context query batch; the progress bar moves per step)."""

Progress = Callable[[int, int], None]
"""Called with (handoffs judged so far, handoffs in all)."""


@dataclass(frozen=True)
class Flip:
    """One handoff whose verdict the current rules change."""

    handoff_id: int
    boundary: str
    object: str
    record_id: str
    handed_at: datetime
    old_outcome: str | None
    old_score: int | None
    new_outcome: str
    new_score: int
    rules: tuple[tuple[str, str], ...]
    """(rule id, what changed for it: ``kept → broken (error)``, ``broken → kept`` ...)."""


@dataclass
class RuleChange:
    """What judging every stored handoff under the current files gives, against the store."""

    fingerprint: str
    """The current rule set's fingerprint."""
    judged: int = 0
    judged_by: Counter[str] = field(default_factory=Counter)
    """Stored verdicts by the fingerprint of the rule set that judged them (``""``: none)."""
    flips: list[Flip] = field(default_factory=list)

    @property
    def by_outcome(self) -> list[tuple[str, str, str, int]]:
        """(boundary, old outcome, new outcome, handoffs), most first."""
        counts = Counter((f.boundary, f.old_outcome or "(none)", f.new_outcome) for f in self.flips)
        return [(*k, n) for k, n in counts.most_common()]

    @property
    def by_rule(self) -> list[tuple[str, str, int]]:
        """(rule id, change, handoffs), most first."""
        counts = Counter(r for f in self.flips for r in f.rules)
        return [(*k, n) for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]

    @property
    def records(self) -> set[tuple[str, str]]:
        """The CRM records whose verdict fields may change: (logical object, id)."""
        return {(f.object, f.record_id) for f in self.flips}


def _rule_changes(stored: Verdict | None, fresh: RuleVerdict) -> tuple[tuple[str, str], ...]:
    old = {v.rule_id: (v.severity, v.message) for v in (stored.violations if stored else [])}
    new = {v.rule_id: (v.severity.value, v.message) for v in fresh.violations}
    out = []
    for rule_id in sorted(old.keys() | new.keys()):
        before, after = old.get(rule_id), new.get(rule_id)
        if before == after:
            continue
        if before is None:
            assert after is not None
            out.append((rule_id, f"kept → broken ({after[0]})"))
        elif after is None:
            out.append((rule_id, f"broken ({before[0]}) → kept"))
        elif before[0] != after[0]:
            out.append((rule_id, f"broken ({before[0]}) → broken ({after[0]})"))
        else:
            out.append((rule_id, "message changed"))
    return tuple(out)


def _differs(stored: Verdict | None, fresh: RuleVerdict) -> bool:
    if stored is None:
        return True
    return (
        stored.outcome != fresh.outcome.value
        or stored.score != fresh.score
        or [(v.rule_id, v.severity, v.message) for v in stored.violations]
        != [(v.rule_id, v.severity.value, v.message) for v in fresh.violations]
    )


def _chunks(session: Session, system: str) -> Iterator[Sequence[Handoff]]:
    """Every handoff of ``system`` with its verdict, ``CHUNK`` at a time, in id order."""
    last = 0
    while True:
        chunk = session.scalars(
            select(Handoff)
            .where(Handoff.system == system, Handoff.id > last)
            .order_by(Handoff.id)
            .limit(CHUNK)
            .options(selectinload(Handoff.verdict).selectinload(Verdict.violations))
        ).all()
        if not chunk:
            return
        yield chunk
        last = chunk[-1].id


def _count(session: Session, system: str) -> int:
    return int(
        session.scalar(select(func.count()).select_from(Handoff).where(Handoff.system == system))
        or 0
    )


def _compare(
    rt: Runtime, session: Session, handoffs: Sequence[Handoff], now: datetime, into: RuleChange
) -> None:
    rulebook, calendar = rt.rulebook, rt.calendar
    for h, context in zip(
        handoffs, contexts_for(session, rt.settings.config, handoffs, now), strict=True
    ):
        into.judged += 1
        into.judged_by[h.verdict.fingerprint if h.verdict else ""] += 1
        fresh = rulebook.evaluate(context, calendar)
        if not _differs(h.verdict, fresh):
            continue
        into.flips.append(
            Flip(
                handoff_id=h.id,
                boundary=h.boundary,
                object=h.object,
                record_id=h.record_id,
                handed_at=h.handed_at,
                old_outcome=h.verdict.outcome if h.verdict else None,
                old_score=h.verdict.score if h.verdict else None,
                new_outcome=fresh.outcome.value,
                new_score=fresh.score,
                rules=_rule_changes(h.verdict, fresh),
            )
        )


def written_records(rt: Runtime, change: RuleChange) -> int:
    """Of the records whose verdict changes, those a write-back writes: not history (see
    :mod:`tasuki.facts`), or history tasuki wrote before and keeps current."""
    with rt.store.session() as session:
        horizon = history_before(session)
        if horizon is None:
            return len(change.records)
        old = {(f.object, f.record_id) for f in change.flips if f.handed_at < horizon}
        kept = written_before(rt, session, {obj for obj, _ in old}) if old else set()
    return len(change.records - (old - kept))


def preview(rt: Runtime, now: datetime, progress: Progress | None = None) -> RuleChange:
    """Judge every stored handoff as of ``now`` under the current files; write nothing."""
    change = RuleChange(rt.rules_fingerprint)
    with rt.store.session() as session:
        total = _count(session, rt.system)
        for chunk in _chunks(session, rt.system):
            _compare(rt, session, chunk, now, change)
            if progress:
                progress(change.judged, total)
        session.rollback()
    return change


def apply(rt: Runtime, now: datetime, progress: Progress | None = None) -> RuleChange:
    """Judge every stored handoff as of ``now`` and store the verdicts that changed, with the
    KPI and write-back passes owed, in one transaction; returns what changed (as
    :func:`preview` would have said)."""
    change = RuleChange(rt.rules_fingerprint)
    with rt.store.session() as session:
        total = _count(session, rt.system)
        for chunk in _chunks(session, rt.system):
            _compare(rt, session, chunk, now, change)
            judge_handoffs(rt, session, chunk, now)
            session.flush()
            if progress:
                progress(change.judged, total)
        if change.flips:
            owe(session, Owed.KPIS)
            owe(session, Owed.WRITE_BACK)
    return change
