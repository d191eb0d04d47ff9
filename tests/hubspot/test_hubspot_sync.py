"""Incremental sync through HubSpot's search: past the 10,000-result cap, through ties."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from sqlalchemy import func, select

from connectors.hubspot import HubSpotConnector
from connectors.hubspot_changes import SEARCH_PAGE, Cursor, cut
from tasuki import startup
from tasuki.crm import ChangePage
from tasuki.settings import Config, Settings
from tasuki.store.db import Store
from tasuki.store.models import Record, SyncCursor, Transition
from tasuki.sync import reconcile
from tests.hubspot.hs_emulator import HubSpotEmulator
from tests.hubspot.support import ConnectorFactory

T0 = 1_780_000_000_000
HOUR = 3_600_000


def _drain(connector: HubSpotConnector, cursor: str | None) -> tuple[list[ChangePage], str]:
    pages = []
    while True:
        page = connector.changes("contacts", cursor, ["email", "hubspot_owner_id"])
        pages.append(page)
        cursor = page.cursor
        if not page.more:
            return pages, cursor


def test_full_and_incremental_sync_past_the_cap_and_through_one_shared_timestamp(
    emulator: HubSpotEmulator, make_connector: ConnectorFactory
) -> None:
    # 10,050 contacts share one timestamp (more than a search may ever page through), with
    # 450 more before and after it.
    shared = T0 + 500
    rows = [({"email": f"early{i}@x"}, T0 + i) for i in range(300)]
    rows += [({"email": f"tie{i}@x"}, shared) for i in range(10_050)]
    rows += [({"email": f"late{i}@x"}, T0 + 1000 + i // 3) for i in range(150)]
    emulator.bulk_create("contacts", rows)
    now = [(T0 + HOUR) / 1000]
    connector = make_connector(emulator, clock=lambda: now[0])

    pages, cursor = _drain(connector, None)
    seen = Counter(r.id for p in pages for r in p.records)
    assert len(seen) == 10_500 and max(seen.values()) == 1  # none lost, none twice
    stamps = [int(r.modstamp) for p in pages for r in p.records]
    assert stamps == sorted(stamps)  # oldest first
    assert all(s != 400 for _, _, s, _ in emulator.log)  # never near the cap
    assert emulator.calls["search"] <= 10_500 // SEARCH_PAGE + 6

    # Incremental: 120 changes, 100 of them in one millisecond, nothing else comes back.
    changed = sorted(seen)[::87][:120]
    for n, rid in enumerate(changed):
        at = T0 + 2 * HOUR + (0 if n < 100 else n)
        emulator.update("contacts", rid, {"hubspot_owner_id": "77"}, at=at)
    before = emulator.calls["search"]
    now[0] = (T0 + 3 * HOUR) / 1000
    pages, _ = _drain(connector, cursor)
    again = [r.id for p in pages for r in p.records]
    assert sorted(again) == sorted(changed)
    assert {r.fields["hubspot_owner_id"] for p in pages for r in p.records} == {"77"}
    assert emulator.calls["search"] - before <= 2


def test_records_the_search_index_may_not_hold_yet_wait_for_the_next_pass(
    emulator: HubSpotEmulator, make_connector: ConnectorFactory
) -> None:
    now = [(T0 + 100_000) / 1000]
    connector = make_connector(emulator, clock=lambda: now[0], settle_seconds=30)
    emulator.create("contacts", {"email": "old@x"}, at=T0)
    fresh = emulator.create("contacts", {"email": "fresh@x"}, at=T0 + 90_000)
    page = connector.changes("contacts", None, ["email"])
    assert [r.fields["email"] for r in page.records] == ["old@x"] and not page.more
    now[0] += 60
    page = connector.changes("contacts", page.cursor, ["email"])
    assert [r.id for r in page.records] == [fresh]


def test_a_full_page_is_cut_before_its_last_timestamp() -> None:
    def rec(i: int, at: int) -> dict[str, object]:
        return {"id": str(i), "properties": {"lastmodifieddate": str(at)}}

    page = [rec(i, 10 + i // 50) for i in range(SEARCH_PAGE)]
    step = cut(Cursor(0), page, True, 10_000, "lastmodifieddate")
    assert len(step.keep) == 150 and str(step.cursor) == "R:13" and step.more
    ties = [rec(i, 7) for i in range(SEARCH_PAGE)]
    step = cut(Cursor(7), ties, True, 10_000, "lastmodifieddate")
    assert step.keep == [] and str(step.cursor) == "T:7:0"
    step = cut(Cursor(7, 0), ties, True, 10_000, "lastmodifieddate")
    assert len(step.keep) == SEARCH_PAGE and str(step.cursor) == "T:7:199"
    step = cut(Cursor(7, 199), ties[:3], False, 10_000, "lastmodifieddate")
    assert str(step.cursor) == "R:8" and step.more
    assert Cursor.parse("T:7:199") == Cursor(7, 199) and Cursor.parse(None) == Cursor(0)


def test_reconcile_stores_contacts_their_owner_history_and_the_cursor(
    settings: Settings,
    sqlite_store: Store,
    hubspot_config: Config,
    emulator: HubSpotEmulator,
    make_connector: ConnectorFactory,
) -> None:
    for i in range(450):
        emulator.add_owner(str(i), "Rep", str(i), f"r{i}@x", "Inside Sales")
    ids = [
        emulator.create("contacts", {"email": f"c{i}@x", "hubspot_owner_id": "1"}, at=T0 + i // 200)
        for i in range(450)
    ]
    emulator.update("contacts", ids[7], {"hubspot_owner_id": "2"}, at=T0 + 5000)
    connector = make_connector(emulator, clock=lambda: (T0 + HOUR) / 1000)
    rt = startup.assemble(replace(settings, config=hubspot_config), sqlite_store, connector)
    reconcile(rt, "lead")
    with sqlite_store.session() as s:
        assert s.scalar(select(func.count()).select_from(Record)) == 450
        moved = s.scalars(
            select(Transition).where(Transition.record_id == ids[7]).order_by(Transition.at)
        ).all()
        assert [(t.old, t.new) for t in moved] == [(None, "1"), ("1", "2")]
        cursor = s.scalars(select(SyncCursor.cursor)).one()
    assert cursor == f"R:{T0 + HOUR + 1}"
    searches = emulator.calls["search"]
    reconcile(rt, "lead")
    assert emulator.calls["search"] == searches  # nothing can have changed: no call at all
