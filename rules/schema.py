"""Rules files: YAML → frozen :class:`RuleSet` and :class:`Rule` objects, every problem placed.

A rules file::

    rule_sets:
      - boundary: IS→FS          # or IS->FS
        object: deal             # optional: the rule set then applies only to deals
        when: {check: range, field: deal.amount, min: 1000000}   # optional segment
        rules:
          - id: is-fs.hearing-notes
            check: length        # any registered check type, with its settings inline
            field: deal.hearing_notes
            min: 30
            severity: error      # error fails the handoff; warn only warns
            message: ヒアリング内容が不足しています (hearing notes too short)
            weight: 3            # share of the score (default 1)
            when: {...}          # optional: the rule applies only when this holds

Parsing collects every problem of the file; nothing here evaluates anything.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rules.checks import Check, CheckParser
from tasuki.errors import Problem
from tasuki.verdicts import Severity, Violation
from tasuki.yamlsource import Located

BOUNDARY_RE = re.compile(r"^(MK|IS|FS|CS)\s*(?:→|->)\s*(MK|IS|FS|CS)$")
RULE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$")
RULE_KEYS = ("id", "severity", "message", "weight", "when", "description")
"""Keys of a rule that are not settings of its check."""
RULE_SET_KEYS = ("boundary", "object", "when", "rules")
FILE_KEYS = ("version", "rule_sets")


def normalize_boundary(text: str) -> str | None:
    """``IS->FS`` or ``IS→FS`` → ``IS→FS``; None when it is not a boundary between departments."""
    m = BOUNDARY_RE.match(text.strip())
    if not m or m.group(1) == m.group(2):
        return None
    return f"{m.group(1)}→{m.group(2)}"


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule: a check, how bad breaking it is, and what to tell people when it is broken."""

    id: str
    check: Check
    severity: Severity
    message: str
    weight: float
    when: Check | None
    description: str
    file: str
    line: int
    column: int
    path: tuple[str | int, ...]
    """Where the rule is written in its file (for problems found after parsing)."""
    violation: Violation
    """The violation this rule reports, built once."""


@dataclass(frozen=True, slots=True)
class RuleSet:
    """Rules applying to handoffs across one boundary (optionally one object and a segment)."""

    boundary: str
    object: str | None
    when: Check | None
    rules: tuple[Rule, ...]
    file: str
    line: int


def _rule(p: CheckParser, at: tuple[str | int, ...], data: Any) -> Rule | None:
    if not isinstance(data, dict):
        p.error(at, "a rule is a mapping with id, check, severity and message")
        return None
    ok = True
    rule_id = data.get("id")
    if rule_id is None:
        p.error(at, "rule needs 'id'")
        ok = False
    elif not isinstance(rule_id, str) or not RULE_ID_RE.match(rule_id):
        p.error(at + ("id",), f"rule id {rule_id!r}: use letters, digits and . _ - :")
        ok = False
    severity = data.get("severity", "error")
    if severity not in ("error", "warn"):
        p.error(at + ("severity",), f"severity {severity!r}; expected error or warn")
        ok = False
    message = data.get("message")
    if message is None:
        p.error(at, "rule needs 'message' (what people are told when it is broken)")
        ok = False
    elif not isinstance(message, str) or not message.strip():
        p.error(at + ("message",), "message must be a non-empty text")
        ok = False
    weight = 1.0
    if "weight" in data:
        w = p.number(at + ("weight",), data["weight"])
        if w is None or w <= 0:
            if w is not None:
                p.error(at + ("weight",), "weight must be more than zero")
            ok = False
        else:
            weight = w
    description = data.get("description", "")
    if not isinstance(description, str):
        p.error(at + ("description",), "description must be a text")
        ok = False
    when = p.check(at + ("when",), data["when"]) if "when" in data else None
    if "when" in data and when is None:
        ok = False
    check = p.check(at, data, also_allowed=RULE_KEYS)
    if not ok or check is None:
        return None
    assert isinstance(rule_id, str) and isinstance(message, str)
    sev = Severity(severity)
    line, col = p.doc.where(at)
    return Rule(
        id=rule_id,
        check=check,
        severity=sev,
        message=message,
        weight=weight,
        when=when,
        description=description,
        file=p.doc.file,
        line=line,
        column=col,
        path=at,
        violation=Violation(rule_id, sev, message),
    )


