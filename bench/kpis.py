"""KPI computation at scale: the default KPI set over synthetic stores of 10k, 100k, 1M records.

Run as a script (never in CI)::

    .venv/bin/python bench/kpis.py                       # 10k 100k 1M on SQLite and PostgreSQL
    .venv/bin/python bench/kpis.py --sizes 10000 100000 --backends sqlite --repeat 3
    .venv/bin/python bench/kpis.py --sizes 1000000 --keep /var/tmp/tasuki-bench  # store kept

Each store holds one year of a The Model funnel (leads → MQL handoffs → deals with IS→FS
handoffs → won deals with FS→CS handoffs, verdicts on every handoff, accounts), written with bulk
inserts. The timed part is a full recomputation of every KPI of the default set for all twelve
months, into ``kpi_values``, done twice on the same store in the same run:

- **shared**: as ``tasuki`` computes, one scan per boundary and period shared by its KPIs
  (:mod:`tasuki.kpis.crossings`);
- **baseline**: the same recomputation with one statement per KPI and period
  (:func:`tasuki.kpis.engine.per_kpi_figures`, the path before the shared scan), after the
  stored figures were deleted again. It runs second, on caches the first run warmed; with
  ``--repeat N`` the two alternate N times and the best time of each is kept.

With ``--keep DIR`` the generated stores outlive the run (SQLite files in ``DIR``, PostgreSQL
databases ``tasuki_bench_kpis_<size>``) and a later run with the same option reuses them: a
million records take minutes to generate, the recomputation seconds. A kept store is migrated to
the current schema when opened and analysed again before it is timed.

Both must store identical ``kpi_values`` rows (the script fails otherwise). Printed: seconds per
size, the baseline's time over the shared scan's, and the growth per 10× records (the target:
at most 10.5× per 10×; 1M records in under 20 s on both backends).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, delete, func, insert, select, text
from sqlalchemy.engine import make_url

from tasuki import kpis
from tasuki.kpis.engine import per_kpi_figures
from tasuki.settings import Settings, load_settings
from tasuki.store.db import Store, open_store
from tasuki.store.models import Handoff, KpiValue, Person, Record, Verdict

SYSTEM = "local"
YEAR_START = datetime(2025, 12, 31, 15, 0, tzinfo=UTC)  # 2026-01-01 00:00 in Tokyo
PERIODS = [f"2026-{m:02d}" for m in range(1, 13)]
CHUNK = 20_000
POSTGRES_URL = os.environ.get(
    "TASUKI_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
PEOPLE = {"MK": 20, "IS": 40, "FS": 40, "CS": 20}


@dataclass
class Result:
    backend: str
    records: int
    handoffs: int
    load_seconds: float
    compute_seconds: float
    """The shared scan's full recomputation."""
    baseline_seconds: float
    """The same with one statement per KPI and period."""
    values: int


