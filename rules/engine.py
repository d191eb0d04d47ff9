"""First version of the rule engine: per boundary, fields that must be present and not empty.

The full language (check registry, conditions, SLAs, artifacts) replaces this module.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rules.verdict import HandoffContext, Outcome, Severity, Verdict, Violation
from tasuki.errors import ConfigError, Problem
from tasuki.yamlsource import load


@dataclass(frozen=True)
class Rule:
    """A field that must be filled for a handoff at ``boundary`` to pass."""

    id: str
    boundary: str
    field: str
    severity: Severity
    message: str


@dataclass(frozen=True)
class Rulebook:
    """Validated rules, grouped by boundary."""

    rules: tuple[Rule, ...]
    digest: str

    def evaluate(self, context: HandoffContext, calendar: object = None) -> Verdict:
        """The verdict for one handoff; no I/O."""
        applicable = [r for r in self.rules if r.boundary == context.boundary]
        violations = tuple(
            Violation(r.id, r.severity, r.message)
            for r in applicable
            if context.record.get(r.field) in (None, "")
        )
        score = 100 if not applicable else round(100 * (1 - len(violations) / len(applicable)))
        if any(v.severity is Severity.ERROR for v in violations):
            outcome = Outcome.FAILED
        elif violations:
            outcome = Outcome.WARNED
        else:
            outcome = Outcome.PASSED
        return Verdict(outcome, score, violations)


def load_rulebook(paths: Sequence[Path], catalog: Mapping[str, Sequence[str]]) -> Rulebook:
    """Read and validate ``paths``; every problem raised at once with file, line and column."""
    rules: list[Rule] = []
    problems: list[Problem] = []
    digest = hashlib.sha256()
    for path in paths:
        doc = load(path)
        digest.update(Path(path).read_bytes())
        data: Any = doc.data
        for i, item in enumerate(data.get("rules", []) if isinstance(data, dict) else []):
            obj, _, fld = str(item.get("field", "")).partition(".")
            if fld not in catalog.get(obj, ()):
                problems.append(doc.problem(("rules", i, "field"), f"unknown field {obj}.{fld}"))
                continue
            rules.append(
                Rule(
                    id=str(item["id"]),
                    boundary=str(item["boundary"]).replace("->", "→"),
                    field=fld,
                    severity=Severity(item.get("severity", "error")),
                    message=str(item.get("message", f"{obj}.{fld} is required")),
                )
            )
    if problems:
        raise ConfigError(problems)
    return Rulebook(tuple(rules), digest.hexdigest())