def _rule_set(p: CheckParser, at: tuple[str | int, ...], data: Any) -> RuleSet | None:
    if not isinstance(data, dict):
        p.error(at, "a rule set is a mapping with boundary and rules")
        return None
    ok = True
    for key in data:
        if key not in RULE_SET_KEYS:
            p.error(
                at + (key,),
                f"unknown setting {key!r} of a rule set; expected: {', '.join(RULE_SET_KEYS)}",
                key=True,
            )
            ok = False
    boundary = None
    if "boundary" not in data:
        p.error(at, "rule set needs 'boundary' (e.g. IS→FS)")
        ok = False
    else:
        raw = data["boundary"]
        boundary = normalize_boundary(raw) if isinstance(raw, str) else None
        if boundary is None:
            p.error(
                at + ("boundary",),
                f"boundary {raw!r}; write two of MK, IS, FS, CS like IS→FS or IS->FS",
            )
            ok = False
    obj = data.get("object")
    if obj is not None and (not isinstance(obj, str) or obj not in p.catalog):
        p.error(at + ("object",), f"unknown object {obj!r}; known objects: {', '.join(p.catalog)}")
        ok = False
    when = p.check(at + ("when",), data["when"]) if "when" in data else None
    if "when" in data and when is None:
        ok = False
    items = data.get("rules")
    if not isinstance(items, list) or not items:
        p.error(at + ("rules",), "rule set needs 'rules', a non-empty list")
        return None
    rules = [_rule(p, at + ("rules", i), item) for i, item in enumerate(items)]
    if not ok or boundary is None or any(r is None for r in rules):
        return None
    return RuleSet(
        boundary=boundary,
        object=obj,
        when=when,
        rules=tuple(r for r in rules if r is not None),
        file=p.doc.file,
        line=p.doc.where(at)[0],
    )


def written_rule_ids(doc: Located) -> list[tuple[str, tuple[str | int, ...]]]:
    """Every rule id written in the file with its place, valid rule or not (for duplicates)."""
    found: list[tuple[str, tuple[str | int, ...]]] = []
    sets = doc.data.get("rule_sets") if isinstance(doc.data, dict) else None
    for i, rs in enumerate(sets if isinstance(sets, list) else []):
        items = rs.get("rules") if isinstance(rs, dict) else None
        for j, rule in enumerate(items if isinstance(items, list) else []):
            if isinstance(rule, dict) and isinstance(rule.get("id"), str):
                found.append((rule["id"], ("rule_sets", i, "rules", j, "id")))
    return found


def parse_rules_file(
    doc: Located, catalog: Mapping[str, Sequence[str]]
) -> tuple[list[RuleSet], list[Problem]]:
    """The rule sets of one parsed file, and every problem found in it."""
    p = CheckParser(doc, catalog)
    data = doc.data
    if not isinstance(data, dict):
        p.error((), "a rules file is a mapping with 'rule_sets'")
        return [], p.problems
    for key in data:
        if key not in FILE_KEYS:
            p.error((key,), f"unknown top-level key {key!r}; expected: rule_sets", key=True)
    if "version" in data and data["version"] != 1:
        p.error(("version",), f"version {data['version']!r}; this tasuki reads version 1")
    sets = data.get("rule_sets")
    if not isinstance(sets, list):
        p.error(("rule_sets",), "'rule_sets' must be a list of rule sets")
        return [], p.problems
    parsed = [_rule_set(p, ("rule_sets", i), item) for i, item in enumerate(sets)]
    return [s for s in parsed if s is not None], p.problems