def _chunks(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), CHUNK):
        yield rows[start : start + CHUNK]


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def generate(store: Store, n: int, seed: int = 7) -> int:
    """Fill ``store`` with about ``n`` records (70% leads, 21% deals, 9% accounts); returns the
    number of handoffs."""
    rng = random.Random(seed)
    people = {d: [f"{d}{i:03d}" for i in range(k)] for d, k in PEOPLE.items()}
    n_accounts = max(10, n * 9 // 100)
    n_leads = (n - n_accounts) * 10 // 13
    records: list[dict[str, Any]] = []
    handoffs: list[dict[str, Any]] = []
    verdicts: list[str] = []
    for i in range(n_accounts):
        status = "Churned" if rng.random() < 0.08 else "Active"
        fields = {"status": status, "cs_owner": rng.choice(people["CS"])}
        records.append({"object": "account", "record_id": f"A{i}", "fields": fields})
    deals = 0
    year = 365 * 86400
    target_deals = n - n_accounts - n_leads
    for i in range(n_leads):
        lid = f"L{i}"
        created = YEAR_START + timedelta(seconds=rng.randrange(year))
        mk, is_rep = rng.choice(people["MK"]), rng.choice(people["IS"])
        lead = {"status": "New", "owner": mk, "created_at": _iso(created)}
        records.append({"object": "lead", "record_id": lid, "fields": lead})
        if deals >= target_deals or rng.random() > 0.6:
            continue
        mql = created + timedelta(hours=rng.randint(1, 72))
        lead.update(status="MQL", owner=is_rep, mql_at=_iso(mql))
        lead["first_touch_at"] = _iso(mql + timedelta(minutes=rng.randint(5, 600)))
        handoffs.append(_handoff("MK→IS", "lead", lid, mk, is_rep, mql))
        verdicts.append(rng.choice(("passed", "passed", "warned", "failed")))
        if rng.random() > 0.5:
            continue
        deals += 1
        oid, fs = f"D{i}", rng.choice(people["FS"])
        passed = mql + timedelta(days=rng.randint(1, 20))
        answered = passed + timedelta(hours=rng.randint(1, 40))
        deal: dict[str, Any] = {
            "lead_id": lid,
            "account_id": f"A{rng.randrange(n_accounts)}",
            "sourced_by": is_rep,
            "owner": fs,
            "stage": "Proposal",
            "fs_acceptance": "Accepted" if rng.random() < 0.85 else "Rejected",
            "fs_accepted_at": _iso(answered),
        }
        records.append({"object": "deal", "record_id": oid, "fields": deal})
        handoffs.append(_handoff("IS→FS", "deal", oid, is_rep, fs, passed))
        verdicts.append(rng.choice(("passed", "warned", "failed")))
        outcome = rng.random()
        closed = passed + timedelta(days=rng.randint(7, 60))
        if outcome < 0.35:
            csm = rng.choice(people["CS"])
            deal.update(
                stage="Closed Won",
                amount=rng.randint(12, 120) * 100_000,
                close_date=closed.date().isoformat(),
                cs_owner=csm,
            )
            handoffs.append(_handoff("FS→CS", "deal", oid, fs, csm, closed))
            verdicts.append(rng.choice(("passed", "failed")))
        elif outcome < 0.6:
            deal.update(stage="Closed Lost", close_date=closed.date().isoformat())
    with store.engine.begin() as conn:
        conn.execute(
            insert(Person),
            [
                {"system": SYSTEM, "user_id": uid, "name": uid, "email": "", "department": d}
                for d, ids in people.items()
                for uid in ids
            ],
        )
        for chunk in _chunks(records):
            for r in chunk:
                r.update(system=SYSTEM, modstamp="", deleted=False, synced_at=YEAR_START)
            conn.execute(insert(Record), chunk)
        for chunk in _chunks(handoffs):
            conn.execute(insert(Handoff), chunk)
        ids = [row[0] for row in conn.execute(text("SELECT id FROM handoffs ORDER BY id")).all()]
        rows = [
            {"handoff_id": hid, "outcome": o, "score": 100, "evaluated_at": YEAR_START}
            for hid, o in zip(ids, verdicts, strict=True)
        ]
        for chunk in _chunks(rows):
            conn.execute(insert(Verdict), chunk)
    return len(handoffs)


def _handoff(
    boundary: str, obj: str, rid: str, sender: str, receiver: str, at: datetime
) -> dict[str, Any]:
    a, b = boundary.split("→")
    return {
        "system": SYSTEM,
        "boundary": boundary,
        "object": obj,
        "record_id": rid,
        "sender_id": sender,
        "receiver_id": receiver,
        "sender_department": a,
        "receiver_department": b,
        "handed_at": at,
        "detected_at": at,
    }


def _settings(url: str, data_dir: Path) -> Settings:
    return load_settings({"TASUKI_DATA_DIR": str(data_dir)}, database_url=url)


def run_one(backend: str, n: int, workdir: Path, repeat: int = 1, keep: bool = False) -> Result:
    """Build a store of ``n`` records on ``backend`` (or reuse the one kept by an earlier run
    when ``keep``), time a full recomputation both ways (``repeat`` times each, alternated,
    keeping the best)."""
    admin = None
    name = ""
    if backend == "sqlite":
        url = f"sqlite:///{workdir / f'kpis-{n}.db'}"
    else:
        name = f"tasuki_bench_kpis_{n}" if keep else f"tasuki_bench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    try:
        store = open_store(url)
        t0 = time.perf_counter()
        with store.session() as s:
            handoffs = s.scalar(select(func.count()).select_from(Handoff)) or 0
        if not handoffs:
            handoffs = generate(store, n)
        if backend == "postgresql":
            with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.execute(text("VACUUM ANALYZE"))
        else:
            with store.engine.begin() as c:
                c.execute(text("ANALYZE"))
        loaded = time.perf_counter() - t0
        settings = _settings(url, workdir)
        shared: list[float] = []
        per_kpi: list[float] = []
        for _ in range(repeat):  # alternated, the best of each: the machine is shared
            seconds, values, stored = _recompute(store, settings, kpis.compute)
            baseline, _, stored_before = _recompute(store, settings, _per_kpi)
            if stored != stored_before:
                raise SystemExit(f"{backend} {n}: the shared scan and the per-KPI path disagree")
            shared.append(seconds)
            per_kpi.append(baseline)
        store.engine.dispose()
        return Result(backend, n, handoffs, loaded, min(shared), min(per_kpi), values)
    finally:
        if admin is not None:
            if not keep:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


Compute = Callable[..., int]


def _per_kpi(store: Store, settings: Settings, **kw: Any) -> int:
    """The baseline: the same recomputation, one statement per KPI and period."""
    return kpis.compute(store, settings, figures_of=per_kpi_figures, **kw)


def _recompute(
    store: Store, settings: Settings, compute: Compute
) -> tuple[float, int, list[tuple[Any, ...]]]:
    """Seconds a full recomputation of the twelve months takes from an empty ``kpi_values``,
    the rows it wrote and those rows."""
    with store.session() as s:
        s.execute(delete(KpiValue))
    now = datetime(2027, 1, 15, tzinfo=UTC)
    t0 = time.perf_counter()
    values = compute(store, settings, now=now, periods=PERIODS)
    seconds = time.perf_counter() - t0
    with store.session() as s:
        stored = sorted(
            tuple(row)
            for row in s.execute(
                select(
                    KpiValue.kpi_id,
                    KpiValue.subject_kind,
                    KpiValue.subject_id,
                    KpiValue.period,
                    KpiValue.value,
                    KpiValue.numerator,
                    KpiValue.denominator,
                    KpiValue.target,
                )
            )
        )
    return seconds, values, stored


def table(results: Sequence[Result]) -> str:
    """The results as a text table: both paths' seconds, their ratio, and the growth factor per
    10× records of each."""
    lines = [
        f"{'backend':<11}{'records':>10}{'handoffs':>10}{'values':>9}{'load s':>9}"
        f"{'shared s':>10}{'× per 10×':>11}{'baseline s':>12}{'× per 10×':>11}{'speed-up':>10}"
    ]
    previous: dict[str, Result] = {}
    for r in results:
        p = previous.get(r.backend)
        lines.append(
            f"{r.backend:<11}{r.records:>10,}{r.handoffs:>10,}{r.values:>9,}{r.load_seconds:>9.1f}"
            f"{r.compute_seconds:>10.2f}{_growth(p, r, 'compute_seconds'):>11}"
            f"{r.baseline_seconds:>12.2f}{_growth(p, r, 'baseline_seconds'):>11}"
            f"{r.baseline_seconds / r.compute_seconds:>9.2f}×"
        )
        previous[r.backend] = r
    return "\n".join(lines)


def _growth(before: Result | None, after: Result, field: str) -> str:
    """How many times longer ``field`` took per 10× records since ``before``."""
    if before is None or getattr(before, field) <= 0:
        return "–"
    ratio = getattr(after, field) / getattr(before, field)
    return f"{ratio ** (1 / math.log10(after.records / before.records)):.1f}×"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument(
        "--backends", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite", "postgresql"]
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of each path per store; the best is kept"
    )
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="keep the generated stores (SQLite files in DIR) and reuse those of earlier runs",
    )
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="tasuki-bench-kpis-") as tmp:
        workdir = Path(tmp) if args.keep is None else args.keep
        workdir.mkdir(parents=True, exist_ok=True)
        for backend in args.backends:
            for n in sorted(args.sizes):
                r = run_one(backend, n, workdir, args.repeat, keep=args.keep is not None)
                print(
                    f"{backend} {n:,} records: shared {r.compute_seconds:.2f} s, "
                    f"baseline {r.baseline_seconds:.2f} s",
                    file=sys.stderr,
                    flush=True,
                )
                results.append(r)
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
