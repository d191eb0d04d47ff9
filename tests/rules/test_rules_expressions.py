"""Expressions that cannot hurt the worker: refused at load with FILE:LINE:COL, or bounded.

Each hostile expression is refused when its file is loaded or stopped while it runs, within a
second and a few megabytes; a job timeout (or MemoryError) during an evaluation is never taken
for the rule's "no".
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rq.timeouts import JobTimeoutException, UnixSignalDeathPenalty

from rules import HandoffContext, Rulebook, RuleStatus, expressions
from tasuki.errors import ConfigError
from tests.rules.rules_support import CALENDAR, handoff, rulebook_from

SECONDS = 1.0
"""Wall time a hostile expression may cost, refused or run."""
MEGABYTES = 50
"""Memory it may take at its peak."""


def expression_rule(expr: str) -> str:
    """A rules file of one expression rule ``r``; the expression sits at line 7, column 15."""
    quoted = "'" + expr.replace("'", "''") + "'"
    return (
        "rule_sets:\n  - boundary: IS→FS\n    rules:\n      - id: r\n        message: m\n"
        f"        check: expression\n        expr: {quoted}\n"
    )


def measured(action: Callable[[], Any]) -> tuple[Any, float, float]:
    """``action()``'s result (or the exception it raised), its CPU seconds and its peak
    megabytes.

    The time is this process's CPU time (what the expression costs, whatever else the machine
    runs), taken on a plain run; the memory on a second one under tracemalloc (which slows
    Python code down, so the two are not measured together).
    """

    def outcome() -> Any:
        try:
            return action()
        except ConfigError as exc:
            return exc

    start = time.process_time()
    result = outcome()
    seconds = time.process_time() - start
    tracemalloc.start()
    try:
        outcome()
        peak = tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()
    return result, seconds, peak


NUMBER = "1" + "0" * 400


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        (
            "[x for x in str(9**4000000)]",
            "str(9 ** 4000000) is too costly: a number of more than 1,024 bits",
        ),
        ("9**9**9", "9 ** 9 ** 9 is too costly: a number of more than 1,024 bits"),
        ("1 << 10**6", "1 << 10 ** 6 is too costly: a number of more than 1,024 bits"),
        (
            f"deal.amount > {NUMBER}",
            f"{NUMBER[:57]}... is too costly: a number of more than 1,024 bits",
        ),
        ('"a".ljust(10**10)', "'.ljust' is not available in expressions"),
        ("deal.name.center(10**9)", "'.center' is not available in expressions"),
        ("deal.name.__class__", "'.__class__' is not available in expressions"),
        (
            "'x'*10**9",
            "'x' * 10 ** 9 is too costly: a value of more than 200,000 characters or items",
        ),
        (
            "'%999999999d' % 1",
            "'%999999999d' % 1 always fails: FeatureNotAvailable: "
            "text formatting with % is not available",
        ),
        ("(lambda: 1)()", "lambda is not available in expressions"),
        (
            "f'{deal.amount:>999999999}'",
            "format specs in f-strings ({value:spec}) are not available",
        ),
        ("deal.amount @ 2", "operator MatMult is not available"),
        ("{c for c in deal.stakeholders}", "a set comprehension is not available in expressions"),
        ("(" * 5000 + "1" + ")" * 5000, "expression of 10,001 characters; at most 2,000"),
        ("(" * 999 + "1" + ")" * 999, "expression syntax: too many nested parentheses"),
        ("[" * 150 + "]" * 150, "expression nested more than 100 levels deep"),
        ("-" * 1500 + "1", "expression nested more than 100 levels deep"),
        ("+".join(["deal.amount"] * 150), "expression nested more than 100 levels deep"),
        ("1/0", "1 / 0 always fails: ZeroDivisionError: division by zero"),
        (
            "[deal for deal in deal.stakeholders]",
            "comprehension variable 'deal' hides a name; choose another",
        ),
    ],
)
def test_refused_at_load_with_its_place(tmp_path: Path, expr: str, message: str) -> None:
    text = expression_rule(expr)
    error, seconds, peak = measured(lambda: rulebook_from(tmp_path, text))
    assert isinstance(error, ConfigError)
    problems = [f"{Path(p.file).name}:{p.line}:{p.column}: {p.message}" for p in error.problems]
    assert f"rules0.yaml:7:15: {message}" in problems
    assert seconds < SECONDS
    assert peak < MEGABYTES


NOTES = "x" * 100_000
"""A long hearing note: longer than any rule needs, within what a CRM stores."""
PEOPLE = ["a"] * 10_000


@pytest.mark.parametrize(
    ("expr", "record", "reason"),
    [
        (
            "deal.amount ** 4000000",
            {"amount": 9},
            "expression stopped: a number of more than 1,024 bits",
        ),
        (
            "deal.amount << deal.amount",
            {"amount": 100_000},
            "expression stopped: a number of more than 1,024 bits",
        ),
        (
            "deal.hearing_notes * 10**9",
            {"hearing_notes": "x"},
            "expression stopped: a value of more than 200,000 characters or items",
        ),
        (
            "deal.hearing_notes.replace('x', deal.hearing_notes) == ''",
            {"hearing_notes": "x" * 1000},
            "expression stopped: a value of more than 200,000 characters or items",
        ),
        (
            "'-'.join([deal.hearing_notes] * 10) == ''",
            {"hearing_notes": NOTES},
            "expression stopped: a value of more than 200,000 characters or items",
        ),
        (
            "str([deal.hearing_notes] * 10) == ''",
            {"hearing_notes": NOTES},
            "expression stopped: a value of more than 200,000 characters or items",
        ),
        (
            "[[[[[deal.amount]*99]*99]*99]*99]*99 == [[[[[deal.amount]*99]*99]*99]*99]*99",
            {"amount": 1},
            "expression stopped: a value of more than 200,000 characters or items",
        ),
        (
            "[deal.hearing_notes + 'x' for c in deal.hearing_notes]",
            {"hearing_notes": NOTES},
            "expression stopped: values of more than 2,000,000 characters or items in all",
        ),
        (
            "[c for c in deal.hearing_notes for d in deal.hearing_notes]",
            {"hearing_notes": "x" * 5000},
            "expression stopped: more than 10,000 items in comprehensions",
        ),
        (
            "[c == 'a' and c != 'b' and c in 'abc' and c < 'z' for c in deal.stakeholders]",
            {"stakeholders": PEOPLE},
            "expression stopped: more than 50,000 steps",
        ),
        (  # every step is legal and cheap enough, there are just too many of them
            "[deal.hearing_notes.count('xy') for c in deal.stakeholders]",
            {"hearing_notes": NOTES, "stakeholders": PEOPLE},
            "expression stopped: more than 0.5 s",
        ),
        (
            "'%999999999d' % deal.amount",
            {"amount": 1},
            "expression failed: FeatureNotAvailable: text formatting with % is not available",
        ),
    ],
)
def test_bounded_while_it_runs(
    tmp_path: Path, expr: str, record: dict[str, Any], reason: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if "more than 0.5 s" not in reason:
        # the other bounds are counted, not timed: a loaded machine must not reach the clock's
        # bound before them
        monkeypatch.setattr(expressions, "MAX_SECONDS", 60.0)
    rulebook = rulebook_from(tmp_path, expression_rule(expr))
    ctx = handoff("IS→FS", "deal", record)
    said, seconds, peak = measured(lambda: why(rulebook, ctx))
    assert said == reason
    assert seconds < SECONDS
    assert peak < MEGABYTES


def why(rulebook: Rulebook, ctx: HandoffContext) -> str:
    """Why rule ``r`` is broken for ``ctx`` ("kept" when it is not)."""
    (result,) = rulebook.explain(ctx, CALENDAR)
    return result.reason if result.status is RuleStatus.BROKEN else "kept"


@pytest.mark.parametrize(
    ("expr", "record"),
    [
        ("now.hour == handoff.at.hour and handoff.at.weekday() == 0", {}),
        ("deal.name.strip().lower().startswith('acme')", {"name": " ACME Corp"}),
        (
            "len([s for s in deal.stakeholders if s.endswith('部長')]) == 1",
            {"stakeholders": ["a", "本部長"]},
        ),
        ("deal.name.replace(' ', '') == 'AB'", {"name": "A B"}),
        ("', '.join(deal.stakeholders) == 'a, b'", {"stakeholders": ["a", "b"]}),
        (
            "deal.amount ** 2 > 10**12 and deal.amount << 2 == 4 * deal.amount",
            {"amount": 2_000_000},
        ),
        ("{'A': 1, 'B': 2}.get(deal.stage, 0) == 2", {"stage": "B"}),
        ("len(deal.hearing_notes) == 100000", {"hearing_notes": NOTES}),
        ("f'{deal.stage}-{deal.amount}' == 'B-3'", {"stage": "B", "amount": 3}),
    ],
)
def test_ordinary_expressions_hold(tmp_path: Path, expr: str, record: dict[str, Any]) -> None:
    rulebook = rulebook_from(tmp_path, expression_rule(expr))
    assert why(rulebook, handoff("IS→FS", "deal", record)) == "kept"


class Stalls:
    """A field value whose comparison is where an exception from outside strikes."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __eq__(self, other: object) -> bool:
        raise self.error


