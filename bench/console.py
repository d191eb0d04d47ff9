"""The console's pages at scale: server time p50/p95 per page against ``SELECT count(*)``.

Run as a script (never in CI)::

    .venv/bin/python bench/console.py                       # 1M records, 300k handoffs, both
    .venv/bin/python bench/console.py --records 100000 --handoffs 30000 --backends sqlite

Each store holds the year up to now of a The Model funnel: leads (70 % of the records),
deals (21 %), accounts (9 %); MK→IS handoffs (60 % of the handoffs), IS→FS (30 %) and FS→CS
(10 %), a verdict on each and a violation or two on every handoff that did not pass, written
with bulk inserts; then every KPI of the default set for the twelve months and the
partial-optimisation alarms of the last closed month, as the worker would have left
them. The console reads the wall clock, so the data ends now: the default period is the last
closed month, the current one is month to date.

Each page is requested through Flask's test client with a signed-in session (a local ``viewer``
account, the session cookie set as the login would set it): server time only, no network and no
browser. The baseline, measured in the same run on the same store, is a plain
``SELECT count(*) FROM handoffs``. Printed per page: p50 and p95 in milliseconds and p95 as a
multiple of the baseline's p50. The aim (issue 14): every page under 300 ms p95 at 1M records.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]
sys.path.insert(0, os.path.dirname(_here))

from flask.testing import FlaskClient  # noqa: E402
from sqlalchemy import create_engine, insert, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from tasuki import alarms, kpis  # noqa: E402
from tasuki.kpis.periods import PeriodKind, period_of, spanning  # noqa: E402
from tasuki.settings import Settings, load_settings  # noqa: E402
from tasuki.store.db import Store, open_store  # noqa: E402
from tasuki.store.models import Handoff, Person, Record, Verdict, Violation  # noqa: E402

SYSTEM = "local"
NOW = datetime.now(UTC)
"""The console judges periods by the wall clock: the data is the year up to now."""
YEAR_START = NOW - timedelta(days=365)
CHUNK = 20_000
POSTGRES_URL = os.environ.get(
    "TASUKI_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
PEOPLE = {"MK": 20, "IS": 40, "FS": 40, "CS": 20}
TEAMS = {"MK": ("Inbound", "Events"), "IS": ("East", "West"), "FS": ("Enterprise", "SMB")}
RULES = {
    "MK→IS": ("mk-is.company", "mk-is.email", "mk-is.first-touch-sla"),
    "IS→FS": ("is-fs.hearing-notes", "is-fs.bant.budget", "is-fs.call-recording"),
    "FS→CS": ("fs-cs.contract", "fs-cs.onboarding-notes"),
}
OUTCOMES = ("passed", "passed", "passed", "warned", "failed")


def pages(
    handoff_id: int, person: str, lead: str, current: str, year: str
) -> list[tuple[str, str]]:
    """(name, URL) of every console page timed, with ids from the generated store, the current
    month's name and the current fiscal year's."""
    return [
        ("overview", "/console/"),
        ("overview, month to date", f"/console/?period={current}"),
        ("overview, fiscal year", f"/console/?period={year}"),
        ("boundaries", "/console/boundaries"),
        ("handoffs", "/console/handoffs"),
        ("handoffs, IS→FS failed", "/console/handoffs?boundary=IS→FS&verdict=failed"),
        ("handoffs, by rule", "/console/handoffs?rule=is-fs.hearing-notes"),
        ("handoffs, by sender", f"/console/handoffs?sender={person}"),
        ("handoffs, page 50", "/console/handoffs?page=50"),
        ("handoffs, search", f"/console/handoffs?q={lead}"),
        ("handoffs, search by company", "/console/handoffs?q=Company%2012345"),
        ("handoffs CSV", "/console/handoffs?format=csv&table=handoffs"),
        ("handoff page", f"/console/handoffs/{handoff_id}"),
        ("people", "/console/people"),
        ("people CSV", "/console/people?format=csv&table=people"),
        ("explain", f"/console/explain?kpi=mk_mqls&person={person}"),
    ]


@dataclass
class Timing:
    name: str
    p50_ms: float
    p95_ms: float
    status: int
    samples: int


def _chunks(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), CHUNK):
        yield rows[start : start + CHUNK]


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


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


def generate(store: Store, n_records: int, n_handoffs: int, seed: int = 11) -> None:
    """Fill ``store`` with ``n_records`` records and ``n_handoffs`` handoffs, the year up to now."""
    rng = random.Random(seed)
    people = {d: [f"{d}{i:03d}" for i in range(k)] for d, k in PEOPLE.items()}
    n_accounts = max(10, n_records * 9 // 100)
    n_deals = max(n_handoffs * 3 // 10, n_records * 21 // 100)
    n_leads = n_records - n_accounts - n_deals
    n_mqls = n_handoffs * 6 // 10
    n_meetings = n_handoffs * 3 // 10
    n_won = n_handoffs - n_mqls - n_meetings
    assert n_mqls <= n_leads, "more MQL handoffs than leads"
    year = 365 * 86400
    records: list[dict[str, Any]] = []
    handoffs: list[dict[str, Any]] = []
    for i in range(n_accounts):
        status = "Churned" if rng.random() < 0.08 else "Active"
        records.append({"object": "account", "record_id": f"A{i}", "fields": {"status": status}})
    mql_leads = set(rng.sample(range(n_leads), n_mqls))
    mql_times: dict[int, datetime] = {}
    for i in range(n_leads):
        created = YEAR_START + timedelta(seconds=rng.randrange(year))
        lead: dict[str, Any] = {
            "name": f"Lead {i}",
            "company": f"Company {i % 50_000}",
            "email": f"lead{i}@example.jp",
            "status": "New",
            "created_at": _iso(created),
        }
        if i in mql_leads:
            mk, is_rep = rng.choice(people["MK"]), rng.choice(people["IS"])
            mql = min(created + timedelta(hours=rng.randint(1, 72)), NOW - timedelta(days=1))
            lead.update(status="MQL", owner=is_rep, mql_at=_iso(mql))
            lead["first_touch_at"] = _iso(mql + timedelta(minutes=rng.randint(5, 600)))
            handoffs.append(_handoff("MK→IS", "lead", f"L{i}", mk, is_rep, mql))
            mql_times[i] = mql
        records.append({"object": "lead", "record_id": f"L{i}", "fields": lead})
    met = rng.sample(sorted(mql_leads), n_meetings)
    won = set(rng.sample(range(n_meetings), n_won))
    for d in range(n_deals):
        deal: dict[str, Any] = {
            "name": f"Deal {d}",
            "account_id": f"A{rng.randrange(n_accounts)}",
            "stage": "Proposal",
        }
        if d < n_meetings:
            lead_index = met[d]
            is_rep, fs = rng.choice(people["IS"]), rng.choice(people["FS"])
            passed = min(
                mql_times[lead_index] + timedelta(days=rng.randint(1, 20)), NOW - timedelta(hours=1)
            )
            deal.update(
                lead_id=f"L{lead_index}",
                sourced_by=is_rep,
                owner=fs,
                fs_acceptance="Accepted" if rng.random() < 0.85 else "Rejected",
                fs_accepted_at=_iso(passed + timedelta(hours=rng.randint(1, 40))),
            )
            handoffs.append(_handoff("IS→FS", "deal", f"D{d}", is_rep, fs, passed))
            if d in won:
                csm = rng.choice(people["CS"])
                closed = min(passed + timedelta(days=rng.randint(7, 60)), NOW)
                deal.update(
                    stage="Closed Won",
                    amount=rng.randint(12, 120) * 100_000,
                    close_date=closed.date().isoformat(),
                    cs_owner=csm,
                )
                handoffs.append(_handoff("FS→CS", "deal", f"D{d}", fs, csm, closed))
        records.append({"object": "deal", "record_id": f"D{d}", "fields": deal})
    with store.engine.begin() as conn:
        conn.execute(
            insert(Person),
            [
                {
                    "system": SYSTEM,
                    "user_id": uid,
                    "name": f"{d} person {uid[2:]}",
                    "email": f"{uid.lower()}@example.jp",
                    "department": d,
                    "team": TEAMS[d][int(uid[2:]) % 2] if d in TEAMS else None,
                }
                for d, ids in people.items()
                for uid in ids
            ],
        )
        for chunk in _chunks(records):
            for r in chunk:
                r.update(system=SYSTEM, modstamp="", deleted=False, synced_at=NOW)
            conn.execute(insert(Record), chunk)
        for chunk in _chunks(handoffs):
            conn.execute(insert(Handoff), chunk)
        found = conn.execute(select(Handoff.id, Handoff.boundary).order_by(Handoff.id)).all()
        outcomes = [rng.choice(OUTCOMES) for _ in found]
        rows = [
            {
                "handoff_id": hid,
                "outcome": o,
                "score": 100 if o == "passed" else 60,
                "evaluated_at": YEAR_START,
            }
            for (hid, _), o in zip(found, outcomes, strict=True)
        ]
        for chunk in _chunks(rows):
            conn.execute(insert(Verdict), chunk)
        verdicts = dict(conn.execute(select(Verdict.handoff_id, Verdict.id)).all())
        violations = [
            {
                "verdict_id": verdicts[hid],
                "rule_id": rule,
                "severity": "error" if o == "failed" else "warn",
                "message": f"{rule} broken",
            }
            for (hid, boundary), o in zip(found, outcomes, strict=True)
            if o != "passed"
            for rule in rng.sample(RULES[boundary], rng.randint(1, 2))
        ]
        for chunk in _chunks(violations):
            conn.execute(insert(Violation), chunk)


def _settings(url: str, data_dir: Path) -> Settings:
    env = {
        "TASUKI_DATA_DIR": str(data_dir),
        "TASUKI_WEBHOOK_SECRET": "bench-webhook-secret",
        "TASUKI_OPS_TOKEN": "bench-console-secret-0123456789",
    }
    return load_settings(env, database_url=url)


def _signed_in(store: Store, settings: Settings) -> FlaskClient:
    """A test client of the real app with a viewer's session, as the login form leaves it."""
    from tasuki.store.models import ConsoleUser
    from webhooks import create_app

    with store.session() as s:
        user = ConsoleUser(username=f"bench-{uuid.uuid4().hex[:6]}", role="viewer")
        s.add(user)
        s.flush()
        user_id = user.id
    app = create_app(settings, store=store)
    client = app.test_client()
    with client.session_transaction() as session:
        session["uid"] = user_id
    return client


