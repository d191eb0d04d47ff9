"""The engine: verdicts and scores, segments, purity, the default pack, the demo org."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rules import Outcome, Severity, Violation, load_rulebook
from tasuki.settings import Settings, builtin_path
from tests.rules.rules_support import (
    CALENDAR,
    CATALOG,
    demo_contexts,
    handoff,
    rulebook_from,
    seed_demo_store,
    write_files,
)

PACK = """
rule_sets:
  - boundary: IS->FS
    rules:
      - {id: notes, check: required, field: deal.hearing_notes, weight: 3,
         message: "ヒアリング内容がありません 🙇 (no hearing notes)"}
      - {id: bant, check: required, field: deal.budget, severity: warn, message: 予算が未記入}
  - boundary: IS→FS
    object: deal
    when: {check: range, field: deal.amount, min: 5000000}
    rules:
      - {id: large.authority, check: required, field: deal.authority, message: 決裁者は？}
  - boundary: MK→IS
    object: lead
    rules:
      - {id: phone, check: required, field: lead.phone, message: 電話番号なし}
"""


@pytest.mark.parametrize(
    ("record", "outcome", "score", "violations"),
    [
        ({"hearing_notes": "x", "budget": "y"}, Outcome.PASSED, 100, []),
        ({"hearing_notes": "x"}, Outcome.WARNED, 75, ["bant"]),
        ({"budget": "y"}, Outcome.FAILED, 25, ["notes"]),
        ({}, Outcome.FAILED, 0, ["notes", "bant"]),
        # the large-deal segment applies: 5 weights, 1 lost → 80
        ({"hearing_notes": "x", "budget": "y", "amount": 6_000_000}, Outcome.FAILED, 80, []),
        (
            {"hearing_notes": "x", "budget": "y", "amount": 6_000_000, "authority": "CEO"},
            Outcome.PASSED,
            100,
            [],
        ),
    ],
)
def test_verdict_outcome_score_and_violations(
    tmp_path: Path,
    record: dict[str, object],
    outcome: Outcome,
    score: int,
    violations: list[str],
) -> None:
    verdict = rulebook_from(tmp_path, PACK).evaluate(handoff("IS→FS", "deal", record), CALENDAR)
    assert verdict.outcome is outcome
    assert verdict.score == score
    if violations or outcome is Outcome.PASSED:
        assert [v.rule_id for v in verdict.violations] == violations


def test_messages_round_trip_intact(tmp_path: Path) -> None:
    verdict = rulebook_from(tmp_path, PACK).evaluate(handoff("IS→FS", "deal", {}), CALENDAR)
    assert verdict.violations[0] == Violation(
        "notes", Severity.ERROR, "ヒアリング内容がありません 🙇 (no hearing notes)"
    )
    assert verdict.violations[1] == Violation("bant", Severity.WARN, "予算が未記入")


@pytest.mark.parametrize(
    ("boundary", "obj", "rule_ids"),
    [
        ("IS→FS", "deal", ["notes", "bant"]),
        ("IS->FS", "deal", ["notes", "bant"]),  # the ASCII arrow is the same boundary
        ("MK→IS", "lead", ["phone"]),
        ("MK→IS", "deal", []),  # the rule set is declared for leads
        ("FS→CS", "deal", []),  # no rules: passed, 100
    ],
)
def test_rule_sets_apply_by_boundary_and_object(
    tmp_path: Path, boundary: str, obj: str, rule_ids: list[str]
) -> None:
    verdict = rulebook_from(tmp_path, PACK).evaluate(handoff(boundary, obj, {}), CALENDAR)
    assert [v.rule_id for v in verdict.violations] == rule_ids
    assert (verdict.outcome is Outcome.PASSED) == (not rule_ids)


def test_evaluation_is_pure(tmp_path: Path) -> None:
    rulebook = rulebook_from(tmp_path, PACK)
    record = {"hearing_notes": "x", "amount": "6000000"}
    ctx = handoff("IS→FS", "deal", record, now="2025-03-20 10:00")
    first = rulebook.evaluate(ctx, CALENDAR)
    assert all(rulebook.evaluate(ctx, CALENDAR) == first for _ in range(3))
    assert record == {"hearing_notes": "x", "amount": "6000000"}


def test_digest_follows_content(tmp_path: Path) -> None:
    digests = []
    for name, text in (("a", PACK), ("b", PACK), ("c", PACK + "\n")):
        (tmp_path / name).mkdir()
        digests.append(load_rulebook(write_files(tmp_path / name, text), CATALOG).digest)
    assert digests[0] == digests[1] != digests[2]
    assert len(digests[0]) == 64


def test_default_pack_loads_and_covers_the_boundaries() -> None:
    rulebook = load_rulebook([builtin_path("rules/default.yaml")], CATALOG)
    assert set(rulebook.boundaries) == {"MK→IS", "IS→FS", "FS→CS", "CS→FS"}
    ids = {r.id for r in rulebook.rules}
    assert {
        "mk-is.target-account",
        "mk-is.first-touch-sla",
        "is-fs.hearing-notes",
        "is-fs.call-recording",
        "is-fs.meeting-date",
        "is-fs.fs-answer-sla",
        "fs-cs.success-criteria",
        "fs-cs.meeting-recording",
        "fs-cs.kickoff",
    } <= ids
    assert all(any("\u3040" <= ch <= "\u30ff" for ch in r.message) for r in rulebook.rules)


def test_default_pack_on_the_demo_org(settings: Settings) -> None:
    """The pipeline's own path (sync → handoffs → context) on the synthetic org, judged."""
    rt = seed_demo_store(settings)
    contexts = demo_contexts(rt, datetime(2025, 3, 14, 23, 0, tzinfo=UTC))
    rulebook = rt.rulebook
    verdicts = [rulebook.evaluate(c, rt.calendar) for c in contexts]
    by_boundary = Counter(c.boundary for c in contexts)
    assert set(by_boundary) == {"MK→IS", "IS→FS", "FS→CS"}
    outcomes = Counter(v.outcome for v in verdicts)
    assert outcomes[Outcome.PASSED] and outcomes[Outcome.WARNED] and outcomes[Outcome.FAILED]
    # Each deliberate gap of the demo org is found exactly where it is.
    for ctx, verdict in zip(contexts, verdicts, strict=True):
        broken = {v.rule_id for v in verdict.violations}
        assert 0 <= verdict.score <= 100
        assert (verdict.outcome is Outcome.PASSED) == (not broken)
        if ctx.boundary == "IS→FS":
            no_link = not ctx.record.get("call_recording_url")
            assert ("is-fs.call-recording" in broken) == no_link
            assert ("is-fs.hearing-notes" in broken) == (not ctx.record.get("hearing_notes"))
        if ctx.boundary == "MK→IS":
            mql, touch = ctx.record.get("mql_at"), ctx.record.get("first_touch_at")
            assert mql and touch
            late = (
                rt.calendar.business_seconds(
                    datetime.fromisoformat(mql), datetime.fromisoformat(touch)
                )
                > 3600
            )
            assert ("mk-is.first-touch-sla" in broken) == late
        if ctx.boundary == "FS→CS":
            assert ("fs-cs.contract-terms" in broken) == (not ctx.record.get("contract_terms"))
    found = Counter(v.rule_id for verdict in verdicts for v in verdict.violations)
    for rule_id in (
        "mk-is.first-touch-sla",
        "is-fs.hearing-notes",
        "is-fs.call-recording",
        "fs-cs.success-criteria",
    ):
        assert found[rule_id] > 0, rule_id
