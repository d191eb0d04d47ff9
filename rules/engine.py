"""The rule engine: load and validate rules files into a :class:`Rulebook`, judge handoffs.

Loading is all-or-nothing: every file is read and validated completely, every problem
(YAML syntax, unknown check type, unknown field, bad duration, duplicate rule id ...) is
collected and raised together in one :class:`~tasuki.errors.ConfigError`; no rulebook exists
until all of it is valid.

Evaluation is pure and fast: the rule sets of the handoff's boundary are picked from a dict,
each applicable rule's check is called once, and the verdict follows:

- ``failed`` when an ``error`` rule is broken, ``warned`` when only ``warn`` rules are,
  ``passed`` otherwise;
- score = 100 × (weight of the applicable rules kept) / (weight of the applicable rules),
  rounded down, so any violation costs at least a point; 100 when no rule applies.

A rule applies when its rule set's boundary and object (if declared) match the handoff, the
rule set's ``when`` holds and the rule's own ``when`` holds. A value a check cannot read (a date
field holding "next week") breaks that rule rather than the evaluation.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from rules.checks import Check
from rules.compiler import compile_boundary, identifier
from rules.schema import Rule, RuleSet, normalize_boundary, parse_rules_file, written_rule_ids
from tasuki.calendar import BusinessCalendar
from tasuki.errors import ConfigError, Problem
from tasuki.verdicts import HandoffContext, Outcome, Severity, Verdict, Violation
from tasuki.yamlsource import load_all

_PASSED = Verdict(Outcome.PASSED, 100, ())
_Plan = tuple[
    str | None,
    Check | None,
    tuple[
        tuple[
            Callable[[HandoffContext, BusinessCalendar], str | None],
            Check | None,
            float,
            Violation,
            bool,
        ],
        ...,
    ],
]
"""(object, rule set's when, rules as (check, when, weight, violation, is an error))."""


class RuleStatus(str, Enum):
    """What became of one rule for one handoff (``rules explain``)."""

    KEPT = "kept"
    BROKEN = "broken"
    NOT_APPLICABLE = "n/a"


@dataclass(frozen=True)
class RuleResult:
    """One rule's result for one handoff, with why."""

    rule: Rule
    status: RuleStatus
    reason: str


def _holds(check: Check, ctx: HandoffContext, calendar: BusinessCalendar) -> str | None:
    """None when a ``when`` condition holds, else why not (an unreadable value: it does not)."""
    try:
        return check.evaluate(ctx, calendar)
    except (ValueError, TypeError, OverflowError) as exc:
        return f"cannot read a value: {exc}"


class Rulebook:
    """Validated rules, ready to judge handoffs. Build it with :func:`load_rulebook`."""

    def __init__(self, rule_sets: Sequence[RuleSet], digest: str, files: Sequence[str]) -> None:
        self.rule_sets = tuple(rule_sets)
        self.digest = digest
        """sha256 of the rules files' content: verdicts record which rules judged them."""
        self.files = tuple(files)
        by_boundary: dict[str, list[RuleSet]] = defaultdict(list)
        for rs in self.rule_sets:
            by_boundary[rs.boundary].append(rs)
        self._by_boundary = {b: tuple(sets) for b, sets in by_boundary.items()}
        # The same rule sets flattened into tuples with bound methods: evaluate() is the hot
        # path of the whole service (100k+ handoffs/s), attribute lookups are its cost.
        self._plans: dict[str, tuple[_Plan, ...]] = {
            b: tuple(
                (
                    rs.object,
                    rs.when,
                    tuple(
                        (
                            r.check.evaluate,
                            r.when,
                            r.weight,
                            r.violation,
                            r.severity is Severity.ERROR,
                        )
                        for r in rs.rules
                    ),
                )
                for rs in sets
            )
            for b, sets in self._by_boundary.items()
        }
        self._judges = {
            b: compile_boundary(sets, identifier(b)) for b, sets in self._by_boundary.items()
        }

    @property
    def rules(self) -> tuple[Rule, ...]:
        """Every rule, in file order."""
        return tuple(r for rs in self.rule_sets for r in rs.rules)

    @property
    def boundaries(self) -> tuple[str, ...]:
        """Boundaries that have rules."""
        return tuple(self._by_boundary)

    def _sets(self, boundary: str) -> tuple[RuleSet, ...]:
        sets = self._by_boundary.get(boundary)
        if sets is None:
            normal = normalize_boundary(boundary)
            sets = self._by_boundary.get(normal, ()) if normal else ()
        return sets

    def evaluate(self, context: HandoffContext, calendar: BusinessCalendar) -> Verdict:
        """The verdict for one handoff. Pure: no I/O, the same input gives the same verdict.

        Runs the boundary's compiled function (:mod:`rules.compiler`); the verdict is the one
        :meth:`evaluate_interpreted` gives."""
        judge = self._judges.get(context.boundary)
        if judge is None:
            normal = normalize_boundary(context.boundary)
            judge = self._judges.get(normal) if normal else None
            if judge is None:
                return _PASSED
        return judge(context, calendar)

    def evaluate_interpreted(self, context: HandoffContext, calendar: BusinessCalendar) -> Verdict:
        """The verdict for one handoff, by visiting the rule sets' checks one by one (what the
        compiled functions are held to)."""
        plans = self._plans.get(context.boundary)
        if plans is None:
            normal = normalize_boundary(context.boundary)
            plans = self._plans.get(normal, ()) if normal else ()
        total = 0.0
        lost = 0.0
        violations: list[Violation] = []
        failed = False
        for obj, set_when, rules in plans:
            if obj is not None and obj != context.object:
                continue
            if set_when is not None and _holds(set_when, context, calendar) is not None:
                continue
            for check, when, weight, violation, is_error in rules:
                if when is not None and _holds(when, context, calendar) is not None:
                    continue
                total += weight
                try:
                    if check(context, calendar) is None:
                        continue
                except (ValueError, TypeError, OverflowError):
                    pass  # a value the check cannot read breaks the rule
                lost += weight
                violations.append(violation)
                if is_error:
                    failed = True
        if not total:
            return _PASSED
        if not violations:
            return _PASSED
        score = int(100 * (total - lost) / total)
        return Verdict(Outcome.FAILED if failed else Outcome.WARNED, score, tuple(violations))

    def explain(self, context: HandoffContext, calendar: BusinessCalendar) -> list[RuleResult]:
        """Every rule of the handoff's boundary with what became of it and why."""
        out: list[RuleResult] = []
        for rs in self._sets(context.boundary):
            skip = None
            if rs.object is not None and rs.object != context.object:
                skip = f"rule set is for {rs.object}, this handoff is a {context.object}"
            elif rs.when is not None:
                why = _holds(rs.when, context, calendar)
                if why is not None:
                    skip = f"rule set's segment does not hold: {why}"
            for rule in rs.rules:
                out.append(self._explain_rule(rule, skip, context, calendar))
        return out

    @staticmethod
    def _explain_rule(
        rule: Rule, skip: str | None, ctx: HandoffContext, calendar: BusinessCalendar
    ) -> RuleResult:
        if skip is None and rule.when is not None:
            why = _holds(rule.when, ctx, calendar)
            if why is not None:
                skip = f"condition does not hold: {why}"
        if skip is not None:
            return RuleResult(rule, RuleStatus.NOT_APPLICABLE, skip)
        try:
            reason = rule.check.evaluate(ctx, calendar)
        except (ValueError, TypeError, OverflowError) as exc:
            reason = f"cannot read a value: {exc}"
        if reason is not None:
            return RuleResult(rule, RuleStatus.BROKEN, reason)
        note = rule.check.note(ctx, calendar)
        return RuleResult(rule, RuleStatus.KEPT, note or rule.check.describe())


def load_rulebook(paths: Sequence[Path], catalog: Mapping[str, Sequence[str]]) -> Rulebook:
    """Read and validate every file in ``paths`` against the logical field ``catalog``.

    Raises :class:`ConfigError` with every problem of every file, each as FILE:LINE:COL, when
    anything is wrong; returns a :class:`Rulebook` only when all of it is valid.
    """
    problems: list[Problem] = []
    rule_sets: list[RuleSet] = []
    digest = hashlib.sha256()
    first_seen: dict[str, str] = {}
    for doc in load_all(paths, problems):
        content = Path(doc.file).read_bytes()
        digest.update(len(content).to_bytes(8, "big") + content)
        sets, found = parse_rules_file(doc, catalog)
        problems.extend(found)
        for rule_id, at in written_rule_ids(doc):
            where = doc.problem(at, "")
            if rule_id in first_seen:
                problems.append(
                    doc.problem(
                        at, f"duplicate rule id {rule_id!r} (first at {first_seen[rule_id]})"
                    )
                )
            else:
                first_seen[rule_id] = f"{where.file}:{where.line}:{where.column}"
        rule_sets.extend(sets)
    if problems:
        raise ConfigError(problems)
    return Rulebook(rule_sets, digest.hexdigest(), [str(p) for p in paths])
