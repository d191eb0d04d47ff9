"""Write-back to Salesforce through tasuki's one write path, against the emulator."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from connectors.salesforce import SalesforceConnector
from tasuki.errors import CrmError, CrmRateLimited, CrmUnavailable
from tasuki.settings import Config
from tasuki.store.db import Store
from tasuki.store.models import LedgerEntry, WriteRejection
from tasuki.writeback import DesiredValue, write_back
from tests.salesforce.sf_emulator import Org

AT = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


def _deals(org: Org, n: int) -> list[str]:
    return [
        org.upsert("Opportunity", None, {"StageName": "Meeting Booked", "Name": f"Deal {i}"}, at=AT)
        for i in range(n)
    ]


def _desired(ids: list[str], verdict: str = "IS→FS passed", score: int = 100) -> list[DesiredValue]:
    out = []
    for rid in ids:
        out.append(DesiredValue("deal", rid, "tasuki_verdict", verdict))
        out.append(DesiredValue("deal", rid, "tasuki_score", score))
    return out


def _ledger_size(store: Store) -> int:
    with store.session() as s:
        return int(s.scalar(select(func.count()).select_from(LedgerEntry)) or 0)


def _holds(org: Org, ids: list[str], verdict: str = "IS→FS passed", score: int = 100) -> bool:
    return all(
        (rec := org.get("Opportunity", rid)) is not None
        and rec.get("Tasuki_Verdict__c") == verdict
        and rec.get("Tasuki_Score__c") == score
        for rid in ids
    )


def test_450_changed_records_take_exactly_3_calls_and_a_second_pass_none(
    store: Store, sf_config: Config, org: Org, connector: SalesforceConnector
) -> None:
    ids = _deals(org, 450)
    report = write_back(store, connector, sf_config, _desired(ids))
    assert (report.records, report.fields, report.calls, report.min_calls) == (450, 900, 3, 3)
    assert org.calls["update"] == 3 and connector.calls["write"] == 3
    assert _holds(org, ids) and report.rejected == []
    again = write_back(store, connector, sf_config, _desired(ids))
    assert (again.records, again.calls) == (0, 0)
    assert org.calls["update"] == 3
    assert _ledger_size(store) == 900


def test_5000_changed_records_go_through_one_bulk_job(
    sqlite_store: Store, sf_config: Config, org: Org, connector: SalesforceConnector
) -> None:
    ids = _deals(org, 5000)
    report = write_back(sqlite_store, connector, sf_config, _desired(ids, score=42))
    assert (report.records, report.calls, report.min_calls) == (5000, 1, 1)
    assert len(org.jobs) == 1 and org.calls["update"] == 0
    (job,) = org.jobs.values()
    assert (job.state, len(job.succeeded), job.operation) == ("JobComplete", 5000, "update")
    # Scores travel as CSV text; the org's field type makes them numbers again.
    assert _holds(org, ids, score=42)
    again = write_back(sqlite_store, connector, sf_config, _desired(ids, score=42))
    assert (again.records, again.calls) == (0, 0) and len(org.jobs) == 1


@pytest.mark.parametrize("path", ["collections", "bulk"])
def test_records_the_org_rejects_are_kept_with_its_code_and_message_and_the_rest_written(
    path: str,
    sqlite_store: Store,
    sf_config: Config,
    org: Org,
    make_connector: Callable[..., SalesforceConnector],
) -> None:
    connector = make_connector(bulk_write_threshold=100 if path == "bulk" else 2000)
    ids = _deals(org, 180)
    org.upsert("Opportunity", ids[3], {"StageName": "Closed Lost"})
    org.validation_rules.append(
        lambda obj, rec: (
            ("Closed deals are not rescored", ["Tasuki_Score__c"])
            if rec.get("StageName") == "Closed Lost" and rec.get("Tasuki_Score__c") is not None
            else None
        )
    )
    org.locked.add(ids[77])
    org.delete("Opportunity", ids[150])
    report = write_back(sqlite_store, connector, sf_config, _desired(ids))
    assert report.calls == 1
    assert sorted((r.record_id, r.error_code, r.message) for r in report.rejected) == [
        (ids[3], "FIELD_CUSTOM_VALIDATION_EXCEPTION", "Closed deals are not rescored"),
        (
            ids[77],
            "UNABLE_TO_LOCK_ROW",
            f"unable to obtain exclusive access to this record or 1 records: {ids[77]}",
        ),
        (ids[150], "ENTITY_IS_DELETED", "entity is deleted"),
    ]
    written = [rid for i, rid in enumerate(ids) if i not in (3, 77, 150)]
    assert _holds(org, written)
    assert "Tasuki_Score__c" not in (org.get("Opportunity", ids[3]) or {})
    assert _ledger_size(sqlite_store) == 2 * len(written)
    with sqlite_store.session() as s:
        assert s.scalar(select(func.count()).select_from(WriteRejection)) == 3


def test_a_field_the_integration_user_may_not_edit_is_rejected_per_record(
    sqlite_store: Store, sf_config: Config, org: Org, connector: SalesforceConnector
) -> None:
    ids = _deals(org, 3)
    org.read_only["Opportunity"].add("Tasuki_Score__c")
    report = write_back(sqlite_store, connector, sf_config, _desired(ids))
    assert {r.error_code for r in report.rejected} == {"INVALID_FIELD_FOR_INSERT_UPDATE"}
    assert "Tasuki_Score__c" in report.rejected[0].message


FAULTS = [
    ("expired_session", None),
    ("rate_limited", CrmRateLimited),
    ("unavailable", CrmUnavailable),
    ("slow", CrmUnavailable),
]


@pytest.mark.parametrize("path", ["collections", "bulk"])
@pytest.mark.parametrize(("fault", "raised"), FAULTS, ids=[f for f, _ in FAULTS])
def test_every_fault_is_recovered_without_losing_a_write(
    path: str,
    fault: str,
    raised: type[CrmError] | None,
    sqlite_store: Store,
    sf_config: Config,
    org: Org,
    make_connector: Callable[..., SalesforceConnector],
) -> None:
    bulk = path == "bulk"
    connector = make_connector(timeout=0.5, bulk_write_threshold=300 if bulk else 2000)
    ids = _deals(org, 450)
    # Collections: the second of three calls fails. Bulk: the job's upload-complete request.
    org.inject(fault, on="bulk" if bulk else "update", after=2 if bulk else 1, delay=1.5)
    if raised is None:
        report = write_back(sqlite_store, connector, sf_config, _desired(ids))
        assert report.rejected == [] and connector.logins == 2
    else:
        # The job fails; RQ runs it again later, and the second pass writes what is missing.
        with pytest.raises(raised):
            write_back(sqlite_store, connector, sf_config, _desired(ids))
        report = write_back(sqlite_store, connector, sf_config, _desired(ids))
        assert report.rejected == []
        if not bulk:
            assert report.records == 250  # the first batch was recorded, not sent again
    assert _holds(org, ids)
    assert _ledger_size(sqlite_store) == 900
    assert write_back(sqlite_store, connector, sf_config, _desired(ids)).calls == 0


def _kpi_rows(n: int, value: float = 1.0) -> list[DesiredValue]:
    out = []
    for i in range(n):
        key = f"2026-11|mk_mqls|person:005{i:015d}"
        out += [
            DesiredValue("kpi_row", key, "kpi", "mk_mqls"),
            DesiredValue("kpi_row", key, "period", "2026-11"),
            DesiredValue("kpi_row", key, "value", value if i else value + 1),
        ]
    return out


def _rows_by_key(org: Org) -> dict[str, dict[str, object]]:
    live = [r for r in org.records["Tasuki_KPI__c"].values() if not r["IsDeleted"]]
    return {str(r["Tasuki_Key__c"]): r for r in live}


def test_kpi_rows_are_upserted_on_their_key_in_full_batches(
    store: Store, sf_config: Config, org: Org, connector: SalesforceConnector
) -> None:
    report = write_back(store, connector, sf_config, _kpi_rows(450))
    assert (report.records, report.fields, report.calls, report.min_calls) == (450, 1350, 3, 3)
    assert org.calls["upsert"] == 3 and report.rejected == []
    rows = _rows_by_key(org)
    assert len(rows) == 450 and rows["2026-11|mk_mqls|person:005000000000000001"]["Value__c"] == 1
    ids = {k: r["Id"] for k, r in rows.items()}
    assert write_back(store, connector, sf_config, _kpi_rows(450)).calls == 0
    # Every figure moves: the same 450 rows are updated in place, not duplicated.
    moved = write_back(store, connector, sf_config, _kpi_rows(450, value=2.0))
    assert (moved.records, moved.fields, moved.calls) == (450, 450, 3)
    after = _rows_by_key(org)
    assert {k: r["Id"] for k, r in after.items()} == ids
    assert after["2026-11|mk_mqls|person:005000000000000001"]["Value__c"] == 2


def test_many_kpi_rows_go_through_one_bulk_upsert_job(
    sqlite_store: Store, sf_config: Config, org: Org, connector: SalesforceConnector
) -> None:
    report = write_back(sqlite_store, connector, sf_config, _kpi_rows(2500))
    assert (report.records, report.calls, report.min_calls) == (2500, 1, 1)
    (job,) = org.jobs.values()
    assert (job.operation, job.state, len(job.succeeded)) == ("upsert", "JobComplete", 2500)
    assert len(_rows_by_key(org)) == 2500 and org.calls["upsert"] == 0
    assert write_back(sqlite_store, connector, sf_config, _kpi_rows(2500)).calls == 0


def test_a_batch_the_org_took_after_the_client_timed_out_is_read_back_not_written_again(
    sqlite_store: Store,
    sf_config: Config,
    org: Org,
    make_connector: Callable[..., SalesforceConnector],
) -> None:
    connector = make_connector(timeout=0.5)
    ids = _deals(org, 450)
    # The second of three update calls reaches the org only after the client gave up on it.
    org.inject("slow", on="update", after=1, delay=1.0)
    with pytest.raises(CrmUnavailable):
        write_back(sqlite_store, connector, sf_config, _desired(ids))
    with pytest.raises(AssertionError):
        assert _holds(org, ids[200:400])
    for _ in range(100):  # until the org has applied the late batch
        if _holds(org, ids[200:400]):
            break
        time.sleep(0.05)
    updates = org.calls["update"]
    report = write_back(sqlite_store, connector, sf_config, _desired(ids))
    # The 200 records of the lost answer are read back (one retrieve call) and found written:
    # only the last batch of 50 is sent.
    assert (report.records, org.calls["update"] - updates) == (50, 1)
    assert _holds(org, ids) and _ledger_size(sqlite_store) == 900
