"""Handoffs per second through the pipeline, against a sync-only baseline in the same run.

Both passes push the same synthetic org through the real jobs (fetch from the embedded CRM,
snapshots, field history) on a fresh SQLite store; the pipeline pass also detects handoffs,
judges them with the default rule pack and plans the write-back. The ratio says what handoff
detection and judging cost on top of merely syncing the records.

    .venv/bin/python bench/pipeline.py [--leads 2000]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

# Run as a script, this folder comes first on sys.path and bench/rules.py would hide the
# `rules` package; the repository root is what it needs.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]
sys.path.insert(0, os.path.dirname(_here))

from sqlalchemy import func, select  # noqa: E402

import worker  # noqa: E402
from connectors.local import LocalCrm  # noqa: E402
from tasuki import runtime, startup  # noqa: E402
from tasuki.demo.org import OrgSpec, generate  # noqa: E402
from tasuki.queue import connect  # noqa: E402
from tasuki.settings import Settings, load_settings  # noqa: E402
from tasuki.store.db import open_store  # noqa: E402
from tasuki.store.models import Handoff  # noqa: E402


def _pass(
    settings: Settings, crm: LocalCrm, folder: Path, with_handoffs: bool
) -> tuple[float, int]:
    config = settings.config
    if not with_handoffs:
        config = config.model_copy(update={"boundaries": config.boundaries[:1], "related": {}})
        config = config.model_copy(
            update={"boundaries": [config.boundaries[0].model_copy(update={"object": "account"})]}
        )
    s = dataclasses.replace(
        settings, config=config, database_url=f"sqlite:///{folder / f'store-{with_handoffs}.db'}"
    )
    store = open_store(s.database_url)
    ids: dict[str, list[str]] = {}
    for _, obj, rid, _ in crm.pending_notices(10**7):
        ids.setdefault(obj, []).append(rid)
    rt = startup.assemble(s, store, crm, redis_connection=connect(s))
    with runtime.activate(rt):
        started = time.perf_counter()
        for obj in ("User", "Account", "Lead", "Opportunity"):
            chunk = sorted(set(ids.get(obj, [])))
            for i in range(0, len(chunk), 100):
                worker.sync_records(obj, chunk[i : i + 100])
        elapsed = time.perf_counter() - started
    with store.session() as session:
        handoffs = session.scalar(select(func.count()).select_from(Handoff)) or 0
    return elapsed, handoffs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        settings = load_settings({"TASUKI_DATA_DIR": tmp})
        crm = LocalCrm(folder / "crm.db")
        generate(crm, settings.config, OrgSpec(seed=1, leads=args.leads, until=date(2026, 11, 20)))
        base_s, _ = _pass(settings, crm, folder, with_handoffs=False)
        full_s, handoffs = _pass(settings, crm, folder, with_handoffs=True)
    print(f"leads: {args.leads}, handoffs: {handoffs}")
    print(f"sync only (baseline):          {base_s:7.2f} s")
    print(f"sync + handoffs + verdicts:    {full_s:7.2f} s  ({handoffs / full_s:,.0f} handoffs/s)")
    print(f"ratio pipeline / baseline:     {full_s / base_s:7.2f}x")


if __name__ == "__main__":
    main()
