"""Write-back to HubSpot through tasuki's one write path, against the emulator."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select

from connectors.hubspot import HubSpotConnector
from tasuki import startup
from tasuki.settings import Config, Settings
from tasuki.store.db import Store
from tasuki.store.models import WriteRejection
from tasuki.sync import sync_ids
from tasuki.writeback import DesiredValue, write_back
from tests.hubspot.hs_emulator import HubSpotEmulator


def _deals(emu: HubSpotEmulator, n: int) -> list[str]:
    return [
        emu.create("deals", {"dealname": f"Deal {i}", "dealstage": "qualifiedtobuy"})
        for i in range(n)
    ]


def _desired(ids: list[str], score: int = 100) -> list[DesiredValue]:
    out = []
    for rid in ids:
        out.append(DesiredValue("deal", rid, "tasuki_verdict", "IS→FS passed"))
        out.append(DesiredValue("deal", rid, "tasuki_score", score))
    return out


def test_450_changed_records_take_exactly_5_calls_and_unchanged_values_none(
    sqlite_store: Store,
    hubspot_config: Config,
    emulator: HubSpotEmulator,
    hubspot: HubSpotConnector,
) -> None:
    ids = _deals(emulator, 450)
    report = write_back(sqlite_store, hubspot, hubspot_config, _desired(ids))
    assert (report.records, report.fields, report.calls, report.min_calls) == (450, 900, 5, 5)
    assert emulator.calls["batch/update"] == 5 and report.rejected == []
    assert emulator.get("deals", ids[-1])["tasuki_score"] == "100"  # type: ignore[index]
    again = write_back(sqlite_store, hubspot, hubspot_config, _desired(ids))
    assert (again.records, again.calls) == (0, 0)
    one_changed = _desired(ids)
    one_changed[1] = DesiredValue("deal", ids[0], "tasuki_score", 40)
    third = write_back(sqlite_store, hubspot, hubspot_config, one_changed)
    assert (third.records, third.fields, third.calls) == (1, 1, 1)
    assert emulator.calls["batch/update"] == 6


def test_records_hubspot_refuses_are_kept_with_its_category_and_message(
    sqlite_store: Store,
    hubspot_config: Config,
    emulator: HubSpotEmulator,
    hubspot: HubSpotConnector,
) -> None:
    ids = _deals(emulator, 150)
    emulator.archive("deals", ids[3])
    emulator.archive("deals", ids[120])
    report = write_back(sqlite_store, hubspot, hubspot_config, _desired(ids))
    assert report.calls == 2
    assert [(r.record_id, r.error_code) for r in report.rejected] == [
        (ids[3], "OBJECT_NOT_FOUND"),
        (ids[120], "OBJECT_NOT_FOUND"),
    ]
    with sqlite_store.session() as s:
        kept = s.scalars(select(WriteRejection)).all()
        assert {k.record_id for k in kept} == {ids[3], ids[120]}
        assert "they may be deleted or not exist" in kept[0].message
    assert emulator.get("deals", ids[4])["tasuki_verdict"] == "IS→FS passed"  # type: ignore[index]


def test_our_own_writes_read_back_as_echoes(
    settings: Settings,
    sqlite_store: Store,
    hubspot_config: Config,
    emulator: HubSpotEmulator,
    hubspot: HubSpotConnector,
) -> None:
    ids = _deals(emulator, 30)
    rt = startup.assemble(replace(settings, config=hubspot_config), sqlite_store, hubspot)
    assert len(sync_ids(rt, "deals", ids).changed) == 30
    write_back(sqlite_store, hubspot, hubspot_config, _desired(ids, score=87))
    echoed = sync_ids(rt, "deals", ids)
    assert (echoed.echoes, echoed.changed) == (30, [])
    emulator.update("deals", ids[0], {"tasuki_score": "12"})  # a person overwrote our value
    assert ids[0] in sync_ids(rt, "deals", ids[:1]).changed
