"""KPI rows upserted into a HubSpot custom object on a unique property, against the emulator:
through the connector and through tasuki's one write path."""

from __future__ import annotations

import pytest

from connectors.base import RecordWrite
from connectors.hubspot import HubSpotConnector
from tasuki.settings import Config
from tasuki.store.db import Store
from tasuki.writeback import DesiredValue, write_back
from tests.hubspot.hs_emulator import HubSpotEmulator, ObjectStore

KPI_PROPERTIES = [
    "tasuki_key",
    "hubspot_owner_id",
    "subject_kind",
    "subject",
    "kpi_id",
    "kpi_label",
    "period",
    "value",
    "target",
    "attainment",
    "numerator",
    "denominator",
]


def _kpi_object(emu: HubSpotEmulator) -> ObjectStore:
    return emu.define_custom_object(
        "tasuki_kpi", "2-7654321", KPI_PROPERTIES, unique=["tasuki_key"]
    )


def _rows(n: int, value: float = 1.0) -> list[RecordWrite]:
    return [
        RecordWrite(f"2026-11|mk_mqls|person:{i}", {"kpi_id": "mk_mqls", "value": value})
        for i in range(n)
    ]


def _by_key(store: ObjectStore) -> dict[str, dict[str, str]]:
    return {r.props["tasuki_key"]: {"id": str(r.id), **r.props} for r in store.records.values()}


def test_rows_are_created_then_updated_in_place_by_their_key(
    emulator: HubSpotEmulator, hubspot: HubSpotConnector
) -> None:
    store = _kpi_object(emulator)
    rows = _rows(100)
    assert all(r.ok for r in hubspot.upsert_records("p_tasuki_kpi", "tasuki_key", rows))
    first = _by_key(store)
    assert len(first) == 100 and first["2026-11|mk_mqls|person:7"]["value"] == "1.0"
    # By the fully qualified name and the objectTypeId too: the same object, the same rows.
    results = hubspot.upsert_records("2-7654321", "tasuki_key", _rows(100, value=2.0))
    assert [r.record_id for r in results] == [r.record_id for r in rows]
    after = _by_key(store)
    assert len(after) == 100 and {k: v["id"] for k, v in after.items()} == {
        k: v["id"] for k, v in first.items()
    }
    assert after["2026-11|mk_mqls|person:7"]["value"] == "2.0"
    assert emulator.calls["batch/upsert"] == 2


def test_a_row_with_an_unknown_property_is_refused_alone(
    emulator: HubSpotEmulator, hubspot: HubSpotConnector
) -> None:
    store = _kpi_object(emulator)
    rows = _rows(100)
    rows[40] = RecordWrite(rows[40].record_id, {"kpi_id": "x", "valeu": 3})
    results = hubspot.upsert_records("p62515_tasuki_kpi", "tasuki_key", rows)
    refused = [r for r in results if not r.ok]
    assert [(r.record_id, r.error_code) for r in refused] == [
        (rows[40].record_id, "VALIDATION_ERROR")
    ]
    assert 'Property "valeu" does not exist' in refused[0].message
    assert len(store.records) == 99 and emulator.calls["batch/upsert"] == 1


def test_matching_on_a_property_without_unique_values_is_refused_per_record(
    emulator: HubSpotEmulator, hubspot: HubSpotConnector
) -> None:
    store = _kpi_object(emulator)
    results = hubspot.upsert_records("p_tasuki_kpi", "kpi_id", _rows(4))
    assert {r.error_code for r in results} == {"VALIDATION_ERROR"}
    assert "not a unique identifier property" in results[0].message and not store.records


def test_what_cannot_be_sent_is_refused_before_any_call(
    emulator: HubSpotEmulator, hubspot: HubSpotConnector
) -> None:
    _kpi_object(emulator)
    with pytest.raises(ValueError, match="at most 100"):
        hubspot.upsert_records("p_tasuki_kpi", "tasuki_key", _rows(101))
    with pytest.raises(ValueError, match="needs a tasuki_key"):
        hubspot.upsert_records("p_tasuki_kpi", "tasuki_key", [RecordWrite("", {"value": 1})])
    assert hubspot.upsert_records("p_tasuki_kpi", "tasuki_key", []) == []
    owners = hubspot.upsert_records("owners", "email", _rows(2))
    assert {r.error_code for r in owners} == {"READ_ONLY_OBJECT"}
    assert emulator.calls["batch/upsert"] == 0


def test_a_429_during_an_upsert_is_waited_out_and_retried(
    emulator: HubSpotEmulator, hubspot: HubSpotConnector
) -> None:
    store = _kpi_object(emulator)
    emulator.inject("429", route="batch/upsert")
    results = hubspot.upsert_records("p_tasuki_kpi", "tasuki_key", _rows(10))
    assert all(r.ok for r in results) and len(store.records) == 10
    assert emulator.calls["batch/upsert"] == 2


def _desired(n: int, value: float) -> list[DesiredValue]:
    out = []
    for i in range(n):
        key = f"2026-11|mk_mqls|person:{i}"
        out += [
            DesiredValue("kpi_row", key, "kpi", "mk_mqls"),
            DesiredValue("kpi_row", key, "period", "2026-11"),
            DesiredValue("kpi_row", key, "value", value),
        ]
    return out


def test_kpi_rows_through_the_write_path_take_full_batches_and_no_call_when_unchanged(
    sqlite_store: Store,
    hubspot_config: Config,
    emulator: HubSpotEmulator,
    hubspot: HubSpotConnector,
) -> None:
    store = _kpi_object(emulator)
    assert hubspot_config.mapping("kpi_row").object == "p_tasuki_kpi"
    report = write_back(sqlite_store, hubspot, hubspot_config, _desired(450, 0.5))
    assert (report.records, report.fields, report.calls, report.min_calls) == (450, 1350, 5, 5)
    assert report.rejected == [] and len(store.records) == 450
    again = write_back(sqlite_store, hubspot, hubspot_config, _desired(450, 0.5))
    assert (again.records, again.calls) == (0, 0)
    moved = write_back(sqlite_store, hubspot, hubspot_config, _desired(450, 0.75))
    assert (moved.records, moved.fields, moved.calls) == (450, 450, 5)
    assert len(store.records) == 450
    assert _by_key(store)["2026-11|mk_mqls|person:3"]["value"] == "0.75"
