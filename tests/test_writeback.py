from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from connectors.local import LocalCrm
from tasuki.mapping import crm_holds, ledger_value
from tasuki.settings import Settings
from tasuki.store.db import Store
from tasuki.store.models import LedgerEntry, WriteRejection, WriteRun
from tasuki.writeback import DesiredValue, write_back

AT = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


def _crm_with_deals(n: int) -> LocalCrm:
    crm = LocalCrm(":memory:")
    crm.define("Opportunity", ["StageName", "Tasuki_Verdict__c", "Tasuki_Score__c"])
    for i in range(n):
        crm.upsert("Opportunity", f"006{i:05d}", {"StageName": "Meeting Booked"}, at=AT)
    return crm


def _desired(n: int, verdict: str = "IS→FS passed", score: int = 100) -> list[DesiredValue]:
    out = []
    for i in range(n):
        out.append(DesiredValue("deal", f"006{i:05d}", "tasuki_verdict", verdict))
        out.append(DesiredValue("deal", f"006{i:05d}", "tasuki_score", score))
    return out


def test_450_changed_records_take_exactly_3_calls_and_a_second_pass_none(
    store: Store, settings: Settings
) -> None:
    crm = _crm_with_deals(450)
    report = write_back(store, crm, settings.config, _desired(450))
    assert (report.records, report.fields, report.calls, report.min_calls) == (450, 900, 3, 3)
    assert crm.calls["write"] == 3
    assert crm.get("Opportunity", "00600449") == {
        "StageName": "Meeting Booked",
        "Tasuki_Verdict__c": "IS→FS passed",
        "Tasuki_Score__c": 100,
        "SystemModstamp": crm.get("Opportunity", "00600449")["SystemModstamp"],  # type: ignore[index]
        "CreatedDate": AT.isoformat(),
    }
    again = write_back(store, crm, settings.config, _desired(450))
    assert (again.records, again.fields, again.calls) == (0, 0, 0)
    assert crm.calls["write"] == 3
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(LedgerEntry)) == 900


def test_only_the_changed_field_of_a_changed_record_is_written(
    store: Store, settings: Settings
) -> None:
    crm = _crm_with_deals(5)
    write_back(store, crm, settings.config, _desired(5))
    changed = _desired(5)
    changed[3] = DesiredValue("deal", "00600001", "tasuki_score", 40)
    report = write_back(store, crm, settings.config, changed)
    assert [(c.record_id, c.field, c.old, c.new) for c in report.changes] == [
        ("00600001", "tasuki_score", "100", 40)
    ]
    assert report.calls == 1
    assert crm.get("Opportunity", "00600001")["Tasuki_Score__c"] == 40  # type: ignore[index]


def test_rejected_records_are_kept_with_the_crms_message_and_the_rest_written(
    store: Store, settings: Settings
) -> None:
    crm = _crm_with_deals(200)
    for i in (3, 77, 150):
        crm.delete("Opportunity", f"006{i:05d}")
    report = write_back(store, crm, settings.config, _desired(200))
    assert report.calls == 1
    assert sorted((r.record_id, r.error_code) for r in report.rejected) == [
        ("00600003", "ENTITY_IS_DELETED"),
        ("00600077", "ENTITY_IS_DELETED"),
        ("00600150", "ENTITY_IS_DELETED"),
    ]
    with store.session() as s:
        rejections = s.scalars(select(WriteRejection)).all()
        assert {r.message for r in rejections} == {"entity is deleted"}
        assert s.scalar(select(func.count()).select_from(LedgerEntry)) == 197 * 2
        run = s.scalars(select(WriteRun)).one()
        assert (run.records, run.rejected, run.calls) == (200, 3, 1)
    # The 197 are in the ledger: a retry only tries the 3 again.
    retry = write_back(store, crm, settings.config, _desired(200))
    assert retry.records == 3


def test_dry_run_writes_nothing_and_says_what_it_would_do(store: Store, settings: Settings) -> None:
    crm = _crm_with_deals(401)
    report = write_back(store, crm, settings.config, _desired(401), dry_run=True)
    assert (report.records, report.fields, report.min_calls, report.calls) == (401, 802, 3, 3)
    assert crm.calls["write"] == 0
    assert "Tasuki_Verdict__c" not in (crm.get("Opportunity", "00600000") or {})
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(LedgerEntry)) == 0
        assert s.scalar(select(func.count()).select_from(WriteRun)) == 0


@pytest.mark.parametrize(
    ("written", "held", "same"),
    [
        (100, 100.0, True),  # Salesforce hands numbers back as floats
        (100, "100", True),  # HubSpot hands every property back as a string
        (True, "true", True),
        ("IS→FS passed", "IS→FS passed", True),
        ("IS→FS passed", "IS→FS failed", False),
        (100, 99, False),
        ("", None, True),
        ("x", None, False),
    ],
)
def test_the_ledger_recognises_its_values_as_crms_return_them(
    written: object, held: object, same: bool
) -> None:
    assert crm_holds(ledger_value(written), held) is same
