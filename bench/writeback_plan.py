"""Write-back planning: the marked records' plan against the full plan, in the same run.

A store of ``--handoffs`` handed-over records (half leads MK→IS, half deals IS→FS), each with
its verdict and, in the ledger, the verdict fields tasuki last wrote (the steady state of a
store that has been written back). Then ``--changed`` verdicts change, and their records are
marked as judging marks them (:mod:`tasuki.replan`). Timed, both giving the same plan:

- the full plan: every handed-over record's verdict values against the ledger (what a pass did
  before, and still does on its first run or after the write-back settings change);
- the incremental plan: the marked records' values only, found through ``ix_handoffs_record``.

    .venv/bin/python bench/writeback_plan.py [--handoffs 1000000] [--changed 100]
                                             [--backends sqlite postgresql]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]
sys.path.insert(0, os.path.dirname(_here))

from sqlalchemy import insert, text, update  # noqa: E402

from bench.intake import postgres_database  # noqa: E402
from connectors.local import LocalCrm  # noqa: E402
from tasuki import (  # noqa: E402
    replan,
    runtime,
    startup,  # noqa: E402
)
from tasuki.judging import verdict_values  # noqa: E402
from tasuki.mapping import Mapper, ledger_value  # noqa: E402
from tasuki.settings import load_settings  # noqa: E402
from tasuki.store.db import Store, open_store  # noqa: E402
from tasuki.store.models import Handoff, LedgerEntry, Verdict  # noqa: E402
from tasuki.writeback import plan  # noqa: E402

CHUNK = 20_000
START = datetime(2026, 1, 5, tzinfo=UTC)


def _chunks(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), CHUNK):
        yield rows[start : start + CHUNK]


def fill(rt: runtime.Runtime, n: int) -> None:
    """``n`` handoffs with verdicts, and the ledger holding their verdict fields."""
    mapper = Mapper(rt.settings.config)
    fields = rt.settings.config.writeback.verdict
    handoffs, verdicts, ledger = [], [], []
    for i in range(n):
        obj, boundary = ("lead", "MK→IS") if i % 2 else ("deal", "IS→FS")
        rid = f"R{i:07d}"
        handoffs.append(
            {
                "system": rt.system,
                "boundary": boundary,
                "object": obj,
                "record_id": rid,
                "sender_id": "S",
                "receiver_id": "R",
                "sender_department": boundary[:2],
                "receiver_department": boundary[-2:],
                "handed_at": START + timedelta(minutes=i),
                "detected_at": START,
            }
        )
        outcome, score = ("passed", 100) if i % 3 else ("warned", 90)
        verdicts.append((outcome, score))
        for name, value in (
            (fields.outcome, f"{boundary} {outcome}"),
            (fields.score, score),
            (fields.violations, ""),
        ):
            ledger.append(
                {
                    "system": rt.system,
                    "object": mapper.physical_object(obj),
                    "record_id": rid,
                    "field": mapper.physical_field(obj, name),
                    "value": ledger_value(value),
                    "written_at": START,
                }
            )
    with rt.store.engine.begin() as conn:
        for chunk in _chunks(handoffs):
            conn.execute(insert(Handoff), chunk)
        ids = [row[0] for row in conn.execute(text("SELECT id FROM handoffs ORDER BY id"))]
        rows = [
            {"handoff_id": h, "outcome": o, "score": s, "evaluated_at": START}
            for h, (o, s) in zip(ids, verdicts, strict=True)
        ]
        for chunk in _chunks(rows):
            conn.execute(insert(Verdict), chunk)
        for chunk in _chunks(ledger):
            conn.execute(insert(LedgerEntry), chunk)
    analyze(rt.store)


def analyze(store: Store) -> None:
    if store.is_sqlite:
        with store.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    else:
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))


def change(rt: runtime.Runtime, n: int, changed: int) -> None:
    """Change ``changed`` verdicts (spread over the store) and mark their records, as judging
    does in the same transaction."""
    step = max(1, n // changed)
    picked = [f"R{i:07d}" for i in range(0, n, step)][:changed]
    with rt.store.session() as s:
        for rid in picked:
            handoff_id = s.scalar(text("SELECT id FROM handoffs WHERE record_id = :r"), {"r": rid})
            s.execute(update(Verdict).where(Verdict.handoff_id == handoff_id).values(score=42))
        replan.mark(s, rt.system, [("deal" if int(r[1:]) % 2 == 0 else "lead", r) for r in picked])


def timed(rt: runtime.Runtime, marked: bool) -> tuple[float, list[Any]]:
    digest = replan.settings_digest(rt.settings.config)
    mapper = Mapper(rt.settings.config)
    started = time.perf_counter()
    with rt.store.session() as s:
        records = None
        if marked:
            marks = replan.pending(s, rt.system, digest)
            assert marks is not None
            records = [(m.object, m.record_id) for m in marks]
        changes = plan(s, rt.system, mapper, verdict_values(rt, s, records))
    return time.perf_counter() - started, changes


def run(url: str, folder: Path, n: int, changed: int) -> tuple[float, float, int]:
    settings = load_settings({"TASUKI_DATA_DIR": str(folder)}, database_url=url)
    store = open_store(url)
    rt = startup.assemble(settings, store, LocalCrm(folder / "crm.db"), redis_connection=None)
    fill(rt, n)
    with store.session() as s:
        replan.planned_fully(s, rt.system, replan.settings_digest(settings.config))
    change(rt, n, changed)
    incremental, mine = timed(rt, marked=True)
    full, theirs = timed(rt, marked=False)
    assert mine == theirs, "the incremental plan differs from the full plan"
    store.engine.dispose()
    return full, incremental, len(mine)


@contextmanager
def database(backend: str, folder: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'plan.db'}"
    else:
        with postgres_database() as url:
            yield url


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--handoffs", type=int, default=1_000_000)
    parser.add_argument("--changed", type=int, default=100)
    parser.add_argument(
        "--backends", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite", "postgresql"]
    )
    args = parser.parse_args(argv)
    ok = True
    for backend in args.backends:
        with tempfile.TemporaryDirectory(prefix="tasuki-bench-plan-") as tmp:
            with database(backend, Path(tmp)) as url:
                full, incremental, changes = run(url, Path(tmp), args.handoffs, args.changed)
        print(
            f"{backend:<11} {args.handoffs:>9,} handoffs, {args.changed} changed: "
            f"full plan {full:8.2f} s | incremental {incremental:6.3f} s | "
            f"ratio {full / incremental:7.0f}x | {changes} changes, plans equal",
            flush=True,
        )
        ok &= incremental < 1.0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
