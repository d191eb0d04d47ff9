"""A bad rules file: every problem at once, each at its exact FILE:LINE:COL; nothing loaded."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from rules import load_rulebook
from tasuki.errors import ConfigError
from tests.rules.rules_support import CATALOG, alias_bomb, rulebook_from, write_files


def problems(tmp_path: Path, *texts: str) -> list[str]:
    """Each problem as 'rulesN.yaml:LINE:COL: message' (file names without the folder)."""
    with pytest.raises(ConfigError) as info:
        rulebook_from(tmp_path, *texts)
    return [f"{Path(p.file).name}:{p.line}:{p.column}: {p.message}" for p in info.value.problems]


HEAD = "rule_sets:\n  - boundary: IS→FS\n    rules:\n"


def place(text: str, token: str) -> str:
    """'rules0.yaml:LINE:COL' of the first ``token`` in ``text``."""
    for n, line in enumerate(text.splitlines(), 1):
        if token in line:
            return f"rules0.yaml:{n}:{line.index(token) + 1}"
    raise AssertionError(f"{token!r} not in the text")


FIELDS = (
    "account_id, amount, authority, budget, call_recording_url, close_date, contract_terms, "
    "created_at, cs_owner, fs_acceptance, fs_accepted_at, fs_proposal, hearing_notes, "
    "is_proposal, kickoff_date, lead_id, meeting_date, meeting_recording_url, modified_at, name, "
    "need, owner, reject_reason, sourced_by, stage, stakeholders, success_criteria, "
    "tasuki_score, tasuki_verdict, tasuki_violations, timeline"
)


@pytest.mark.parametrize(
    ("rule", "token", "message"),
    [
        (
            "      - {id: a, check: requird, field: deal.need, message: m}\n",
            "requird",
            "unknown check type 'requird'; known check types: all, any, artifact, date_order, "
            "date_window, expression, length, min_length, not, not_empty, one_of, pattern, "
            "range, related, required, sla, url",
        ),
        (
            "      - {id: a, check: required, field: deal.hearing_note, message: m}\n",
            "deal.hearing_note",
            f"unknown field deal.hearing_note; deal fields: {FIELDS}",
        ),
        (
            "      - {id: a, check: required, field: opportunity.need, message: m}\n",
            "opportunity",
            "unknown object 'opportunity'; known objects: user, account, lead, deal",
        ),
        (
            "      - id: a\n        check: sla\n        end: deal.fs_accepted_at\n"
            "        within: 1 busines day\n        message: m\n",
            "1 busines",
            "bad duration '1 busines day'; write a duration like '1 business hour', "
            "'2 business days', '30 minutes' or '4h'",
        ),
        (
            "      - {id: a, check: sla, end: deal.fs_accepted_at, within: 2 business weeks, "
            "message: m}\n",
            "2 business weeks",
            "'2 business weeks': business time is counted in minutes, hours or days",
        ),
        (
            "      - {id: a, check: required, field: deal.need, message: m, colour: red}\n",
            "colour",
            "unknown setting 'colour' for check 'required'; expected: field",
        ),
        (
            "      - {id: a, check: required, message: m}\n",
            "{id",
            "check 'required' needs 'field'",
        ),
        (
            "      - {id: a, check: required, field: deal.need, severity: fatal, message: m}\n",
            "fatal",
            "severity 'fatal'; expected error or warn",
        ),
        (
            "      - {id: a, check: required, field: deal.need}\n",
            "{id",
            "rule needs 'message' (what people are told when it is broken)",
        ),
        (
            "      - {id: a, check: pattern, field: deal.need, regex: '([a-z]', message: m}\n",
            "'([a-z]'",
            "bad regular expression: missing ), unterminated subpattern at position 0",
        ),
        (
            "      - {id: a, check: artifact, kind: video, message: m}\n",
            "video",
            "unknown artifact kind 'video'; known: call, meeting",
        ),
        (
            "      - {id: a, check: expression, expr: 'deal.amont > 1', message: m}\n",
            "'deal.amont",
            f"unknown field deal.amont; deal fields: {FIELDS}",
        ),
        (
            "      - {id: a, check: expression, expr: 'x = 1', message: m}\n",
            "'x = 1'",
            "write one expression, not statements",
        ),
        (
            "      - id: a\n        check: all\n        of:\n          - {check: range, "
            "field: deal.amount, min: 5, max: 1}\n        message: m\n",
            "1}",
            "max 1 is below min 5",
        ),
    ],
)
def test_each_problem_at_its_place(tmp_path: Path, rule: str, token: str, message: str) -> None:
    text = HEAD + rule
    assert problems(tmp_path, text) == [f"{place(text, token)}: {message}"]


def test_every_problem_of_every_file_at_once(tmp_path: Path) -> None:
    first = """\