def _time(call: Callable[[], object], repeat: int, budget: float = math.inf) -> list[float]:
    """``repeat`` timings of ``call`` after a warm-up; fewer (at least 3) once ``budget``
    seconds are spent, so a slow page on a busy machine still ends."""
    call()  # warm: caches, the first query plan
    out: list[float] = []
    while len(out) < repeat and (len(out) < 3 or sum(out) < budget):
        started = time.perf_counter()
        call()
        out.append(time.perf_counter() - started)
    return out


def _p(samples: list[float], q: int) -> float:
    if len(samples) == 1:
        return samples[0] * 1000
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1] * 1000


def measure(
    store: Store, settings: Settings, repeat: int, budget: float, skip: Sequence[str] = ()
) -> Iterator[Timing]:
    """The baseline, then every page, timed on ``store`` (each as soon as it is measured);
    pages whose name contains one of ``skip`` are left out."""

    def count() -> object:
        with store.engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM handoffs")).scalar()

    base = _time(count, repeat)
    yield Timing("SELECT count(*) FROM handoffs", _p(base, 50), _p(base, 95), 0, len(base))
    with store.session() as s:
        handoff_id = s.scalar(
            select(Handoff.id).where(Handoff.boundary == "IS→FS").order_by(Handoff.id.desc())
        )
        lead = s.scalar(select(Handoff.record_id).where(Handoff.boundary == "MK→IS"))
    client = _signed_in(store, settings)
    b = kpis.book(settings)
    tz = kpis.company_tz(settings)
    current = period_of(NOW, PeriodKind.MONTH, b.fiscal_year_start, tz)
    year = period_of(NOW, PeriodKind.FISCAL_YEAR, b.fiscal_year_start, tz)
    for name, url in pages(int(handoff_id or 0), "MK003", str(lead), current, year):
        if any(word in name for word in skip):
            continue
        statuses: list[int] = []

        def get(url: str = url, statuses: list[int] = statuses) -> object:
            response = client.get(url)
            statuses.append(response.status_code)
            return response.get_data()

        samples = _time(get, repeat, budget)
        worst = max(statuses, key=lambda s: s != 200)
        yield Timing(name, _p(samples, 50), _p(samples, 95), worst, len(samples))


