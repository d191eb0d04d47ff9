"""A raised alarm as people read it, and the stored alarms of a period (:func:`raised`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from tasuki.store.models import AlarmRow, Person

DEPARTMENT_ORDER = ("MK", "IS", "FS", "CS")
"""The Model's order: alarms are listed along the funnel."""

SUBJECT_ORDER = ("department", "team", "person")


def shown(value: float, is_ratio: bool) -> str:
    """A figure as people read it: ratios in %, amounts with separators."""
    if is_ratio:
        return f"{value:.1%}"
    return f"{value:,.0f}" if abs(value) >= 100 or value == int(value) else f"{value:,.1f}"


@dataclass(frozen=True)
class Change:
    """One KPI's figures in the previous and the current period, and the threshold it crossed."""

    kpi_id: str
    label: str
    is_ratio: bool
    previous: float
    current: float
    threshold: float
    """The relative change that raises the alarm (0.1: 10 % better, or 10 % worse)."""

    @property
    def absolute(self) -> float:
        """Current minus previous (percentage points as a fraction for ratios)."""
        return self.current - self.previous

    @property
    def relative(self) -> float | None:
        """The change relative to the previous figure; ``None`` when that was zero."""
        return None if self.previous == 0 else self.absolute / abs(self.previous)

    def describe(self, direction: str) -> str:
        """``label: previous → current (absolute, relative; threshold)``, ``direction`` naming
        what the threshold asks for (``better``, ``worse``)."""
        if self.is_ratio:
            absolute = f"{100 * self.absolute:+.1f} pt"
        else:
            absolute = ("+" if self.absolute >= 0 else "-") + shown(abs(self.absolute), False)
        relative = "new" if self.relative is None else f"{self.relative:+.0%}"
        return (
            f"{self.label}: {shown(self.previous, self.is_ratio)} → "
            f"{shown(self.current, self.is_ratio)} ({absolute}, {relative}; "
            f"alarm at {self.threshold:.0%} {direction})"
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain values for JSON and CSV."""
        return {
            "kpi": self.kpi_id,
            "label": self.label,
            "previous": self.previous,
            "current": self.current,
            "absolute_change": self.absolute,
            "relative_change": self.relative,
            "threshold": self.threshold,
        }


@dataclass(frozen=True)
class Alarm:
    """A partial-optimisation alarm: in ``period`` the subject's own KPI got better than in
    ``previous_period`` while the neighbour KPI it feeds got worse, both past their thresholds."""

    id: int
    system: str
    pair_id: str
    label: str
    department: str
    subject_kind: str
    """``department``, ``team`` or ``person``."""
    subject_id: str
    """The department code, the team's name or the person's CRM user id."""
    subject_name: str
    """What people call the subject: the person's name (their user id when the store has none),
    the team's name, the department's code."""
    period: str
    previous_period: str
    own: Change
    neighbour: Change
    raised_at: datetime

    @property
    def key(self) -> str:
        """What makes the alarm one (pair, subject, period): a notification's occurrence."""
        return f"{self.pair_id}:{self.subject_kind}:{self.subject_id}:{self.period}"

    @property
    def explanation(self) -> str:
        """One line saying what happened, with both figures and their change."""
        return (
            f"{self.period} against {self.previous_period}: "
            f"{self.own.describe('better')}, while {self.neighbour.describe('worse')}"
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain values for JSON."""
        return {
            "pair": self.pair_id,
            "label": self.label,
            "department": self.department,
            "subject_kind": self.subject_kind,
            "subject": self.subject_name,
            "subject_id": self.subject_id,
            "period": self.period,
            "previous_period": self.previous_period,
            "own": self.own.as_dict(),
            "neighbour": self.neighbour.as_dict(),
            "explanation": self.explanation,
            "raised_at": self.raised_at.isoformat(),
        }


def _alarm(row: AlarmRow, name: str | None) -> Alarm:
    return Alarm(
        id=row.id,
        system=row.system,
        pair_id=row.pair_id,
        label=row.pair_label,
        department=row.department,
        subject_kind=row.subject_kind,
        subject_id=row.subject_id,
        subject_name=name or row.subject_id,
        period=row.period,
        previous_period=row.previous_period,
        own=Change(
            row.own_kpi_id,
            row.own_label,
            row.own_is_ratio,
            row.own_previous,
            row.own_current,
            row.own_threshold,
        ),
        neighbour=Change(
            row.neighbour_kpi_id,
            row.neighbour_label,
            row.neighbour_is_ratio,
            row.neighbour_previous,
            row.neighbour_current,
            row.neighbour_threshold,
        ),
        raised_at=row.raised_at,
    )


def _order(a: Alarm) -> tuple[int, int, str, str, str]:
    dept = DEPARTMENT_ORDER.index(a.department) if a.department in DEPARTMENT_ORDER else 9
    kind = SUBJECT_ORDER.index(a.subject_kind) if a.subject_kind in SUBJECT_ORDER else 9
    return (dept, kind, a.subject_name.casefold(), a.pair_id, a.period)


def raised(
    session: Session,
    period: str | None = None,
    *,
    system: str | None = None,
    subject_kind: str | None = None,
    subject_id: str | None = None,
    department: str | None = None,
) -> list[Alarm]:
    """The stored alarms of ``period`` (every period when ``None``), optionally of one CRM
    system, kind of subject, subject or department; along the funnel (MK first), departments
    before teams before people, people by name. One indexed query; nothing is recomputed."""
    stmt = select(AlarmRow, Person.name).outerjoin(
        Person,
        and_(
            AlarmRow.subject_kind == "person",
            Person.system == AlarmRow.system,
            Person.user_id == AlarmRow.subject_id,
        ),
    )
    if period is not None:
        stmt = stmt.where(AlarmRow.period == period)
    if system is not None:
        stmt = stmt.where(AlarmRow.system == system)
    if subject_kind is not None:
        stmt = stmt.where(AlarmRow.subject_kind == subject_kind)
    if subject_id is not None:
        stmt = stmt.where(AlarmRow.subject_id == subject_id)
    if department is not None:
        stmt = stmt.where(AlarmRow.department == department)
    return sorted((_alarm(row, name) for row, name in session.execute(stmt).all()), key=_order)
