"""KPI rows upserted into a HubSpot custom object on a unique property, against the emulator:
the wire format through the unmodified client, the connector, and tasuki's one write path."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import redis
from hubspot.crm.objects.exceptions import ApiException

from connectors.hubspot import HubSpotConnector, HubSpotOptions, _write_results
from tasuki.crm import RecordWrite, WriteResult
from tasuki.settings import Config
from tasuki.store.db import Store
from tasuki.writeback import DesiredValue, write_back
from tests.hubspot.hs_emulator import TASUKI_KPI_TYPE_ID, HubSpotEmulator, ObjectStore
from tests.hubspot.support import RawApis, quick_limits

Apis = Callable[..., RawApis]
KEY = "tasuki_key"
NAMES = [TASUKI_KPI_TYPE_ID, "p62515_tasuki_kpi", "p_tasuki_kpi"]
"""The objectTypeId, the fully qualified name (the emulator's portal is 62515), the short form."""
NON_UNIQUE = (
    "VALIDATION_ERROR",
    f"Unable to perform update/upsert by non-unique {TASUKI_KPI_TYPE_ID} property kpi_id "
    "in portal ID 62515",
)


def _key(i: int) -> str:
    return f"2026-11|mk_mqls|person:{i}"


def _rows(n: int, value: float = 1.0) -> list[RecordWrite]:
    return [RecordWrite(_key(i), {"kpi_id": "mk_mqls", "value": value}) for i in range(n)]


def _inputs(n: int, *, traced: bool = True, prop: str = KEY) -> list[dict[str, Any]]:
    return [
        {
            "idProperty": prop,
            "id": _key(i),
            "properties": {"kpi_id": "mk_mqls", "value": "1"},
            **({"objectWriteTraceId": str(i)} if traced else {}),
        }
        for i in range(n)
    ]


def _by_key(store: ObjectStore) -> dict[str, dict[str, str]]:
    return {r.props[KEY]: {"id": str(r.id), **r.props} for r in store.records.values()}


def _in_batches(
    connector: HubSpotConnector, object: str, writes: list[RecordWrite]
) -> list[WriteResult]:
    """As tasuki's write path sends upserts: full batches of ``write_batch_size``."""
    size, out = connector.write_batch_size, []
    for start in range(0, len(writes), size):
        out += connector.upsert_records(object, KEY, writes[start : start + size])
    return out


def _refusal(exc: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.body)
    return body


# -- the wire, through hubspot-api-client --------------------------------------------------------


def test_upsert_creates_then_updates_the_same_record_and_says_which(
    emulator: HubSpotEmulator, raw_apis: Apis
) -> None:
    store = emulator.define_tasuki_kpi()
    batch = raw_apis(emulator).batch
    first = batch.upsert("p_tasuki_kpi", {"inputs": _inputs(2)})
    assert first.status == "COMPLETE" and first.started_at and first.completed_at
    created = sorted((r.properties[KEY], r.new) for r in first.results)
    assert created == [(_key(0), True), (_key(1), True)]
    again = batch.upsert(
        TASUKI_KPI_TYPE_ID,
        {"inputs": [{"idProperty": KEY, "id": _key(1), "properties": {"value": "7"}}]},
    )
    ids = {r.properties[KEY]: r.id for r in first.results}
    assert [(r.new, r.id) for r in again.results] == [(False, ids[_key(1)])]
    assert len(store.records) == 2
    read = batch.read(
        "p62515_tasuki_kpi",
        {"idProperty": KEY, "inputs": [{"id": _key(1)}, {"id": "nobody"}], "properties": ["value"]},
    )
    assert [(r.id, r.properties["value"]) for r in read.results] == [(ids[_key(1)], "7")]
    assert read.errors[0].category == "OBJECT_NOT_FOUND"
    with pytest.raises(ApiException) as bare:
        batch.upsert("tasuki_kpi", {"inputs": _inputs(1)})  # the bare name: not since 2025-06
    assert bare.value.status == 400


@pytest.mark.parametrize(
    ("inputs", "message", "context"),
    [
        (_inputs(101), "Batch input of 101 exceeds the limit of 100.", None),
        (_inputs(2, prop="kpi_id"), NON_UNIQUE[1], None),
        (
            _inputs(2) + _inputs(1),
            f"Duplicate IDs found in batch input: [{_key(0)}]. IDs must be unique",
            {"ids": [_key(0)]},
        ),
    ],
    ids=["over-100", "non-unique-id-property", "duplicate-ids"],
)
def test_a_batch_hubspot_cannot_take_is_refused_whole(
    emulator: HubSpotEmulator,
    raw_apis: Apis,
    inputs: list[dict[str, Any]],
    message: str,
    context: dict[str, Any] | None,
) -> None:
    store = emulator.define_tasuki_kpi()
    with pytest.raises(ApiException) as refused:
        raw_apis(emulator).batch.upsert("p_tasuki_kpi", {"inputs": inputs})
    body = _refusal(refused.value)
    assert refused.value.status == 400 and body["category"] == "VALIDATION_ERROR"
    assert body["message"] == message and body.get("context") == context
    assert not store.records


def test_a_bad_input_refuses_only_itself_when_every_input_has_a_trace_id(
    emulator: HubSpotEmulator, raw_apis: Apis
) -> None:
    store = emulator.define_tasuki_kpi()
    batch = raw_apis(emulator).batch
    untraced = _inputs(3, traced=False)
    untraced[1]["properties"]["valeu"] = "3"
    with pytest.raises(ApiException) as whole:
        batch.upsert("p_tasuki_kpi", {"inputs": untraced})
    body = _refusal(whole.value)
    assert whole.value.status == 400 and body["category"] == "VALIDATION_ERROR"
    assert body["message"].startswith("Property values were not valid: ")
    assert body["errors"] == [
        {
            "message": 'Property "valeu" does not exist',
            "code": "PROPERTY_DOESNT_EXIST",
            "context": {"propertyName": ["valeu"]},
        }
    ]
    assert not store.records
    traced = _inputs(3)
    traced[1]["properties"]["valeu"] = "3"
    answer = batch.upsert("p_tasuki_kpi", {"inputs": traced})
    assert answer.num_errors == 1 and answer.errors[0].category == "VALIDATION_ERROR"
    assert answer.errors[0].context == {"objectWriteTraceId": ["1"]}
    assert sorted(_by_key(store)) == [_key(0), _key(2)]


# -- the connector -------------------------------------------------------------------------------


def test_450_rows_take_five_calls_and_a_second_upsert_updates_them_in_place(
    emulator: HubSpotEmulator, hubspot: HubSpotConnector
) -> None:
    store = emulator.define_tasuki_kpi()
    rows = _rows(450)
    results = _in_batches(hubspot, "p_tasuki_kpi", rows)
    assert [r.record_id for r in results] == [r.record_id for r in rows]
    assert all(r.ok for r in results) and len(store.records) == 450
    assert (hubspot.calls["write"], emulator.calls["batch/upsert"]) == (5, 5)
    first = _by_key(store)
    assert first[_key(7)]["value"] == "1.0" and first[_key(7)]["kpi_id"] == "mk_mqls"
    assert all(r.ok for r in _in_batches(hubspot, "p_tasuki_kpi", _rows(450, value=2.0)))
    after = _by_key(store)
    assert {k: v["id"] for k, v in after.items()} == {k: v["id"] for k, v in first.items()}
    assert after[_key(7)]["value"] == "2.0" and hubspot.calls["write"] == 10


@pytest.mark.parametrize("name", NAMES)
def test_every_name_of_the_custom_object_reaches_the_same_rows(
    emulator: HubSpotEmulator, hubspot: HubSpotConnector, name: str
) -> None:
    store = emulator.define_tasuki_kpi()
    emulator.create(TASUKI_KPI_TYPE_ID, {KEY: _key(1), "value": "0"}, record_id=77)
    assert all(r.ok for r in hubspot.upsert_records(name, KEY, _rows(2, value=5)))
    rows = _by_key(store)
    assert sorted(rows) == [_key(0), _key(1)] and rows[_key(1)]["id"] == "77"
    assert rows[_key(0)]["value"] == rows[_key(1)]["value"] == "5"


def test_a_bad_row_among_100_is_refused_alone_in_the_same_call(
    emulator: HubSpotEmulator, hubspot: HubSpotConnector
) -> None:
    store = emulator.define_tasuki_kpi()
    rows = _rows(100)
    rows[40] = RecordWrite(_key(40), {"kpi_id": "mk_mqls", "valeu": 3})
    results = hubspot.upsert_records("p_tasuki_kpi", KEY, rows)
    refused = [r for r in results if not r.ok]
    assert [(r.record_id, r.error_code) for r in refused] == [(_key(40), "VALIDATION_ERROR")]
    assert refused[0].message.startswith("Property values were not valid: ")
    assert '"error":"PROPERTY_DOESNT_EXIST","name":"valeu"' in refused[0].message
    assert len(store.records) == 99 and _key(40) not in _by_key(store)
    assert hubspot.calls["write"] == 1


def test_a_batch_refused_whole_for_one_row_is_halved_until_the_row_stands_alone(
    emulator: HubSpotEmulator, hubspot: HubSpotConnector
) -> None:
    store = emulator.define_tasuki_kpi()
    emulator.multi_status = False  # as if HubSpot ignored the trace ids
    rows = _rows(100)
    rows[40] = RecordWrite(_key(40), {"valeu": 3})
    results = hubspot.upsert_records("p_tasuki_kpi", KEY, rows)
    assert [r.record_id for r in results if not r.ok] == [_key(40)]
    assert results[40].error_code == "VALIDATION_ERROR" and "valeu" in results[40].message
    assert len(store.records) == 99
    # 100 → 50 → 25 → 13 → 6 → 3 → 1: the whole, then both halves at each of six levels.
    assert hubspot.calls["write"] == 13


def test_a_key_property_without_unique_values_is_every_rows_refusal_in_three_calls(
    emulator: HubSpotEmulator, hubspot: HubSpotConnector
) -> None:
    store = emulator.define_tasuki_kpi()
    results = hubspot.upsert_records("p_tasuki_kpi", "kpi_id", _rows(100))
    assert {(r.ok, r.error_code, r.message) for r in results} == {(False, *NON_UNIQUE)}
    assert hubspot.calls["write"] == 3 and not store.records


def test_writes_of_one_key_go_as_one_input_later_values_winning(
    emulator: HubSpotEmulator, hubspot: HubSpotConnector
) -> None:
    store = emulator.define_tasuki_kpi()
    writes = [
        RecordWrite(_key(1), {"value": 1, "target": 4}),
        RecordWrite(_key(2), {"value": 2}),
        RecordWrite(_key(1), {"target": 5}),
    ]
    results = hubspot.upsert_records("p_tasuki_kpi", KEY, writes)
    assert [(r.record_id, r.ok) for r in results] == [
        (_key(1), True),
        (_key(2), True),
        (_key(1), True),
    ]
    row = _by_key(store)[_key(1)]
    assert (row["value"], row["target"], len(store.records)) == ("1", "5", 2)
    assert hubspot.calls["write"] == 1


def test_what_cannot_be_sent_is_refused_before_any_call(
    emulator: HubSpotEmulator, hubspot: HubSpotConnector
) -> None:
    emulator.define_tasuki_kpi()
    with pytest.raises(ValueError, match="at most 100"):
        hubspot.upsert_records("p_tasuki_kpi", KEY, _rows(101))
    with pytest.raises(ValueError, match="needs a tasuki_key"):
        hubspot.upsert_records("p_tasuki_kpi", KEY, [RecordWrite("", {"value": 1})])
    assert hubspot.upsert_records("p_tasuki_kpi", KEY, []) == []
    owners = hubspot.upsert_records("owners", "email", _rows(2))
    assert [(r.record_id, r.ok, r.error_code) for r in owners] == [
        (_key(0), False, "READ_ONLY_OBJECT"),
        (_key(1), False, "READ_ONLY_OBJECT"),
    ]
    assert hubspot.calls.total == 0 and emulator.calls["batch/upsert"] == 0


@pytest.mark.parametrize("fault", ["429", "503"])
def test_a_429_or_5xx_during_an_upsert_is_waited_out_and_retried(
    emulator: HubSpotEmulator, hubspot: HubSpotConnector, fault: str
) -> None:
    store = emulator.define_tasuki_kpi()
    emulator.inject(fault, route="batch/upsert")
    results = hubspot.upsert_records("p_tasuki_kpi", KEY, _rows(10))
    assert all(r.ok for r in results) and len(store.records) == 10
    assert emulator.calls["batch/upsert"] == 2 and hubspot.calls["write"] == 2
    retried = "rate_limited" if fault == "429" else "unavailable"
    assert hubspot.api.retries[retried] == 1


def test_an_oauth_token_revoked_mid_run_is_traded_again_and_the_upsert_retried(
    emulator: HubSpotEmulator, redis_conn: redis.Redis
) -> None:
    store = emulator.define_tasuki_kpi()
    emulator.add_oauth_app("client-1", "shh", "refresh-1")
    options = HubSpotOptions(
        host=emulator.url, limits=quick_limits(), namespace=f"upsert-{uuid.uuid4().hex[:8]}"
    )
    connector = HubSpotConnector.with_refresh_token(
        "client-1", "shh", "refresh-1", redis_conn, options
    )
    try:
        assert all(r.ok for r in connector.upsert_records("p_tasuki_kpi", KEY, _rows(3)))
        emulator.tokens.clear()  # every access token revoked
        assert all(r.ok for r in connector.upsert_records("p_tasuki_kpi", KEY, _rows(4)))
        assert (connector.calls["auth"], connector.calls["write"]) == (2, 3)
        assert len(store.records) == 4
    finally:
        connector.close()


@pytest.mark.parametrize(
    "result",
    [
        {"id": "901", "objectWriteTraceId": "0", "properties": {}},  # the trace id echoed
        {"id": "901", "properties": {KEY: "A-1"}},  # neither: one result for the one input left
    ],
    ids=["trace-id-echoed", "key-normalised"],
)
def test_results_are_placed_by_an_echoed_trace_id_or_by_count(result: dict[str, Any]) -> None:
    writes = [RecordWrite("a-1", {"value": 1}), RecordWrite("a-2", {"valeu": 1})]
    body = {
        "status": "COMPLETE",
        "results": [result],
        "numErrors": 1,
        "errors": [
            {
                "status": "error",
                "category": "VALIDATION_ERROR",
                "message": "Property values were not valid: []",
                "context": {"objectWriteTraceId": ["1"]},
            }
        ],
    }
    assert [(r.record_id, r.ok, r.error_code) for r in _write_results(writes, body, KEY)] == [
        ("a-1", True, ""),
        ("a-2", False, "VALIDATION_ERROR"),
    ]


# -- tasuki's write path ---------------------------------------------------------------------------


def _desired(n: int, value: float) -> list[DesiredValue]:
    out = []
    for i in range(n):
        out += [
            DesiredValue("kpi_row", _key(i), "kpi", "mk_mqls"),
            DesiredValue("kpi_row", _key(i), "period", "2026-11"),
            DesiredValue("kpi_row", _key(i), "value", value),
        ]
    return out


def test_kpi_rows_through_the_write_path_take_full_batches_and_no_call_when_unchanged(
    sqlite_store: Store,
    hubspot_config: Config,
    emulator: HubSpotEmulator,
    hubspot: HubSpotConnector,
) -> None:
    store = emulator.define_tasuki_kpi()
    assert hubspot_config.mapping("kpi_row").object == "p_tasuki_kpi"
    report = write_back(sqlite_store, hubspot, hubspot_config, _desired(450, 0.5))
    assert (report.records, report.fields, report.calls, report.min_calls) == (450, 1350, 5, 5)
    assert report.rejected == [] and len(store.records) == 450
    again = write_back(sqlite_store, hubspot, hubspot_config, _desired(450, 0.5))
    assert (again.records, again.calls) == (0, 0)
    moved = write_back(sqlite_store, hubspot, hubspot_config, _desired(450, 0.75))
    assert (moved.records, moved.fields, moved.calls) == (450, 450, 5)
    assert len(store.records) == 450
    assert _by_key(store)[_key(3)]["value"] == "0.75"


def test_rows_are_read_back_by_their_unique_property_100_keys_a_call(
    emulator: HubSpotEmulator, hubspot: HubSpotConnector
) -> None:
    emulator.define_tasuki_kpi()
    _in_batches(hubspot, "p_tasuki_kpi", _rows(150, value=4.0))
    reads = hubspot.calls["read"]
    wanted = [_key(i) for i in range(140, 150)] + [f"missing-{i}" for i in range(100)]
    found = hubspot.fetch_by_key("p_tasuki_kpi", KEY, wanted, ["value", "kpi_id"])
    assert sorted(r.id for r in found) == sorted(_key(i) for i in range(140, 150))
    assert all(float(r.fields["value"]) == 4.0 for r in found)
    # two batch reads, and the object's property types once (cached for the process)
    assert hubspot.calls["read"] - reads == 3
    assert emulator.calls["batch/read"] == 2
