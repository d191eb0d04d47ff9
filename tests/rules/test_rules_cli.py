"""``tasuki rules check | test | explain`` through the real command line."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tasuki.cli import main
from tasuki.settings import Settings, builtin_path
from tests.rules.rules_support import alias_bomb, seed_demo_store, write_files

GOOD = """
rule_sets:
  - boundary: IS->FS
    rules:
      - {id: notes, check: length, field: deal.hearing_notes, min: 10, message: ヒアリング不足}
"""
BAD = """
rule_sets:
  - boundary: IS->FS
    rules:
      - {id: notes2, check: lenght, field: deal.hearing_notes, message: ヒアリング不足}
      - {id: sla, check: sla, end: deal.fs_accepted_at, within: someday, message: 遅い}
"""


@pytest.fixture
def runner(settings: Settings) -> CliRunner:
    """A runner whose environment points tasuki at the test's data folder."""
    env = {"TASUKI_DATA_DIR": str(settings.data_dir), "TASUKI_CONFIG": None, "COLUMNS": "250"}
    return CliRunner(env=env)


def test_check_valid(runner: CliRunner, tmp_path: Path) -> None:
    (path,) = write_files(tmp_path, GOOD)
    result = runner.invoke(main, ["rules", "check", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: 1 rules in 1 rule sets")


def test_check_default_rules(runner: CliRunner) -> None:
    result = runner.invoke(main, ["rules", "check"])
    assert result.exit_code == 0, result.output
    assert "default.yaml" in result.output


def test_check_lists_every_problem(runner: CliRunner, tmp_path: Path) -> None:
    good, bad = write_files(tmp_path, GOOD, BAD)
    result = runner.invoke(main, ["rules", "check", str(good), str(bad)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[0].startswith(f"{bad}:5:29: unknown check type 'lenght'; known check types: all")
    assert lines[1].startswith(f"{bad}:6:65: bad duration 'someday'")
    assert lines[2] == "2 problem(s)"


def test_check_an_alias_bomb_fast(runner: CliRunner, tmp_path: Path) -> None:
    (path,) = write_files(tmp_path, alias_bomb())
    start = time.perf_counter()
    result = runner.invoke(main, ["rules", "check", str(path)])
    assert time.perf_counter() - start < 1.0
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"{path}:5:8: aliases stand for more than 10,000 values; write them out",
        "1 problem(s)",
    ]


def test_rule_tests_of_the_default_pack_pass(runner: CliRunner) -> None:
    result = runner.invoke(main, ["rules", "test", str(builtin_path("rules/default_tests.yaml"))])
    assert result.exit_code == 0, result.output
    assert "7 passed, 0 failed" in result.output


TESTS = """
rules: [rules0.yaml]
tests:
  - name: notes present
    boundary: IS→FS
    handed_at: 2025-03-10T10:00:00+09:00
    record: {hearing_notes: 予算は年300万円、決裁者は部長}
    expect: {outcome: passed, score: 100, violations: []}
  - name: wrong expectation
    boundary: IS→FS
    handed_at: 2025-03-10T10:00:00+09:00
    record: {hearing_notes: 短い}
    expect: {outcome: passed}
"""


def test_rule_tests_report_failures(runner: CliRunner, tmp_path: Path) -> None:
    write_files(tmp_path, GOOD)
    tests = tmp_path / "rules_test.yaml"
    tests.write_text(TESTS, encoding="utf-8")
    result = runner.invoke(main, ["rules", "test", str(tests)])
    assert result.exit_code == 1
    assert "1 passed, 1 failed" in result.output
    assert "outcome failed, expected passed" in result.output


def test_rule_test_files_are_validated(runner: CliRunner, tmp_path: Path) -> None:
    write_files(tmp_path, GOOD)
    tests = tmp_path / "rules_test.yaml"
    tests.write_text(
        TESTS.replace("{hearing_notes: 短い}", "{hearing_note: 短い}").replace(
            "violations: []", "violations: [nope]"
        ),
        encoding="utf-8",
    )
    result = runner.invoke(main, ["rules", "test", str(tests)])
    assert result.exit_code == 1
    assert f"{tests}:8:56: no rule has id 'nope'" in result.output
    assert f"{tests}:12:14: unknown field deal.hearing_note; deal fields:" in result.output


def test_explain_a_stored_handoff(runner: CliRunner, settings: Settings) -> None:
    rt = seed_demo_store(settings)
    from sqlalchemy import select

    from tasuki.store.models import Handoff

    with rt.store.session() as session:
        h = session.scalars(
            select(Handoff).where(Handoff.boundary == "IS→FS").order_by(Handoff.id)
        ).first()
        assert h is not None
        record_id = h.record_id
    result = runner.invoke(
        main,
        [
            "rules",
            "explain",
            "--boundary",
            "IS->FS",
            "--record",
            record_id,
            "--now",
            "2025-03-14T12:00:00",
        ],
    )
    assert result.exit_code == 0, result.output
    # The record by name with its id; times in the company's timezone, labelled; --now read
    # in it too.
    assert f" [{record_id}], handed over " in result.output
    assert "as of 2025-03-14 12:00 JST" in result.output
    for rule_id in ("is-fs.hearing-notes", "is-fs.call-recording", "is-fs.fs-answer-sla"):
        assert rule_id in result.output
    assert "large-deal.authority" in result.output  # shown as n/a with why


def test_explain_unknown_record(runner: CliRunner, settings: Settings) -> None:
    seed_demo_store(settings)
    result = runner.invoke(main, ["rules", "explain", "--boundary", "IS→FS", "--record", "nope"])
    assert result.exit_code == 1
    assert "no handoff of record nope across IS→FS" in result.output
