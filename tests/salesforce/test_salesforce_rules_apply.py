"""``rules apply`` against the Salesforce emulator: the preview makes no call; applying a
changed rule stores the new verdicts and writes them to the org in full batches, after which
the org's verdict fields and the store agree."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

import worker
from connectors.salesforce import SalesforceConnector
from tasuki import rulechanges, runtime, startup
from tasuki.mapping import Mapper
from tasuki.settings import Config, Settings
from tasuki.store.db import Store
from tasuki.store.models import Handoff
from tasuki.sync import reconcile
from tests.salesforce.sf_emulator import Org

AT = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
RULES = """
rule_sets:
  - boundary: IS→FS
    object: deal
    rules:
      - {id: amount, check: required, field: deal.amount, severity: warn, message: 金額がありません}
"""


def _verdicts(org: Org, ids: list[str]) -> dict[str, str | None]:
    return {rid: (org.get("Opportunity", rid) or {}).get("Tasuki_Verdict__c") for rid in ids}


def test_rules_apply_writes_the_changed_verdicts_to_salesforce(
    settings: Settings,
    sqlite_store: Store,
    sf_config: Config,
    org: Org,
    connector: SalesforceConnector,
    tmp_path: Path,
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES, encoding="utf-8")
    config = sf_config.model_copy(update={"rules": [str(rules)]})
    rt = startup.assemble(replace(settings, config=config), sqlite_store, connector)
    mapped = Mapper(config).physical_fields("deal")
    org.define("Opportunity", {f: "string" for f in mapped if f not in org.schema["Opportunity"]})
    with_amount = [
        org.upsert(
            "Opportunity",
            None,
            {"Name": f"A{i}", "StageName": "Meeting Booked", "Amount": 1000},
            at=AT,
        )
        for i in range(30)
    ]
    without = [
        org.upsert("Opportunity", None, {"Name": f"B{i}", "StageName": "Meeting Booked"}, at=AT)
        for i in range(20)
    ]
    with runtime.activate(rt):
        reconcile(rt, "deal")
        with sqlite_store.session() as s:
            for rid in with_amount + without:
                s.add(
                    Handoff(
                        system="salesforce",
                        boundary="IS→FS",
                        object="deal",
                        record_id=rid,
                        sender_department="IS",
                        receiver_department="FS",
                        handed_at=AT,
                    )
                )
        rulechanges.apply(rt, datetime.now(UTC))
        worker.write_back()
        assert set(_verdicts(org, with_amount).values()) == {"IS→FS passed"}
        assert set(_verdicts(org, without).values()) == {"IS→FS warned"}

        rules.write_text(RULES.replace("severity: warn", "severity: error"), encoding="utf-8")
        assert rt.refresh()
        calls = dict(org.calls)
        preview = rulechanges.preview(rt, datetime.now(UTC))
        assert {f.record_id for f in preview.flips} == set(without)
        assert preview.by_outcome == [("IS→FS", "warned", "failed", 20)]
        assert preview.by_rule == [("amount", "broken (warn) → broken (error)", 20)]
        assert dict(org.calls) == calls  # the preview calls nobody

        applied = rulechanges.apply(rt, datetime.now(UTC))
        assert applied.flips == preview.flips
        figures = worker.write_back()
    assert (figures["records"], figures["calls"], figures["min_calls"]) == (20, 1, 1)
    assert set(_verdicts(org, without).values()) == {"IS→FS failed"}
    assert set(_verdicts(org, with_amount).values()) == {"IS→FS passed"}
    with sqlite_store.session() as s:
        outcomes = {h.record_id: h.verdict.outcome for h in s.scalars(select(Handoff)) if h.verdict}
    assert {rid: f"IS→FS {o}" for rid, o in outcomes.items()} == _verdicts(
        org, with_amount + without
    )
