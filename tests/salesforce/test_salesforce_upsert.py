"""Upserting tasuki's KPI rows on their external id, against the emulator: sObject Collections
(200 a call) and one Bulk API 2.0 upsert job; then the emulator's own wire format."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from connectors.salesforce import API_VERSION, SalesforceConnector
from connectors.salesforce_records import chunks
from tasuki.crm import Connector, RecordWrite, WriteResult
from tasuki.errors import CrmRequestError
from tasuki.writeback import BulkUpserter
from tests.salesforce.sf_emulator import INTEGRATION_USER, Org, RunningEmulator
from tests.salesforce.sf_testorg import KPI_KEY, KPI_OBJECT

PERIOD = "2026-11"


def _key(i: int, period: str = PERIOD) -> str:
    return f"{period}|mk_mqls|person:005{i:015d}"


def _row(i: int, value: float = 3, **extra: Any) -> RecordWrite:
    """The KPI row of person ``i``: MQLs against a target of 20."""
    values = {
        "User__c": f"005{i:015d}",
        "Subject_Kind__c": "person",
        "Subject__c": f"person:005{i:015d}",
        "KPI_Id__c": "mk_mqls",
        "KPI_Label__c": "MQLs",
        "Period__c": PERIOD,
        "Value__c": value,
        "Target__c": 20,
        "Attainment__c": round(100 * value / 20),
        "Numerator__c": value,
        "Denominator__c": 1,
        **extra,
    }
    return RecordWrite(_key(i), values)


def _rows_by_key(org: Org) -> dict[str, str]:
    """The org's live KPI rows: key → record id."""
    return {
        str(rec[KPI_KEY]): rid
        for rid, rec in org.records[KPI_OBJECT].items()
        if not rec["IsDeleted"]
    }


def _upsert_in_batches(
    connector: SalesforceConnector, writes: list[RecordWrite]
) -> list[WriteResult]:
    out: list[WriteResult] = []
    for batch in chunks(writes, connector.write_batch_size):
        out += connector.upsert_records(KPI_OBJECT, KPI_KEY, batch)
    return out


def _upsert(path: str, connector: SalesforceConnector, writes: list[RecordWrite]) -> Any:
    if path == "bulk":
        return connector.upsert_bulk(KPI_OBJECT, KPI_KEY, writes)
    return _upsert_in_batches(connector, writes)


def _no_negative_values(obj: str, rec: dict[str, Any]) -> tuple[str, list[str]] | None:
    if obj == KPI_OBJECT and (rec.get("Value__c") or 0) < 0:
        return "Value must not be negative", ["Value__c"]
    return None


def test_it_is_a_connector_and_a_bulk_upserter(connector: SalesforceConnector) -> None:
    assert isinstance(connector, Connector) and isinstance(connector, BulkUpserter)


def test_450_rows_take_3_calls_and_upserting_them_again_updates_the_same_records(
    org: Org, connector: SalesforceConnector
) -> None:
    writes = [_row(i) for i in range(450)]
    first = _upsert_in_batches(connector, writes)
    assert first == [WriteResult(w.record_id, True) for w in writes]
    assert org.calls["upsert"] == connector.calls["write"] == 3
    created = _rows_by_key(org)
    assert sorted(created) == sorted(w.record_id for w in writes)
    held = org.get(KPI_OBJECT, created[_key(7)]) or {}
    assert (held["Value__c"], held["Attainment__c"], held["Period__c"]) == (3, 15, PERIOD)

    again = _upsert_in_batches(connector, [_row(i, value=5) for i in range(450)])
    assert all(r.ok for r in again) and [r.record_id for r in again] == list(created)
    assert org.calls["upsert"] == connector.calls["write"] == 6
    assert _rows_by_key(org) == created  # the same records, none added
    held = org.get(KPI_OBJECT, created[_key(7)]) or {}
    assert (held["Value__c"], held["Attainment__c"]) == (5, 25)


@pytest.mark.parametrize("path", ["collections", "bulk"])
def test_rows_the_org_refuses_carry_its_code_and_message_and_the_rest_are_written(
    path: str, org: Org, connector: SalesforceConnector
) -> None:
    locked = org.upsert(KPI_OBJECT, None, {KPI_KEY: _key(150), "Value__c": 1})
    org.locked.add(locked)
    org.validation_rules.append(_no_negative_values)
    writes = [_row(i) for i in range(200)]
    writes[3] = _row(3, Nope__c="x")
    writes[77] = _row(77, value=-1)
    results = _upsert(path, connector, writes)
    assert connector.calls["write"] == 1
    assert [r.record_id for r in results] == [w.record_id for w in writes]
    refused = [(r.record_id, r.error_code, r.message) for r in results if not r.ok]
    assert refused == [
        (_key(3), "INVALID_FIELD", f"No such column 'Nope__c' on sobject of type {KPI_OBJECT}"),
        (_key(77), "FIELD_CUSTOM_VALIDATION_EXCEPTION", "Value must not be negative"),
        (
            _key(150),
            "UNABLE_TO_LOCK_ROW",
            f"unable to obtain exclusive access to this record or 1 records: {locked}",
        ),
    ]
    rows = _rows_by_key(org)
    assert len(rows) == 198  # 197 created, and the locked row as it was
    assert {_key(3), _key(77)}.isdisjoint(rows) and rows[_key(150)] == locked
    assert (org.get(KPI_OBJECT, locked) or {})["Value__c"] == 1