def prepare(store: Store, settings: Settings, n: int, h: int) -> dict[str, float]:
    """Generate the store, compute its KPIs and alarms; seconds each step took."""
    t0 = time.perf_counter()
    generate(store, n, h)
    if store.engine.dialect.name == "postgresql":
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text("VACUUM ANALYZE"))
    else:
        with store.engine.begin() as c:
            c.execute(text("ANALYZE"))
    t1 = time.perf_counter()
    b = kpis.book(settings)
    months = spanning(YEAR_START, NOW, b.period, b.fiscal_year_start, kpis.company_tz(settings))
    kpis.compute(store, settings, now=NOW, periods=months)
    t2 = time.perf_counter()
    closed = alarms.last_closed_period(settings, NOW)
    raised = alarms.evaluate(store, settings, closed, now=NOW, compute=False)
    t3 = time.perf_counter()
    return {"load": t1 - t0, "kpis": t2 - t1, "alarms": t3 - t2, "alarms_raised": len(raised)}


def _built(store: Store, h: int) -> bool:
    """Whether ``store`` holds a finished store of ``h`` handoffs (kept from an earlier run)."""
    with store.engine.connect() as conn:
        handoffs = conn.execute(text("SELECT count(*) FROM handoffs")).scalar()
        values = conn.execute(text("SELECT count(*) FROM kpi_values")).scalar()
    return handoffs == h and bool(values)


