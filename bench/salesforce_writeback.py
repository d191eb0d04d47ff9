"""Salesforce write-back: write calls used against the minimum, and records/s, on the emulator.

For N = 100, 1,000 and 10,000 changed opportunities, one write-back pass through tasuki's write
path (ledger diff → sObject Collections batches of 200, or one Bulk API 2.0 job from 2,000
records) against the HTTPS Salesforce emulator of the tests. The minimum is ⌈N/200⌉ calls, or the
one bulk job; "HTTP requests" counts every request the org saw (a bulk job also uploads, closes,
polls and reads its failed results). A second pass of the same values must make no call.

Run: ``.venv/bin/python bench/salesforce_writeback.py``
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import requests
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connectors.salesforce import SalesforceConnector, SalesforceOptions  # noqa: E402
from connectors.salesforce_auth import Domain  # noqa: E402
from connectors.salesforce_bulk import Polling  # noqa: E402
from tasuki.settings import load_settings  # noqa: E402
from tasuki.store.db import open_store  # noqa: E402
from tasuki.writeback import DesiredValue, write_back  # noqa: E402
from tests.salesforce.sf_emulator import serve  # noqa: E402
from tests.salesforce.sf_testorg import PASSWORD, TOKEN, USERNAME, seeded_org  # noqa: E402

SIZES = (100, 1_000, 10_000)
AT = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


def run(n: int, folder: Path) -> tuple[int, int, int, float, int]:
    """(write calls, minimum, HTTP requests, records/s, calls of a second pass) for ``n``."""
    org = seeded_org()
    ids = [
        org.upsert("Opportunity", None, {"StageName": "Meeting Booked"}, at=AT) for _ in range(n)
    ]
    emulator = serve(org, folder)
    http = requests.Session()
    http.trust_env = False
    http.verify = str(emulator.ca_path)
    options = SalesforceOptions(domain=Domain(emulator.url), bulk_polling=Polling(interval=0.05))
    connector = SalesforceConnector.with_password(
        USERNAME, SecretStr(PASSWORD), SecretStr(TOKEN), options, session=http
    )
    settings = load_settings({"TASUKI_DATA_DIR": str(folder / f"data-{n}")})
    config = settings.config.model_copy(update={"crm": "salesforce"})
    store = open_store(settings.database_url)
    desired = [
        DesiredValue("deal", rid, field, value)
        for rid in ids
        for field, value in (("tasuki_verdict", "IS→FS passed"), ("tasuki_score", 87))
    ]
    try:
        connector.users(["Name"])  # sign in outside the timing
        before = sum(org.calls.values())
        started = time.perf_counter()
        report = write_back(store, connector, config, desired)
        elapsed = time.perf_counter() - started
        http_requests = sum(org.calls.values()) - before
        assert report.rejected == [] and report.records == n
        again = write_back(store, connector, config, desired)
        return report.calls, report.min_calls, http_requests, n / elapsed, again.calls
    finally:
        store.engine.dispose()
        connector.close()
        emulator.stop()


def main() -> None:
    """Print the table."""
    print("Salesforce write-back against the emulator (one pass, then a pass of unchanged values)")
    header = (
        f"{'N':>7} {'path':>12} {'write calls':>11} {'minimum':>8} {'⌈N/200⌉':>8} "
        f"{'HTTP req':>8} {'records/s':>10} {'2nd pass':>8}"
    )
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        for n in SIZES:
            calls, minimum, http_requests, rate, again = run(n, Path(tmp))
            path = "Bulk 2.0 job" if n >= 2000 else "collections"
            print(
                f"{n:>7} {path:>12} {calls:>11} {minimum:>8} {math.ceil(n / 200):>8} "
                f"{http_requests:>8} {rate:>10,.0f} {again:>8}"
            )


if __name__ == "__main__":
    main()
