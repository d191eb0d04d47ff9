"""The first back-fill: read calls against the minimum (pages of the CRM's largest page) and
time, for N deals read from the Salesforce and HubSpot emulators of the tests.

Each run back-fills N deals (a third of them moved on once: field history to read) through
``tasuki sync``'s own code (:mod:`tasuki.backfill`: the estimate, then the sync page by page,
detection and judging; no write-back, everything being history) with the unmodified
simple-salesforce / hubspot-api-client against the emulators over HTTP(S). Printed per CRM: the
dry run's estimated read calls, the read calls made (counted at the emulator), the minimum
⌈N / largest page⌉ and their ratio, the record reads alone (pages of the incremental read)
against that minimum, and the seconds.

    .venv/bin/python bench/backfill.py [--records 50000]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connectors.hubspot import HubSpotConnector, HubSpotOptions  # noqa: E402
from connectors.hubspot_api import RateLimits  # noqa: E402
from connectors.hubspot_changes import SEARCH_PAGE  # noqa: E402
from connectors.salesforce import QUERY_BATCH_SIZE, SalesforceConnector, SalesforceOptions  # noqa: E402
from connectors.salesforce_auth import Domain  # noqa: E402
from tasuki import (  # noqa: E402
    backfill,
    runtime,
    startup,  # noqa: E402
)
from tasuki.mapping import Mapper  # noqa: E402
from tasuki.queue import connect  # noqa: E402
from tasuki.ratelimit import Window  # noqa: E402
from tasuki.settings import load_settings  # noqa: E402
from tasuki.store.db import open_store  # noqa: E402
from tests.hubspot.hs_emulator import HubSpotEmulator  # noqa: E402
from tests.salesforce.sf_emulator import serve  # noqa: E402
from tests.salesforce.sf_testorg import PASSWORD, TOKEN, USERNAME, seeded_org  # noqa: E402

AT = datetime(2026, 6, 1, 1, 0, tzinfo=UTC)
T0 = 1_780_000_000_000


def salesforce(n: int, folder: Path) -> tuple[int, int, int, int, float]:
    """(estimated reads, reads made, minimum, change pages, seconds) for ``n`` deals."""
    settings = load_settings({"TASUKI_DATA_DIR": str(folder / "sf")})
    config = settings.config.model_copy(update={"crm": "salesforce"})
    org = seeded_org()
    mapper = Mapper(config)
    for logical in mapper.objects:
        physical = mapper.physical_object(logical)
        known = org.schema.get(physical, {})
        org.define(
            physical, {f: "string" for f in mapper.physical_fields(logical) if f not in known}
        )
    ids = [
        org.upsert(
            "Opportunity",
            None,
            {"Name": f"D{i}", "StageName": "Meeting Booked"},
            at=AT + timedelta(seconds=i),
        )
        for i in range(n)
    ]
    for k, rid in enumerate(ids[::3]):
        org.upsert(
            "Opportunity", rid, {"StageName": "Qualified"}, at=AT + timedelta(days=2, seconds=k)
        )
    emulator = serve(org, folder)
    http = requests.Session()
    http.trust_env = False
    http.verify = str(emulator.ca_path)
    connector = SalesforceConnector.with_password(
        USERNAME,
        SecretStr(PASSWORD),
        SecretStr(TOKEN),
        SalesforceOptions(domain=Domain(emulator.url)),
        session=http,
    )
    store = open_store(settings.database_url)
    rt = startup.assemble(replace(settings, config=config), store, connector)
    try:
        with runtime.activate(rt):
            plan = backfill.plan(rt, ["deal"])
            used = org.api_used
            started = time.perf_counter()
            backfill.run(rt, plan)
            seconds = time.perf_counter() - started
            made = org.api_used - used
        return (
            plan.read_calls,
            made,
            math.ceil(n / QUERY_BATCH_SIZE),
            plan.objects[0].estimate.change_calls,
            seconds,
        )
    finally:
        store.engine.dispose()
        connector.close()
        emulator.stop()


def hubspot(n: int, folder: Path) -> tuple[int, int, int, int, float]:
    """(estimated reads, reads made, minimum, change pages, seconds) for ``n`` deals."""
    settings = load_settings({"TASUKI_DATA_DIR": str(folder / "hs")})
    config = settings.config.model_copy(update={"crm": "hubspot"})
    emu = HubSpotEmulator(
        token="bench-token", burst=(100_000, 1.0), search_per_second=(100_000, 1.0)
    )
    for per_system in config.objects.values():
        mapping = per_system.get("hubspot")
        if mapping is not None and mapping.object in emu.stores:
            emu.define(mapping.object, {f: "string" for f in mapping.fields.values()})
    emu.add_pipeline(
        "deals",
        "default",
        {"appointmentscheduled": "Meeting Booked", "qualifiedtobuy": "Qualified"},
    )
    emu.bulk_create(
        "deals",
        (({"dealname": f"D{i}", "dealstage": "appointmentscheduled"}, T0 + i) for i in range(n)),
    )
    for k, rid in enumerate(sorted(emu.stores["deals"].records)[::3]):
        emu.update("deals", str(rid), {"dealstage": "qualifiedtobuy"}, at=T0 + n + k)
    emu.serve()
    limits = RateLimits(Window("burst", 100_000, 1.0), Window("search", 100_000, 1.0))
    options = HubSpotOptions(
        host=emu.url, limits=limits, settle_seconds=0.0, namespace=f"bench-backfill:{n}"
    )
    connector = HubSpotConnector.with_access_token("bench-token", connect(settings), options)
    store = open_store(settings.database_url)
    rt = startup.assemble(replace(settings, config=config), store, connector)
    try:
        with runtime.activate(rt):
            plan = backfill.plan(rt, ["deal"])
            before = Counter(emu.calls)
            started = time.perf_counter()
            backfill.run(rt, plan)
            seconds = time.perf_counter() - started
            made = sum(v - before[k] for k, v in emu.calls.items() if k != "token")
        return (
            plan.read_calls,
            made,
            math.ceil(n / SEARCH_PAGE),
            plan.objects[0].estimate.change_calls,
            seconds,
        )
    finally:
        store.engine.dispose()
        connector.close()
        emu.close()


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    args = parser.parse_args()
    n = args.records
    print(f"First back-fill of {n:,} deals (a third with a stage change), read calls and time")
    header = (
        f"{'CRM':<11} {'estimated':>9} {'made':>6} {'minimum':>7} {'made/min':>8} "
        f"{'pages':>6} {'pages/min':>9} {'seconds':>8} {'records/s':>9}"
    )
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        for name, run in (("Salesforce", salesforce), ("HubSpot", hubspot)):
            estimated, made, minimum, pages, seconds = run(n, Path(tmp))
            print(
                f"{name:<11} {estimated:>9} {made:>6} {minimum:>7} {made / minimum:>8.2f} "
                f"{pages:>6} {pages / minimum:>9.2f} {seconds:>8.1f} {n / seconds:>9.0f}"
            )


if __name__ == "__main__":
    main()