def run_one(
    backend: str,
    n: int,
    h: int,
    repeat: int,
    budget: float,
    workdir: Path,
    keep: bool,
    skip: Sequence[str] = (),
) -> None:
    """Build the store on ``backend`` (or reuse a kept one) and print its table."""
    admin = None
    name = f"tasuki_bench_console_{n}_{h}" if keep else f"tasuki_bench_{uuid.uuid4().hex[:10]}"
    if backend == "sqlite":
        url = f"sqlite:///{workdir / f'console-{n}-{h}.db'}"
    else:
        admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).scalar()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    try:
        store = open_store(url)
        settings = _settings(url, workdir)
        if keep and _built(store, h):
            print(f"\n{backend}: {n:,} records, {h:,} handoffs (kept store)", flush=True)
        else:
            prep = prepare(store, settings, n, h)
            print(
                f"\n{backend}: {n:,} records, {h:,} handoffs; load {prep['load']:.0f} s, "
                f"KPIs {prep['kpis']:.0f} s, alarms {prep['alarms']:.1f} s "
                f"({prep['alarms_raised']:.0f} raised)",
                flush=True,
            )
        print(f"up to {repeat} requests per page, fewer past {budget:.0f} s (at least 3)")
        print(f"{'page':36} {'status':>6} {'n':>3} {'p50 ms':>9} {'p95 ms':>9} {'p95/base':>9}")
        timings = measure(store, settings, repeat, budget, skip)
        baseline = next(timings)
        print(
            f"{baseline.name:36} {'':>6} {baseline.samples:3} "
            f"{baseline.p50_ms:9.1f} {baseline.p95_ms:9.1f}",
            flush=True,
        )
        for t in timings:
            ratio = t.p95_ms / baseline.p50_ms if baseline.p50_ms else float("nan")
            flag = "" if t.p95_ms < 300 else "  over 300 ms"
            print(
                f"{t.name:36} {t.status:>6} {t.samples:3} {t.p50_ms:9.1f} {t.p95_ms:9.1f} "
                f"{ratio:8.1f}×{flag}",
                flush=True,
            )
        store.engine.dispose()
    finally:
        if admin is not None:
            if not keep:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--handoffs", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=20, help="Requests per page (after one).")
    parser.add_argument(
        "--budget", type=float, default=60.0, help="Seconds per page before fewer requests."
    )
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="Keep the stores (SQLite in DIR, a named PostgreSQL database) and reuse them.",
    )
    parser.add_argument(
        "--backends", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"]
    )
    parser.add_argument(
        "--skip", nargs="+", default=[], metavar="WORD", help="Leave out pages named with WORD."
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tasuki-bench-console-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        for backend in args.backends:
            run_one(
                backend,
                args.records,
                args.handoffs,
                args.repeat,
                args.budget,
                workdir,
                args.keep is not None,
                args.skip,
            )


if __name__ == "__main__":
    main()