def test_5000_rows_go_through_one_bulk_upsert_job_with_failures_reported_per_key(
    org: Org, connector: SalesforceConnector
) -> None:
    # 1,000 rows exist already (last run's); 4,000 are new this period.
    existing = {_key(i): org.upsert(KPI_OBJECT, None, {KPI_KEY: _key(i)}) for i in range(1000)}
    org.validation_rules.append(_no_negative_values)
    writes = [_row(i, value=-1 if i % 1000 == 999 else 4) for i in range(5000)]
    writes[2500] = _row(2499)  # the same key twice in one job
    results = connector.upsert_bulk(KPI_OBJECT, KPI_KEY, writes)

    assert connector.calls["write"] == 1 and org.calls["upsert"] == 0
    (job,) = org.jobs.values()
    assert (job.operation, job.external_id, job.state) == ("upsert", KPI_KEY, "JobComplete")
    assert [r.record_id for r in results] == [w.record_id for w in writes]
    refused = {r.record_id: (r.error_code, r.message) for r in results if not r.ok}
    negative = {_key(i) for i in (999, 1999, 2999, 3999, 4999)}
    assert set(refused) == negative | {_key(2499)}
    assert {refused[k] for k in negative} == {
        ("FIELD_CUSTOM_VALIDATION_EXCEPTION", "Value must not be negative")
    }
    assert refused[_key(2499)] == (
        "DUPLICATE_VALUE",
        f"Duplicate external id specified: {_key(2499)}",
    )
    assert sum(1 for r in results if not r.ok) == 7  # both rows of the repeated key

    rows = _rows_by_key(org)
    # Never created: 1999, 2999, 3999, 4999 (refused), 2499 (repeated), 2500 (not sent).
    assert len(rows) == 1000 + 4000 - 6
    assert all(rows[k] == rid for k, rid in existing.items())  # updated in place
    assert (org.get(KPI_OBJECT, rows[_key(10)]) or {})["Value__c"] == 4
    created = [row for row in job.succeeded if row["sf__Created"] == "true"]
    assert (len(job.succeeded), len(created)) == (5000 - 7, 4000 - 6)


