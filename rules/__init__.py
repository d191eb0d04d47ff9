"""The handoff rule language: YAML rule files → a :class:`Rulebook` that judges handoffs.

``load_rulebook(paths, catalog)`` validates every file completely (all problems raised together
as :class:`tasuki.errors.ConfigError`); ``Rulebook.evaluate(context, calendar)`` is pure.
"""

from rules.engine import Rulebook, load_rulebook
from rules.verdict import Artifact, HandoffContext, Outcome, Severity, Verdict, Violation

__all__ = [
    "Artifact",
    "HandoffContext",
    "Outcome",
    "Rulebook",
    "Severity",
    "Verdict",
    "Violation",
    "load_rulebook",
]
