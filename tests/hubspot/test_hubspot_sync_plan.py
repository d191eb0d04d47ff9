"""``tasuki sync --dry-run`` against the HubSpot emulator: one search per object tells HubSpot's
total; the estimated reads match the calls the real sync then makes (±1 page); no write."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from connectors.hubspot_changes import SEARCH_PAGE
from tasuki import backfill, runtime, startup
from tasuki.settings import Config, Settings
from tasuki.store.db import Store
from tests.hubspot.hs_emulator import HubSpotEmulator
from tests.hubspot.support import ConnectorFactory

T0 = 1_780_000_000_000
HOUR = 3_600_000


def _spent(emulator: HubSpotEmulator, before: Counter[str]) -> Counter[str]:
    return Counter({k: v - before[k] for k, v in emulator.calls.items() if v != before[k]})


def test_the_estimate_matches_the_reads_of_the_sync_and_writes_nothing(
    settings: Settings,
    sqlite_store: Store,
    hubspot_config: Config,
    emulator: HubSpotEmulator,
    make_connector: ConnectorFactory,
) -> None:
    emulator.add_owner("1", "Rep", "One", "r1@x", "Inside Sales")
    emulator.bulk_create(
        "contacts", [({"email": f"c{i}@x", "hubspot_owner_id": "1"}, T0 + i) for i in range(1_000)]
    )
    emulator.bulk_create(
        "deals",
        [
            ({"dealname": f"D{i}", "dealstage": "appointmentscheduled"}, T0 + i)
            for i in range(2_300)
        ],
    )
    connector = make_connector(emulator, clock=lambda: (T0 + HOUR) / 1000)
    rt = startup.assemble(replace(settings, config=hubspot_config), sqlite_store, connector)
    with runtime.activate(rt):
        before = Counter(emulator.calls)
        plan = backfill.plan(rt, backfill.synced_objects(rt))
        spent = _spent(emulator, before)
        assert set(spent) == {"search"} and sum(spent.values()) == plan.spent == len(plan.objects)
        deals = next(o for o in plan.objects if o.logical == "deal")
        assert deals.estimate.records == 2_300 and deals.estimate.minimum == -(
            -2_300 // SEARCH_PAGE
        )
        assert plan.write_calls == 0

        before = Counter(emulator.calls)
        outcome = backfill.run(rt, plan)
        made = _spent(emulator, before)
    assert outcome.records == 3_300
    reads = sum(n for route, n in made.items() if route != "token")
    assert abs(reads - plan.read_calls) <= 1, (made, plan.read_calls)
    for o in plan.objects:  # page by page as estimated, per object
        assert o.estimate.change_calls >= 1
    assert not {r for r in made if "update" in r or "create" in r or "upsert" in r}, made