@pytest.mark.parametrize(
    ("writes", "match"),
    [
        ([_row(i) for i in range(201)], "200"),
        ([_row(1), RecordWrite("", {"Value__c": 1})], KPI_KEY),
    ],
    ids=["more-than-200", "empty-key"],
)
def test_what_cannot_be_sent_is_refused_before_any_call(
    connector: SalesforceConnector, writes: list[RecordWrite], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        connector.upsert_records(KPI_OBJECT, KPI_KEY, writes)
    if len(writes) <= 200:
        with pytest.raises(ValueError, match=match):
            connector.upsert_bulk(KPI_OBJECT, KPI_KEY, writes)
    assert connector.calls.total == 0


def test_nothing_to_upsert_makes_no_call(org: Org, connector: SalesforceConnector) -> None:
    assert connector.upsert_records(KPI_OBJECT, KPI_KEY, []) == []
    assert connector.upsert_bulk(KPI_OBJECT, KPI_KEY, []) == []
    assert connector.calls.total == 0 and sum(org.calls.values()) == 0


@pytest.mark.parametrize("path", ["collections", "bulk"])
def test_an_expired_session_is_renewed_once_and_the_upsert_retried(
    path: str, org: Org, connector: SalesforceConnector
) -> None:
    assert all(r.ok for r in _upsert(path, connector, [_row(1)]))
    org.expire_sessions()
    assert all(r.ok for r in _upsert(path, connector, [_row(1, value=9), _row(2)]))
    assert (org.calls["login"], connector.logins) == (2, 2)
    assert len(_rows_by_key(org)) == 2


def test_keys_repeated_in_one_call_are_all_refused(
    org: Org, connector: SalesforceConnector
) -> None:
    results = connector.upsert_records(KPI_OBJECT, KPI_KEY, [_row(1), _row(2), _row(1, value=7)])
    duplicate = ("DUPLICATE_VALUE", f"Duplicate external id specified: {_key(1)}")
    assert [(r.ok, r.error_code, r.message) for r in results] == [
        (False, *duplicate),
        (True, "", ""),
        (False, *duplicate),
    ]
    assert list(_rows_by_key(org)) == [_key(2)]


@pytest.mark.parametrize("path", ["collections", "bulk"])
@pytest.mark.parametrize("key_field", ["Period__c", "Nope__c"])
def test_matching_on_a_field_that_is_no_external_id_is_refused_as_a_whole(
    path: str, key_field: str, org: Org, connector: SalesforceConnector
) -> None:
    with pytest.raises(CrmRequestError) as err:
        if path == "bulk":
            connector.upsert_bulk(KPI_OBJECT, key_field, [_row(1)])
        else:
            connector.upsert_records(KPI_OBJECT, key_field, [_row(1)])
    if path == "bulk":
        assert err.value.status == 400 and "INVALIDJOB" in err.value.body
        assert f"Field name provided, {key_field} does not match an External ID" in err.value.body
    else:
        assert err.value.status == 404 and "NOT_FOUND" in err.value.body
        assert f"does not exist or is not accessible: {key_field}" in err.value.body
    assert _rows_by_key(org) == {} and org.jobs == {}


# -- the emulator's wire format, straight over HTTP ---------------------------------------------


@pytest.fixture
def raw(
    org: Org, emulator: RunningEmulator, http: requests.Session
) -> Iterator[Callable[..., requests.Response]]:
    """Send one request to the emulator as the integration user, without the connector."""
    org.tokens["00Draw!session"] = INTEGRATION_USER
    base = f"{emulator.url}/services/data/v{API_VERSION}/"

    def send(method: str, path: str, body: object = None) -> requests.Response:
        headers = {"Authorization": "Bearer 00Draw!session"}
        return http.request(method, base + path, json=body, headers=headers)

    yield send


UPSERT_PATH = f"composite/sobjects/{KPI_OBJECT}/{KPI_KEY}"


def _records(*rows: dict[str, Any]) -> dict[str, Any]:
    return {
        "allOrNone": False,
        "records": [{"attributes": {"type": KPI_OBJECT}, **row} for row in rows],
    }


def test_upsert_results_say_created_and_a_second_upsert_updates_the_same_id(
    raw: Callable[..., requests.Response],
) -> None:
    first = raw("PATCH", UPSERT_PATH, _records({KPI_KEY: "k1", "Value__c": 1}))
    assert first.status_code == 200
    (result,) = first.json()
    assert result == {"id": result["id"], "success": True, "errors": [], "created": True}
    second = raw("PATCH", UPSERT_PATH, _records({KPI_KEY: "k1", "Value__c": 2}))
    assert second.json() == [{"id": result["id"], "success": True, "errors": [], "created": False}]


def test_a_record_without_its_key_is_refused_alone(
    org: Org, raw: Callable[..., requests.Response]
) -> None:
    response = raw("PATCH", UPSERT_PATH, _records({"Value__c": 1}, {KPI_KEY: "k2"}))
    assert response.status_code == 200
    missing, written = response.json()
    assert missing == {
        "success": False,
        "errors": [
            {"statusCode": "MISSING_ARGUMENT", "message": f"{KPI_KEY} not specified", "fields": []}
        ],
    }
    assert written["success"] and written["created"]
    assert list(_rows_by_key(org)) == ["k2"]


def test_a_key_two_records_hold_is_refused(org: Org, raw: Callable[..., requests.Response]) -> None:
    ids = [org.upsert(KPI_OBJECT, None, {KPI_KEY: "twice"}) for _ in range(2)]
    (result,) = raw("PATCH", UPSERT_PATH, _records({KPI_KEY: "twice"})).json()
    assert result["success"] is False
    (error,) = result["errors"]
    assert error["statusCode"] == "DUPLICATE_EXTERNAL_ID" and error["fields"] == [KPI_KEY]
    assert f"[{ids[0]}, {ids[1]}]" in error["message"]


def test_more_than_200_records_and_other_methods_are_refused_as_a_whole(
    org: Org, raw: Callable[..., requests.Response]
) -> None:
    too_many = raw("PATCH", UPSERT_PATH, _records(*({KPI_KEY: f"k{i}"} for i in range(201))))
    assert too_many.status_code == 400
    assert [e["errorCode"] for e in too_many.json()] == ["EXCEEDED_ID_LIMIT"]
    wrong_method = raw("POST", UPSERT_PATH, _records({KPI_KEY: "k1"}))
    assert wrong_method.status_code == 405
    assert wrong_method.json() == [
        {
            "message": "HTTP Method 'POST' not allowed. Allowed are PATCH",
            "errorCode": "METHOD_NOT_ALLOWED",
            "fields": [],
        }
    ]
    assert _rows_by_key(org) == {}


def test_rows_are_read_back_by_their_external_id_one_query_per_50_keys(
    org: Org, connector: SalesforceConnector
) -> None:
    _upsert_in_batches(connector, [_row(i, value=i) for i in range(120)])
    reads = connector.calls["read"]
    wanted = [_key(i) for i in (3, 77, 119)] + [_key(i) for i in range(200, 260)]
    found = connector.fetch_by_key(KPI_OBJECT, KPI_KEY, wanted, ["Value__c", "Period__c"])
    assert {r.id: r.fields["Value__c"] for r in found} == {_key(3): 3, _key(77): 77, _key(119): 119}
    assert connector.calls["read"] - reads == 2  # 63 keys, 50 a query