rule_sets:
  - boundary: IS=>FS
    rules:
      - id: is-fs.notes
        check: length
        field: deal.hearing_notes
        min: 20
        message: ヒアリング不足
"""
    second = """\
rule_sets:
  - boundary: IS->FS
    colour: blue
    rules:
      - id: is-fs.notes
        check: required
        field: deal.need
        message: 重複
      - id: is-fs.sla
        check: sla
        end: deal.fs_accepted_at
        within: soon
        message: 遅い
"""
    third = "rule_sets:\n  - boundary: [\n"
    assert problems(tmp_path, first, second, third) == [
        "rules0.yaml:2:15: boundary 'IS=>FS'; write two of MK, IS, FS, CS like IS→FS or IS->FS",
        "rules1.yaml:3:5: unknown setting 'colour' of a rule set; expected: boundary, object, "
        "when, rules",
        "rules1.yaml:5:13: duplicate rule id 'is-fs.notes' (first at "
        f"{tmp_path / 'rules0.yaml'}:4:13)",
        "rules1.yaml:12:17: bad duration 'soon'; write a duration like '1 business hour', "
        "'2 business days', '30 minutes' or '4h'",
        "rules2.yaml:3:1: YAML syntax: expected the node content, but found '<stream end>'",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rules: []\n", "rules0.yaml:1:1: unknown top-level key 'rules'; expected: rule_sets"),
        ("rule_sets:\n  - boundary: IS→IS\n    rules: [{}]\n", "rules0.yaml:2:15: boundary"),
        ("rule_sets:\n  - boundary: MK→IS\n    object: opp\n    rules: []\n", "rules0.yaml:3:13:"),
        (
            "rule_sets:\n  - {boundary: MK→IS, rules: [{id: 'a b', check: required}]}\n",
            "2:36: rule id 'a b'",
        ),
        ("rule_sets:\n- boundary: MK→IS\n  rules:\n  - {id: x, message: m}\n", "4:5: missing"),
        (
            "rule_sets:\n- boundary: MK→IS\n  rules:\n"
            "  - {id: x, message: m, check: x, check: y}\n",
            "4:35: duplicate key",
        ),
    ],
)
def test_structure_problems(tmp_path: Path, text: str, expected: str) -> None:
    found = problems(tmp_path, text)
    assert any(expected in p for p in found), found


def test_a_bad_file_loads_nothing_even_next_to_good_ones(tmp_path: Path) -> None:
    good = (
        "rule_sets:\n  - boundary: MK→IS\n    rules:\n"
        "      - {id: a, check: required, field: lead.phone, message: m}\n"
    )
    bad = "rule_sets:\n  - boundary: MK→IS\n    rules:\n      - {id: b, check: nope, message: m}\n"
    paths = write_files(tmp_path, good, bad)
    with pytest.raises(ConfigError) as info:
        load_rulebook(paths, CATALOG)
    assert len(info.value.problems) == 1
    assert str(info.value).startswith(f"{paths[1]}:4:24: unknown check type 'nope'")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # at the first alias past the bound: 'e: &e [*d' (each *d stands for 7,381 values)
        (
            alias_bomb(),
            "rules0.yaml:5:8: aliases stand for more than 10,000 values; write them out",
        ),
        ("a: &a [1, *a]\nrule_sets: []\n", "rules0.yaml:1:11: alias *a inside its own value"),
        (
            "rule_sets: " + "[" * 5000 + "]" * 5000 + "\n",
            "rules0.yaml:1:111: nested more than 100 levels deep",
        ),
    ],
    ids=["alias-bomb", "recursive-alias", "deep-nesting"],
)
def test_yaml_that_would_not_fit_in_memory(tmp_path: Path, text: str, expected: str) -> None:
    start = time.process_time()
    assert problems(tmp_path, text) == [expected]
    # not a speed claim: without the bounds these would run for hours or exhaust memory
    assert time.process_time() - start < 10.0


def test_aliases_within_bounds_still_serve(tmp_path: Path) -> None:
    rulebook = rulebook_from(
        tmp_path,
        """\
rule_sets:
  - boundary: IS→FS
    rules:
      - id: a
        when: &large {check: range, field: deal.amount, min: 5000000}
        check: required
        field: deal.authority
        message: m
      - {id: b, check: required, field: deal.budget, message: m, when: *large}
""",
    )
    (rule_set,) = rulebook.rule_sets
    first, second = (r.when for r in rule_set.rules)
    assert first is not None and first == second