@pytest.mark.parametrize(
    "error",
    [JobTimeoutException("Task exceeded maximum timeout value (240 seconds)"), MemoryError()],
    ids=["job-timeout", "memory"],
)
def test_what_is_not_the_expressions_passes_through(tmp_path: Path, error: Exception) -> None:
    rulebook = rulebook_from(tmp_path, expression_rule("deal.stage == 'Won'"))
    ctx = handoff("IS→FS", "deal", {"stage": Stalls(error)})
    with pytest.raises(type(error)):
        rulebook.evaluate(ctx, CALENDAR)


def test_rq_job_timeout_stops_the_evaluation(tmp_path: Path) -> None:
    """rq's own death penalty (SIGALRM) strikes inside a slow but legal expression."""
    slow = "[deal.hearing_notes.count('xy') for c in deal.stakeholders]"  # 0.5 s each
    rulebook = rulebook_from(tmp_path, expression_rule(slow))
    ctx = handoff("IS→FS", "deal", {"hearing_notes": NOTES, "stakeholders": PEOPLE})
    reasons = []
    alarm = UnixSignalDeathPenalty(1, JobTimeoutException)  # type: ignore[no-untyped-call]
    with pytest.raises(JobTimeoutException), alarm:
        for _ in range(8):  # 4 s: the alarm is due after 1
            reasons.append(why(rulebook, ctx))
    assert reasons, "the alarm struck before any evaluation ran"
    assert all(r == "expression stopped: more than 0.5 s" for r in reasons)
