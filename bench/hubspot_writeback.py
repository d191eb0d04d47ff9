"""HubSpot write-back: calls made against the minimum ⌈N/100⌉, and records per second.

Each run writes N deals' verdicts through tasuki's one write path (ledger diff → batch/update,
100 a call) to the HubSpot emulator of the tests, served over HTTP on 127.0.0.1 and reached
through the unmodified hubspot-api-client, under the Professional tier's limits (190 calls per
10 s, shared through the in-process Redis stand-in). The baseline in the same run is one call
per record (what per-record PATCHes would cost); a second pass of the same values must cost 0.

    .venv/bin/python bench/hubspot_writeback.py [--sizes 100 1000 10000]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]
sys.path.insert(0, os.path.dirname(_here))

from connectors.hubspot import HubSpotConnector, HubSpotOptions  # noqa: E402
from connectors.hubspot_api import RateLimits  # noqa: E402
from tasuki.queue import connect  # noqa: E402
from tasuki.settings import load_settings  # noqa: E402
from tasuki.store.db import open_store  # noqa: E402
from tasuki.writeback import DesiredValue, write_back  # noqa: E402
from tests.hubspot.hs_emulator import HubSpotEmulator  # noqa: E402

TOKEN = "bench-token"


def run(n: int, workdir: Path) -> tuple[int, int, int, float]:
    """(calls, minimum, second-pass calls, seconds) for writing ``n`` deals once."""
    settings = load_settings({"TASUKI_DATA_DIR": str(workdir / f"n{n}")})
    config = settings.config.model_copy(update={"crm": "hubspot"})
    settings = replace(settings, config=config)
    store = open_store(settings.database_url)
    emu = HubSpotEmulator(token=TOKEN, burst=(190, 10.0))
    emu.define(
        "deals", {"dealname": "string", "tasuki_verdict": "string", "tasuki_score": "number"}
    )
    emu.bulk_create("deals", (({"dealname": f"Deal {i}"}, 1_700_000_000_000 + i) for i in range(n)))
    ids = [str(i) for i in sorted(emu.stores["deals"].records)]
    emu.serve()
    options = HubSpotOptions(
        host=emu.url, limits=RateLimits.for_tier("professional"), namespace=f"bench:{n}"
    )
    connector = HubSpotConnector.with_access_token(TOKEN, connect(settings), options)
    desired = [DesiredValue("deal", rid, "tasuki_verdict", "IS→FS passed") for rid in ids]
    desired += [DesiredValue("deal", rid, "tasuki_score", 90) for rid in ids]
    try:
        started = time.perf_counter()
        report = write_back(store, connector, config, desired)
        seconds = time.perf_counter() - started
        again = write_back(store, connector, config, desired)
    finally:
        connector.close()
        emu.close()
        store.engine.dispose()
    assert not report.rejected, report.rejected[:3]
    return report.calls, math.ceil(n / 100), again.calls, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1_000, 10_000])
    args = parser.parse_args()
    header = (
        f"{'N':>7} {'calls':>6} {'min':>5} {'calls/min':>9} {'per-record':>10} "
        f"{'vs per-record':>13} {'2nd pass':>8} {'seconds':>8} {'records/s':>10}"
    )
    print("HubSpot write-back against the emulator, Professional tier (190 calls / 10 s)")
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            calls, minimum, second, seconds = run(n, Path(tmp))
            print(
                f"{n:>7} {calls:>6} {minimum:>5} {calls / minimum:>9.2f} {n:>10} "
                f"{n / calls:>12.0f}x {second:>8} {seconds:>8.2f} {n / seconds:>10.0f}"
            )


if __name__ == "__main__":
    main()
