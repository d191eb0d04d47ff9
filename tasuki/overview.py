"""The whole picture, from the store: handoffs per boundary, verdict outcomes, the funnel.

What Sales Ops looks at; the demo's tables, the HTML report and the digest all read it here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from tasuki.store.models import Handoff, Record, Verdict, Violation

TOP_VIOLATIONS = 3
"""Violations listed per boundary."""


@dataclass
class BoundaryStats:
    """Handoffs across one boundary and how they fared."""

    boundary: str
    handoffs: int = 0
    passed: int = 0
    warned: int = 0
    failed: int = 0
    unjudged: int = 0
    top_violations: list[tuple[str, str, int]] = field(default_factory=list)
    """(rule id, message, count), most frequent first."""

    @property
    def pass_rate(self) -> float | None:
        """Share of judged handoffs that passed (warned ones count as passed)."""
        judged = self.passed + self.warned + self.failed
        return None if judged == 0 else (self.passed + self.warned) / judged


def boundary_stats(session: Session, system: str, boundaries: list[str]) -> list[BoundaryStats]:
    """One :class:`BoundaryStats` per configured boundary, in config order."""
    stats = {b: BoundaryStats(b) for b in boundaries}
    rows = session.execute(
        select(Handoff.boundary, Verdict.outcome, func.count())
        .select_from(Handoff)
        .outerjoin(Verdict, Verdict.handoff_id == Handoff.id)
        .where(Handoff.system == system)
        .group_by(Handoff.boundary, Verdict.outcome)
    )
    for boundary, outcome, n in rows:
        s = stats.setdefault(boundary, BoundaryStats(boundary))
        s.handoffs += n
        if outcome in ("passed", "warned", "failed"):
            setattr(s, outcome, getattr(s, outcome) + n)
        else:
            s.unjudged += n
    counts: dict[str, Counter[tuple[str, str]]] = {}
    for boundary, rule_id, message in session.execute(
        select(Handoff.boundary, Violation.rule_id, Violation.message)
        .join(Verdict, Verdict.handoff_id == Handoff.id)
        .join(Violation, Violation.verdict_id == Verdict.id)
        .where(Handoff.system == system)
    ):
        counts.setdefault(boundary, Counter())[(rule_id, message)] += 1
    for boundary, counter in counts.items():
        stats[boundary].top_violations = [
            (rule, msg, n) for (rule, msg), n in counter.most_common(TOP_VIOLATIONS)
        ]
    return list(stats.values())


def funnel(session: Session, system: str) -> list[tuple[str, int]]:
    """Leads → MQLs → meetings handed to FS → accepted by FS → won, as (stage, count)."""

    def count(obj: str, *conds: ColumnElement[bool]) -> int:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Record)
                .where(
                    Record.system == system, Record.object == obj, Record.deleted.is_(False), *conds
                )
            )
            or 0
        )

    def handed(boundary: str) -> int:
        return int(
            session.scalar(
                select(func.count(func.distinct(Handoff.record_id))).where(
                    Handoff.system == system, Handoff.boundary == boundary
                )
            )
            or 0
        )

    return [
        ("Leads", count("lead")),
        ("MQL → IS", handed("MK→IS")),
        ("Meetings → FS", handed("IS→FS")),
        ("Accepted by FS", count("deal", Record.fields["fs_acceptance"].as_string() == "Accepted")),
        ("Won → CS", handed("FS→CS")),
    ]
