"""What membership over time costs the KPI computation: the same store computed with everyone's
department read as it is now (the baseline), then with a share of the people having moved
department in the middle of the year (their events resolved one by one at their time).

Run as a script (never in CI)::

    .venv/bin/python bench/memberships.py                         # 100k records, SQLite
    .venv/bin/python bench/memberships.py --records 10000 --movers 0.5

Printed: seconds of each full recomputation of the twelve months and the ratio with movers over
the baseline measured in the same run (the target: under 1.5×).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select

from bench.kpis import PERIODS, SYSTEM, _settings, generate
from tasuki import kpis
from tasuki.membership import BEGINNING
from tasuki.store.db import open_store
from tasuki.store.models import KpiValue, Membership, Person

MOVED_AT = datetime(2026, 7, 1, tzinfo=UTC)


def _timed(store: Any, settings: Any) -> float:
    with store.session() as s:
        s.execute(delete(KpiValue))  # a full computation each time, nothing already held
    t0 = time.perf_counter()
    kpis.compute(store, settings, now=datetime(2027, 1, 15, tzinfo=UTC), periods=PERIODS)
    return time.perf_counter() - t0


def run(url: str, records: int, share: float, workdir: Path) -> tuple[float, float, int]:
    store = open_store(url)
    generate(store, records)
    settings = _settings(url, workdir)
    baseline = _timed(store, settings)
    with store.session() as s:
        people = s.execute(select(Person.user_id, Person.department)).all()
    movers = {uid for uid, dept in people if dept in ("IS", "FS")}
    movers = set(sorted(movers)[: int(len(movers) * share)])
    rows = []
    for uid, dept in people:
        common = {"system": SYSTEM, "user_id": uid, "team": None, "source": "observed"}
        if uid in movers:
            other = "FS" if dept == "IS" else "IS"
            rows.append(
                {
                    **common,
                    "department": other,
                    "valid_from": BEGINNING,
                    "valid_to": MOVED_AT,
                    "observed_at": MOVED_AT,
                }
            )
            rows.append(
                {
                    **common,
                    "department": dept,
                    "valid_from": MOVED_AT,
                    "valid_to": None,
                    "observed_at": MOVED_AT,
                }
            )
        else:
            rows.append(
                {
                    **common,
                    "department": dept,
                    "valid_from": BEGINNING,
                    "valid_to": None,
                    "observed_at": MOVED_AT,
                }
            )
    with store.engine.begin() as conn:
        conn.execute(insert(Membership), rows)
    with_movers = _timed(store, settings)
    store.engine.dispose()
    return baseline, with_movers, len(movers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--movers", type=float, default=0.25, help="share of IS/FS who moved")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tasuki-bench-members-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'members.db'}"
        baseline, moved, n = run(url, args.records, args.movers, Path(tmp))
    print(
        f"sqlite {args.records:,} records: baseline {baseline:.2f} s; with {n} people moved "
        f"mid-year {moved:.2f} s; ratio {moved / baseline:.2f}×"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
