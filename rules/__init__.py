"""The handoff rule language: YAML rule files → a :class:`Rulebook` that judges handoffs.

``load_rulebook(paths, catalog)`` validates every file completely (all problems raised together
as :class:`tasuki.errors.ConfigError`); ``Rulebook.evaluate(context, calendar)`` is pure.

Modules: :mod:`rules.schema` (YAML → frozen rule sets and rules), :mod:`rules.checks` (check
types registered by YAML name), :mod:`rules.expressions` (the bounded language of the
``expression`` check), :mod:`rules.engine` (loading, evaluating, explaining),
:mod:`rules.testcases` (rule test files), :mod:`rules.cli` (``tasuki rules``).
"""

from rules.engine import Rulebook, RuleResult, RuleStatus, load_rulebook
from tasuki.verdicts import Artifact, HandoffContext, Outcome, Severity, Verdict, Violation

__all__ = [
    "Artifact",
    "HandoffContext",
    "Outcome",
    "RuleResult",
    "RuleStatus",
    "Rulebook",
    "Severity",
    "Verdict",
    "Violation",
    "load_rulebook",
]
