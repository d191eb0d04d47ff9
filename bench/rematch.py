"""Re-matching recordings: the pass after a sync against the full pass, in the same run.

A store of ``--snapshots`` CRM snapshots (60 % leads with a phone and an email, 10 % accounts
with a domain, 30 % deals with a lead, an account, an owner and a meeting date), their match
keys as a sync writes them, and ``--recordings`` pending recordings nobody in the CRM matches
yet (80 % calls to unknown numbers, 20 % meetings with guests of unknown companies). Then
``--changed`` records change through the sync's own path (``apply_records``): leads take the
numbers of some calls, accounts the domains of some meetings, deals move their meeting date.
Timed, both giving the same links:

- the full pass: every pending recording against every snapshot (what each pass did before,
  and still does on a store's first pass or after the matching settings change);
- the incremental pass: the recordings the marked keys lead to, against the snapshots the index
  leads to (:mod:`tasuki.recordings.rematch`).

    .venv/bin/python bench/rematch.py [--snapshots 1000000] [--recordings 20000]
                                      [--changed 100] [--backends sqlite postgresql]
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

from sqlalchemy import insert, select, update  # noqa: E402

from bench.intake import postgres_database  # noqa: E402
from bench.writeback_plan import analyze  # noqa: E402
from connectors.local import LocalCrm  # noqa: E402
from tasuki import runtime  # noqa: E402
from tasuki.crm import RawRecord  # noqa: E402
from tasuki.mapping import Mapper  # noqa: E402
from tasuki.recordings.config import RecordingsConfig  # noqa: E402
from tasuki.recordings.keys import record_keys, recording_keys  # noqa: E402
from tasuki.recordings.rematch import rematch  # noqa: E402
from tasuki.settings import load_settings  # noqa: E402
from tasuki.store.db import open_store  # noqa: E402
from tasuki.store.models import (  # noqa: E402
    Person,
    Record,
    Recording,
    RecordingKey,
    RecordKey,
)
from tasuki.sync import apply_records  # noqa: E402

CHUNK = 20_000
START = datetime(2026, 11, 2, tzinfo=UTC)
RCFG = RecordingsConfig()
USERS = [f"005U{i}" for i in range(10)]


def _user(i: int) -> str:
    return USERS[i % len(USERS)]


def _snapshot(i: int, n: int) -> tuple[str, str, dict[str, Any]]:
    """Snapshot ``i`` of ``n``: its object, id and logical fields."""
    accounts = max(1, n // 10)
    kind = i % 10
    if kind == 0:
        j = i // 10
        return "account", f"001{j:07d}", {"name": f"Co {j}", "domain": f"co{j}.example.jp"}
    if kind in (1, 2, 3):
        lead = f"00Q{(i + 3) % n:07d}"
        return (
            "deal",
            f"006{i:07d}",
            {
                "lead_id": lead,
                "account_id": f"001{i % accounts:07d}",
                "owner": _user(i),
                "meeting_date": (START + timedelta(minutes=i)).isoformat(),
            },
        )
    return (
        "lead",
        f"00Q{i:07d}",
        {
            "phone": f"+8136{i:07d}",
            "email": f"p{i}@co{i % accounts}.example.jp",
            "owner": _user(i),
            "account_id": f"001{i % accounts:07d}",
        },
    )


def _insert(rt: runtime.Runtime, model: Any, rows: list[dict[str, Any]]) -> None:
    with rt.store.engine.begin() as conn:
        for start in range(0, len(rows), CHUNK):
            conn.execute(insert(model), rows[start : start + CHUNK])


def fill(rt: runtime.Runtime, n: int, pending: int) -> None:
    """``n`` snapshots with their keys, the users, ``pending`` recordings with their keys."""
    now = datetime.now(UTC)
    for block in range(0, n, CHUNK * 5):
        records: list[dict[str, Any]] = []
        keys: list[dict[str, Any]] = []
        for i in range(block, min(n, block + CHUNK * 5)):
            obj, rid, fields = _snapshot(i, n)
            records.append(
                {
                    "system": rt.system,
                    "object": obj,
                    "record_id": rid,
                    "fields": fields,
                    "modstamp": "1",
                    "deleted": False,
                    "synced_at": now,
                }
            )
            keys.extend(
                {"system": rt.system, "object": obj, "record_id": rid, "kind": k, "value": v}
                for k, v in record_keys(obj, fields)
            )
        _insert(rt, Record, records)
        _insert(rt, RecordKey, keys)
    with rt.store.session() as s:
        s.add_all(
            Person(system=rt.system, user_id=u, name=u, email=f"rep{i}@example.co.jp")
            for i, u in enumerate(USERS)
        )
    recordings: list[dict[str, Any]] = []
    for i in range(pending):
        call = i % 5 != 0
        recordings.append(
            {
                "provider": "miitel" if call else "zoom",
                "external_id": f"r{i}",
                "kind": "call" if call else "meeting",
                "url": f"https://example.invalid/r{i}",
                "at": START + timedelta(minutes=7 * i),
                "title": "",
                "phones": [f"+8145{i:07d}"] if call else [],
                "emails": [] if call else [f"ceo@new{i}.example.jp"],
                "host_email": f"rep{i % len(USERS)}@example.co.jp",
                "user_id": "",
                "system": None,
                "status": "unmatched",
                "reason": "not matched yet",
                "payload": {},
                "received_at": now,
            }
        )
    _insert(rt, Recording, recordings)
    with rt.store.session() as s:
        ids = list(
            s.execute(
                select(
                    Recording.id,
                    Recording.kind,
                    Recording.phones,
                    Recording.emails,
                    Recording.host_email,
                )
            )
        )
    _insert(
        rt,
        RecordingKey,
        [
            {"recording_id": rid, "kind": k, "value": v}
            for rid, kind, phones, emails, host in ids
            for k, v in recording_keys(kind, phones, emails, host, "")
        ],
    )
    analyze(rt.store)
    # The steady state: every pending recording tried once (by the full pass a store's first
    # pass is), nothing marked.
    timed(rt, full=True)


def change(rt: runtime.Runtime, n: int, pending: int, changed: int) -> None:
    """``changed`` records change through the sync's path: 60 % leads take the number of a
    pending call, 10 % accounts the domain of a pending meeting, 30 % deals a new date."""
    mapper = Mapper(rt.settings.config)
    step = max(1, n // changed)
    by_object: dict[str, list[RawRecord]] = {"lead": [], "account": [], "deal": []}
    for c, i in enumerate(range(0, n, step)):
        if c >= changed:
            break
        which = c % 10
        obj = "account" if which == 0 else "deal" if which in (1, 2, 3) else "lead"
        # the nearest snapshot of that object at or after i
        j = next(k for k in range(i, i + 10) if _snapshot(k, n)[0] == obj)
        _, rid, fields = _snapshot(j, n)
        target = (c * pending) // changed
        if obj == "lead":
            fields = {**fields, "phone": f"+8145{target - target % 5 + 1:07d}"}
        elif obj == "account":
            fields = {**fields, "domain": f"new{target - target % 5}.example.jp"}
        else:
            fields = {**fields, "meeting_date": (START + timedelta(days=1, minutes=c)).isoformat()}
        physical = {mapper.physical_field(obj, k): v for k, v in fields.items()}
        by_object[obj].append(RawRecord(rid, physical, modstamp="2"))
    with rt.store.session() as s:
        for obj, raws in by_object.items():
            apply_records(rt, s, obj, raws)


def links(rt: runtime.Runtime) -> dict[int, tuple[Any, ...]]:
    with rt.store.session() as s:
        rows = s.execute(
            select(
                Recording.id,
                Recording.status,
                Recording.system,
                Recording.matched_object,
                Recording.matched_record_id,
                Recording.reason,
            )
        )
        return {r[0]: tuple(r[1:]) for r in rows}


def restore(rt: runtime.Runtime, before: dict[int, tuple[Any, ...]]) -> None:
    now = links(rt)
    with rt.store.session() as s:
        for rid, state in before.items():
            if now[rid] != state:
                status, system, obj, record, reason = state
                s.execute(
                    update(Recording)
                    .where(Recording.id == rid)
                    .values(
                        status=status,
                        system=system,
                        matched_object=obj,
                        matched_record_id=record,
                        reason=reason,
                    )
                )


def timed(rt: runtime.Runtime, full: bool) -> tuple[float, list[tuple[str, str]]]:
    started = time.perf_counter()
    with rt.store.session() as s:
        touched = rematch(s, rt.settings.config, rt.system, RCFG, full=full)
    return time.perf_counter() - started, touched


def run(url: str, folder: Path, n: int, pending: int, changed: int) -> tuple[float, float, int]:
    settings = load_settings({"TASUKI_DATA_DIR": str(folder)}, database_url=url)
    store = open_store(url)
    rt = runtime.Runtime(settings, store, LocalCrm(folder / "crm.db"), redis_connection=None)
    fill(rt, n, pending)
    change(rt, n, pending, changed)
    before = links(rt)
    incremental, mine = timed(rt, full=False)
    after = links(rt)
    restore(rt, before)
    full, theirs = timed(rt, full=True)
    assert links(rt) == after, "the incremental pass links differently from the full pass"
    assert sorted(mine) == sorted(theirs)
    store.engine.dispose()
    return full, incremental, len(mine)


@contextmanager
def database(backend: str, folder: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'rematch.db'}"
    else:
        with postgres_database() as url:
            yield url


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--snapshots", type=int, default=1_000_000)
    parser.add_argument("--recordings", type=int, default=20_000)
    parser.add_argument("--changed", type=int, default=100)
    parser.add_argument(
        "--backends", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite", "postgresql"]
    )
    args = parser.parse_args(argv)
    for backend in args.backends:
        with tempfile.TemporaryDirectory(prefix="tasuki-bench-rematch-") as tmp:
            with database(backend, Path(tmp)) as url:
                full, incremental, linked = run(
                    url, Path(tmp), args.snapshots, args.recordings, args.changed
                )
        print(
            f"{backend:<11} {args.snapshots:>9,} snapshots, {args.recordings:,} pending, "
            f"{args.changed} changed: full pass {full:8.2f} s | incremental {incremental:6.3f} s"
            f" | ratio {full / incremental:6.0f}x | {linked} linked, links equal",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
