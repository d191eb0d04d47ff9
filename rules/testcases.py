"""Rule test files: a RevOps team's unit tests of its own rules, run by ``tasuki rules test``.

A test file::

    rules: [my_rules.yaml]        # optional, relative to this file; default: tasuki.yaml's rules
    tests:
      - name: complete IS→FS handoff passes
        boundary: IS→FS
        object: deal              # optional: default is the boundary's object in tasuki.yaml
        handed_at: "2025-03-10T10:00:00+09:00"
        now: "2025-03-10T12:00:00+09:00"       # optional, default handed_at
        record: {hearing_notes: ..., meeting_date: "2025-03-14T14:00:00+09:00"}
        related: {account: {is_target: true}}  # optional
        artifacts:                             # optional
          - {kind: call, url: "https://app.miitel.jp/v1/calls/1", at: "2025-03-10T09:00:00+09:00"}
        expect:
          outcome: passed         # passed | warned | failed
          score: 100              # optional
          violations: []          # optional: exactly these rule ids, in any order

The file is validated like a rules file (every problem placed, raised together): unknown
settings, unknown fields of the record, expected rule ids that no rule has.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rules.engine import Rulebook, load_rulebook
from rules.schema import normalize_boundary
from rules.values import to_instant
from tasuki.calendar import BusinessCalendar
from tasuki.errors import ConfigError, Problem
from tasuki.settings import resolve_ref
from tasuki.verdicts import Artifact, HandoffContext, Outcome, Verdict
from tasuki.yamlsource import Located, load

CASE_KEYS = ("name", "boundary", "object", "handed_at", "now", "record", "related", "artifacts")
EXPECT_KEYS = ("outcome", "score", "violations")


@dataclass(frozen=True)
class Expectation:
    """What a test case expects of the verdict (None: not checked)."""

    outcome: Outcome
    score: int | None
    violations: frozenset[str] | None


@dataclass(frozen=True)
class TestCase:
    """One handoff and the verdict it should get."""

    name: str
    context: HandoffContext
    expect: Expectation
    file: str
    line: int


@dataclass(frozen=True)
class CaseResult:
    """The outcome of running one test case."""

    case: TestCase
    verdict: Verdict
    failures: tuple[str, ...]

    @property
    def passed(self) -> bool:
        """True when the verdict met every expectation."""
        return not self.failures


@dataclass(frozen=True)
class TestFile:
    """A parsed test file: its cases and the rulebook they test."""

    path: Path
    cases: tuple[TestCase, ...]
    rulebook: Rulebook


class _CaseParser:
    def __init__(
        self,
        doc: Located,
        catalog: Mapping[str, Sequence[str]],
        objects: Mapping[str, str],
        calendar: BusinessCalendar,
    ) -> None:
        self.doc, self.catalog, self.objects, self.calendar = doc, catalog, objects, calendar
        self.problems: list[Problem] = []

    def error(self, at: tuple[str | int, ...], message: str, *, key: bool = False) -> None:
        self.problems.append(self.doc.problem(at, message, key=key))

    def instant(self, at: tuple[str | int, ...], value: Any) -> datetime | None:
        try:
            instant = to_instant(value, self.calendar)
        except ValueError:
            instant = None
        if instant is None:
            self.error(at, f"{value!r} is not a date and time (ISO-8601)")
        return instant

    def fields(self, at: tuple[str | int, ...], obj: str, value: Any) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.error(at, f"expected a mapping of {obj} fields")
            return None
        known = self.catalog.get(obj, ())
        for name in value:
            if name not in known:
                self.error(
                    at + (name,),
                    f"unknown field {obj}.{name}; {obj} fields: {', '.join(known)}",
                    key=True,
                )
        return dict(value)

    def case(self, at: tuple[str | int, ...], data: Any) -> TestCase | None:
        if not isinstance(data, dict):
            self.error(at, "a test case is a mapping with name, boundary, record and expect")
            return None
        n = len(self.problems)
        for key in data:
            if key not in (*CASE_KEYS, "expect"):
                self.error(at + (key,), f"unknown setting {key!r} of a test case", key=True)
        for key in ("name", "boundary", "handed_at", "record", "expect"):
            if key not in data:
                self.error(at, f"test case needs {key!r}")
        if len(self.problems) > n:
            return None
        boundary = normalize_boundary(str(data["boundary"]))
        if boundary is None:
            self.error(at + ("boundary",), f"boundary {data['boundary']!r}; write e.g. IS→FS")
            return None
        obj = data.get("object") or self.objects.get(boundary)
        if obj is None or obj not in self.catalog:
            self.error(at + ("boundary",), f"say which object crosses {boundary} with 'object:'")
            return None
        handed_at = self.instant(at + ("handed_at",), data["handed_at"])
        now = self.instant(at + ("now",), data["now"]) if "now" in data else handed_at
        record = self.fields(at + ("record",), obj, data["record"])
        related: dict[str, dict[str, Any]] = {}
        for rel, fields in (data.get("related") or {}).items():
            if rel not in self.catalog:
                self.error(at + ("related", rel), f"unknown object {rel!r}", key=True)
                continue
            parsed = self.fields(at + ("related", rel), rel, fields)
            if parsed is not None:
                related[rel] = parsed
        artifacts = self.artifacts(at + ("artifacts",), data.get("artifacts") or [])
        expect = self.expectation(at + ("expect",), data["expect"])
        if len(self.problems) > n or handed_at is None or now is None or record is None:
            return None
        assert expect is not None and artifacts is not None
        context = HandoffContext(
            boundary=boundary,
            object=obj,
            record=record,
            handed_at=handed_at,
            now=now,
            related=related,
            artifacts=tuple(artifacts),
        )
        return TestCase(str(data["name"]), context, expect, self.doc.file, self.doc.where(at)[0])

    def artifacts(self, at: tuple[str | int, ...], value: Any) -> list[Artifact] | None:
        if not isinstance(value, list):
            self.error(at, "artifacts is a list of {kind, url, at}")
            return None
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, dict) or {"kind", "url", "at"} - set(item):
                self.error(at + (i,), "an artifact needs kind, url and at")
                continue
            when = self.instant(at + (i, "at"), item["at"])
            if when is not None:
                out.append(Artifact(str(item["kind"]), str(item["url"]), when))
        return out

    def expectation(self, at: tuple[str | int, ...], value: Any) -> Expectation | None:
        if not isinstance(value, dict):
            self.error(at, "expect is a mapping with outcome, and optionally score and violations")
            return None
        for key in value:
            if key not in EXPECT_KEYS:
                self.error(at + (key,), f"unknown setting {key!r} of expect", key=True)
        try:
            outcome = Outcome(value.get("outcome"))
        except ValueError:
            self.error(at + ("outcome",), "outcome must be passed, warned or failed")
            return None
        score = value.get("score")
        if score is not None and (not isinstance(score, int) or not 0 <= score <= 100):
            self.error(at + ("score",), "score must be a whole number from 0 to 100")
            return None
        violations = value.get("violations")
        if violations is not None and not isinstance(violations, list):
            self.error(at + ("violations",), "violations is a list of rule ids")
            return None
        ids = None if violations is None else frozenset(str(v) for v in violations)
        return Expectation(outcome, score, ids)


def load_test_file(
    path: Path,
    catalog: Mapping[str, Sequence[str]],
    objects: Mapping[str, str],
    calendar: BusinessCalendar,
    default_rules: Sequence[Path],
) -> TestFile:
    """Parse and validate a test file and load the rules it tests; ConfigError lists problems.

    ``objects`` maps a boundary to the logical object crossing it (from ``tasuki.yaml``).
    """
    doc = load(path)
    p = _CaseParser(doc, catalog, objects, calendar)
    data = doc.data if isinstance(doc.data, dict) else {}
    for key in data:
        if key not in ("rules", "tests"):
            p.error((key,), f"unknown top-level key {key!r}; expected: rules, tests", key=True)
    rule_paths = list(default_rules)
    if "rules" in data:
        refs = data["rules"]
        if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
            p.error(("rules",), "rules is a list of rules file paths")
        else:
            rule_paths = [resolve_ref(r, path.parent) for r in refs]
    tests = data.get("tests")
    if not isinstance(tests, list) or not tests:
        p.error(("tests",), "a test file needs 'tests', a non-empty list of test cases")
        tests = []
    cases = [c for i, item in enumerate(tests) if (c := p.case(("tests", i), item)) is not None]
    rulebook = None
    try:
        rulebook = load_rulebook(rule_paths, catalog)
    except ConfigError as exc:
        p.problems.extend(exc.problems)
    if rulebook is not None:
        known = {r.id for r in rulebook.rules}
        for i, item in enumerate(tests):
            expected = (
                (item.get("expect") or {}).get("violations") if isinstance(item, dict) else None
            )
            for j, rid in enumerate(expected if isinstance(expected, list) else []):
                if rid not in known:
                    p.error(("tests", i, "expect", "violations", j), f"no rule has id {rid!r}")
    if p.problems:
        raise ConfigError(p.problems)
    assert rulebook is not None
    return TestFile(path, tuple(cases), rulebook)


def run_case(case: TestCase, rulebook: Rulebook, calendar: BusinessCalendar) -> CaseResult:
    """Evaluate one test case and compare the verdict with what it expects."""
    verdict = rulebook.evaluate(case.context, calendar)
    failures = []
    exp = case.expect
    if verdict.outcome is not exp.outcome:
        failures.append(f"outcome {verdict.outcome.value}, expected {exp.outcome.value}")
    if exp.score is not None and verdict.score != exp.score:
        failures.append(f"score {verdict.score}, expected {exp.score}")
    if exp.violations is not None:
        got = {v.rule_id for v in verdict.violations}
        missing, extra = sorted(exp.violations - got), sorted(got - exp.violations)
        if missing:
            failures.append(f"not broken: {', '.join(missing)}")
        if extra:
            failures.append(f"also broken: {', '.join(extra)}")
    return CaseResult(case, verdict, tuple(failures))


def run_test_file(test_file: TestFile, calendar: BusinessCalendar) -> list[CaseResult]:
    """Every case of a loaded test file, run."""
    return [run_case(c, test_file.rulebook, calendar) for c in test_file.cases]
