"""``tasuki rules apply [--dry-run]``: a changed rule re-judges every stored handoff; the dry
run names exactly the verdicts it flips and writes nothing; the real run stores them and writes
them back, so the store and the CRM agree."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import selectinload

import worker
from connectors.local import LocalCrm
from tasuki import rulechanges, runtime, startup
from tasuki.cli import main
from tasuki.mapping import Mapper
from tasuki.settings import Settings, builtin_path, load_settings
from tasuki.store.models import Handoff, LedgerEntry, Verdict
from tests.rules.rules_support import seed_demo_store

TARGET_RULE = "mk-is.target-account"


@dataclass
class Org:
    """The demo org synced into the store, judged and written back; rules in its own file."""

    settings: Settings
    rules: Path
    env: dict[str, str | None]

    def runtime(self) -> runtime.Runtime:
        return startup.build(load_settings(self.env))  # type: ignore[arg-type]


def own_rules(folder: Path) -> tuple[Path, Path]:
    """A tasuki.yaml naming a copy of the default rules; (config, rules)."""
    rules = folder / "rules.yaml"
    rules.write_text(builtin_path("rules/default.yaml").read_text(encoding="utf-8"), "utf-8")
    text = builtin_path("tasuki.yaml").read_text(encoding="utf-8")
    config = folder / "tasuki.yaml"
    config.write_text(text.replace("builtin:rules/default.yaml", str(rules)), "utf-8")
    return config, rules


def target_rule_becomes_an_error(rules: Path) -> None:
    text = rules.read_text(encoding="utf-8")
    head, rule, tail = text.partition(f"id: {TARGET_RULE}")
    assert rule
    rules.write_text(head + rule + tail.replace("severity: warn", "severity: error", 1), "utf-8")


@pytest.fixture
def org(tmp_path: Path) -> Iterator[Org]:
    config, rules = own_rules(tmp_path)
    env: dict[str, str | None] = {
        "TASUKI_CONFIG": str(config),
        "TASUKI_DATA_DIR": str(tmp_path / "data"),
    }
    settings = load_settings(env)  # type: ignore[arg-type]
    rt = seed_demo_store(settings)
    with runtime.activate(rt):
        first = rulechanges.apply(rt, datetime.now(UTC))
        assert first.flips and len(first.flips) == first.judged  # all judged the first time
        assert worker.write_back()["records"] > 0
    rt.store.engine.dispose()
    yield Org(settings, rules, env)


def stored(org: Org) -> dict[int, Verdict]:
    rt = org.runtime()
    with rt.store.session() as s:
        rows = s.scalars(
            select(Verdict).options(selectinload(Verdict.violations), selectinload(Verdict.handoff))
        ).all()
        s.expunge_all()
    rt.store.engine.dispose()
    return {v.handoff_id: v for v in rows}


def crm_agrees(org: Org) -> list[str]:
    """Records whose verdict field in the embedded CRM differs from their latest handoff's."""
    rt = org.runtime()
    crm = LocalCrm(org.settings.data_dir / "crm.db")
    mapper = Mapper(rt.settings.config)
    latest: dict[tuple[str, str], Handoff] = {}
    with rt.store.session() as s:
        for h in s.scalars(
            select(Handoff)
            .order_by(Handoff.handed_at, Handoff.id)
            .options(selectinload(Handoff.verdict))
        ):
            latest[(h.object, h.record_id)] = h
        assert latest
        wrong = []
        for (obj, rid), h in latest.items():
            assert h.verdict is not None
            held = crm.get(mapper.physical_object(obj), rid) or {}
            field = mapper.physical_field(obj, "tasuki_verdict")
            if held.get(field) != f"{h.boundary} {h.verdict.outcome}":
                wrong.append(rid)
    rt.store.engine.dispose()
    return wrong


def invoke(org: Org, *args: str) -> str:
    result = CliRunner(env={**org.env, "COLUMNS": "250"}).invoke(main, ["rules", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_dry_run_reports_exactly_the_verdicts_a_changed_rule_flips(org: Org) -> None:
    before = stored(org)
    hit = [v for v in before.values() if TARGET_RULE in {x.rule_id for x in v.violations}]
    warned = [v for v in hit if v.outcome == "warned"]
    assert hit and warned
    assert invoke(org, "apply", "--dry-run").count("0 verdict(s) would change") == 1

    target_rule_becomes_an_error(org.rules)
    ledger_before = _ledger(org)
    out = invoke(org, "apply", "--dry-run")
    assert f"{len(hit)} verdict(s) would change" in out
    assert re.search(
        rf"{re.escape(TARGET_RULE)}\s*│\s*broken \(warn\) → broken \(error\)\s*│\s*{len(hit)}", out
    )
    assert re.search(rf"MK→IS\s*│\s*warned → failed\s*│\s*{len(warned)}", out)
    assert "Dry run: nothing stored, nothing written to the CRM" in out
    assert stored(org).keys() == before.keys()
    assert {k: (v.outcome, v.fingerprint) for k, v in stored(org).items()} == {
        k: (v.outcome, v.fingerprint) for k, v in before.items()
    }
    assert _ledger(org) == ledger_before  # nothing written
    assert crm_agrees(org) == []  # the CRM still holds the old verdicts, as the store does


def test_apply_stores_the_new_verdicts_and_the_crm_agrees(org: Org) -> None:
    before = stored(org)
    hit = {k for k, v in before.items() if TARGET_RULE in {x.rule_id for x in v.violations}}
    target_rule_becomes_an_error(org.rules)
    fingerprint = org.runtime().rules_fingerprint
    out = invoke(org, "apply")
    assert f"{len(hit)} verdict(s) changed" in out
    assert "Written back to the CRM:" in out
    after = stored(org)
    for k, v in after.items():
        assert v.fingerprint == fingerprint  # every verdict says which rule set judged it
        if k in hit:
            assert v.outcome == "failed"
            assert {x.severity for x in v.violations if x.rule_id == TARGET_RULE} == {"error"}
        else:
            assert (v.outcome, v.score) == (before[k].outcome, before[k].score)
    assert crm_agrees(org) == []
    again = invoke(org, "apply", "--dry-run")
    assert "0 verdict(s) would change" in again


def test_explain_says_the_rules_changed_since_the_stored_verdict(org: Org) -> None:
    v = next(
        v
        for v in stored(org).values()
        if v.outcome == "warned" and TARGET_RULE in {x.rule_id for x in v.violations}
    )
    args = ["explain", "--boundary", v.handoff.boundary, "--record", v.handoff.record_id]
    assert "Rules files unchanged since" in invoke(org, *args)
    target_rule_becomes_an_error(org.rules)
    out = invoke(org, *args)
    assert f"Stored verdict: warned, score {v.score}" in out
    assert f"by rule set {v.fingerprint[:12]}" in out
    assert "The rules files changed since" in out and "they would give: failed" in out
    csv_out = invoke(org, *args, "--format", "csv")
    assert csv_out.splitlines()[0] == "rule,severity,result,why,message"
    assert f"{TARGET_RULE},error,broken," in csv_out


def _ledger(org: Org) -> set[tuple[str, str, str]]:
    rt = org.runtime()
    with rt.store.session() as s:
        rows = {(e.record_id, e.field, str(e.value)) for e in s.scalars(select(LedgerEntry))}
    rt.store.engine.dispose()
    return rows
