"""The receiver's answer clock: the boundary's SLA rule timed from the handoff, read at a moment.

The meeting does not define SLAs of its own: it reads them from the rules (``check: sla`` with
the default ``start: handoff.at``, as ``is-fs.fs-answer-sla`` of the default pack: FS accepts or
rejects within 1 business day) and counts them in the company calendar, as judging does. The
first such rule of the boundary that applies to a handoff (its rule set's object and ``when``,
its own ``when``) is that handoff's answer clock; a boundary without one has no clock and no
"still waiting" list.
"""

from __future__ import annotations

from dataclasses import dataclass

from rules import HandoffContext, Rulebook
from rules.checks import Check
from rules.checks.times import Sla
from rules.schema import Rule, RuleSet
from rules.values import HANDOFF_AT
from tasuki.calendar import BusinessCalendar
from tasuki.meeting.agenda import AnswerClock, ClockState
from tasuki.settings import BoundaryConfig


def _holds(check: Check | None, ctx: HandoffContext, calendar: BusinessCalendar) -> bool:
    if check is None:
        return True
    try:
        return check.evaluate(ctx, calendar) is None
    except (ValueError, TypeError, OverflowError):
        return False  # an unreadable value: the condition does not hold, as in the engine


@dataclass(frozen=True)
class AnswerSla:
    """One SLA rule timing the receiver's answer to a handoff."""

    rule: Rule
    rule_set: RuleSet
    check: Sla

    @property
    def end_field(self) -> str:
        """The logical field whose value is the answer's instant (``fs_accepted_at``)."""
        ref = self.check.end.field
        assert ref is not None
        return ref.field

    def describe(self) -> str:
        """What the rule times, and its id: ``deal.fs_accepted_at within 1 business day of
        handoff.at (rule is-fs.fs-answer-sla)``."""
        return f"{self.check.describe()} (rule {self.rule.id})"

    def applies(self, ctx: HandoffContext, calendar: BusinessCalendar) -> bool:
        """True when the rule applies to the handoff (object, rule set's and rule's ``when``)."""
        rs = self.rule_set
        if rs.object is not None and rs.object != ctx.object:
            return False
        return _holds(rs.when, ctx, calendar) and _holds(self.rule.when, ctx, calendar)

    def answered(self, ctx: HandoffContext, calendar: BusinessCalendar) -> bool:
        """True when the record holds the answer's instant (an unreadable one counts as none)."""
        try:
            return self.check.end.get(ctx, calendar) is not None
        except ValueError:
            return False

    def clock(
        self, ctx: HandoffContext, calendar: BusinessCalendar, as_of_ts: float
    ) -> AnswerClock:
        """Where the SLA stands at epoch second ``as_of_ts``."""
        within = self.check.within
        start = ctx.handed_at.timestamp()
        deadline = within.after(calendar, ctx.handed_at).astimezone(calendar.tz)
        try:
            done = self.check.end.get(ctx, calendar)
        except ValueError:
            done = None
        if done is not None:
            late = within.exceeded(calendar, start, done.timestamp())
            state = ClockState.ANSWERED_LATE if late else ClockState.ANSWERED
            seconds = within.elapsed(calendar, start, done.timestamp())
        elif within.exceeded(calendar, start, as_of_ts):
            state = ClockState.OVERDUE
            seconds = within.elapsed(calendar, deadline.timestamp(), as_of_ts)
        else:
            state = ClockState.PENDING
            seconds = within.elapsed(calendar, as_of_ts, deadline.timestamp())
        return AnswerClock(
            rule_id=self.rule.id,
            within=str(within),
            deadline=deadline,
            state=state,
            business_seconds=max(seconds, 0.0),
            answered_at=None if done is None else done.astimezone(calendar.tz),
            business=within.business,
        )


def answer_slas(rulebook: Rulebook, boundary: BoundaryConfig) -> tuple[AnswerSla, ...]:
    """The boundary's SLA rules timed from the handoff whose end is a field of the handed-over
    record, in file order."""
    found = []
    for rs in rulebook.rule_sets:
        if rs.boundary != boundary.id or rs.object not in (None, boundary.object):
            continue
        for rule in rs.rules:
            check = rule.check
            if not isinstance(check, Sla) or check.start.name != HANDOFF_AT:
                continue
            end = check.end.field
            if end is None or end.object != boundary.object:
                continue
            found.append(AnswerSla(rule, rs, check))
    return tuple(found)


def answer_sla_for(
    slas: tuple[AnswerSla, ...], ctx: HandoffContext, calendar: BusinessCalendar
) -> AnswerSla | None:
    """The first of ``slas`` that applies to the handoff of ``ctx``."""
    return next((s for s in slas if s.applies(ctx, calendar)), None)
