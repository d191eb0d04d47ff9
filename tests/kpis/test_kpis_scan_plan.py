"""The shared scans are served by indexes on PostgreSQL. A boundary's crossings: the handoffs of
the period (and of the cohort windows ``reached`` probes) from ``ix_handoffs_crossings``
(migration 0013), never a sequential scan of the handoffs; each crossing's record by its unique
key (looked up one by one, or as a bitmap of them to hash). (The records behind a year of
crossings or a cohort window may be hashed from a scan when the planner finds that cheaper than
one lookup per handoff, as it does at a million records.) One month and a run of months (one
scan, :class:`~tasuki.kpis.crossings.Span`) are planned alike. A field's changes: from
``ix_transitions_changes`` (migration 0016), never a sequential scan of every change.

The planner is given enough rows to choose for itself (the benchmark's org at 20,000 records,
vacuumed and analysed); ``enable_seqscan`` is left on, so the plan is the one production gets."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, text

from bench.kpis import generate
from tasuki.kpis.books import book
from tasuki.kpis.crossings import SharedScan, Span
from tasuki.kpis.periods import bounds
from tasuki.kpis.query import Context
from tasuki.settings import Settings
from tasuki.store.db import Store
from tasuki.store.models import Transition

NOW = datetime(2027, 1, 15, tzinfo=UTC)


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _plan(
    store: Store, settings: Settings, boundary: str, periods: list[str]
) -> list[dict[str, Any]]:
    """Every node of the plan PostgreSQL chooses for the shared scan of ``boundary`` over the
    consecutive ``periods``."""
    b = book(settings)
    with store.session() as s:
        ctx = Context(s, settings.config, b, "local", NOW)
        kpis = [k for k in b.kpis.values() if k.events.handoffs == boundary]
        spans = [Span(*bounds(p, b.fiscal_year_start, ctx.tz), frozenset()) for p in periods]
        statement = SharedScan(ctx, kpis, spans).statement()
        pg = s.get_bind().dialect
        sql = statement.compile(dialect=pg, compile_kwargs={"literal_binds": True})
        [[explained]] = s.execute(text(f"EXPLAIN (FORMAT JSON) {sql}")).all()
    return list(_nodes(explained[0]["Plan"]))


@pytest.mark.postgres
@pytest.mark.parametrize("periods", [["2026-06"], [f"2026-{m:02d}" for m in range(4, 10)]])
@pytest.mark.parametrize("boundary", ["MK→IS", "IS→FS", "FS→CS"])
def test_the_shared_scan_reads_indexes_not_tables(
    postgres_store: Store, settings: Settings, boundary: str, periods: list[str]
) -> None:
    generate(postgres_store, 20_000)
    with postgres_store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text("VACUUM ANALYZE handoffs"))
        c.execute(text("VACUUM ANALYZE records"))
        c.execute(text("VACUUM ANALYZE verdicts"))
    nodes = _plan(postgres_store, settings, boundary, periods)
    scans = {(n["Node Type"], n.get("Relation Name"), n.get("Index Name")) for n in nodes}
    assert not [s for s in scans if s[0] == "Seq Scan" and s[1] == "handoffs"], scans
    index_reads = {"Index Only Scan", "Index Scan", "Bitmap Index Scan"}
    assert {s[0] for s in scans if s[2] == "ix_handoffs_crossings"} & index_reads, scans
    assert {s[0] for s in scans if s[2] == "uq_records_system"} & index_reads, scans


CHANGES_BOOK = """\
period: month
fiscal_year_start: 4
kpis:
  - id: deals_won_by_changes
    label: deals moved to Closed Won
    kind: count
    events: {transitions: deal.stage, to: Closed Won}
    credit: by
  - id: stage_changes_by_owner
    label: deals whose stage changed, by owner
    kind: count
    events: {transitions: deal.stage}
    credit: owner
"""


@pytest.mark.postgres
@pytest.mark.parametrize("periods", [["2026-06"], [f"2026-{m:02d}" for m in range(4, 10)]])
def test_the_scan_of_a_fields_changes_reads_its_index(
    postgres_store: Store, settings: Settings, tmp_path: Path, periods: list[str]
) -> None:
    """A field's changes of a period come from ``ix_transitions_changes`` (migration 0016),
    not from a sequential scan of every change of every field."""
    rng = random.Random(3)
    fields = ["stage", "owner", "status", "amount", "close_date"]
    changes = [
        {
            "system": "local",
            "object": "deal" if i % 3 else "lead",
            "record_id": f"D{i % 7_000}",
            "field": fields[i % len(fields)],
            "old": "Proposal",
            "new": rng.choice(["Closed Won", "Closed Lost", "Proposal"]),
            "at": datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=13 * i),
            "by": f"FS{i % 40:03d}",
            "source_id": f"c{i}",
        }
        for i in range(40_000)
    ]
    with postgres_store.engine.begin() as conn:
        conn.execute(insert(Transition), changes)
    with postgres_store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text("VACUUM ANALYZE transitions"))
    path = tmp_path / "changes.yaml"
    path.write_text(CHANGES_BOOK, encoding="utf-8")
    config = settings.config.model_copy(update={"kpis": [str(path)]})
    chosen = replace(settings, config=config)
    b = book(chosen)
    scans = set()
    with postgres_store.session() as s:
        ctx = Context(s, chosen.config, b, "local", NOW)
        for kpi in b.kpis.values():
            spans = [Span(*bounds(p, b.fiscal_year_start, ctx.tz), frozenset()) for p in periods]
            sql = (
                SharedScan(ctx, [kpi], spans)
                .statement()
                .compile(dialect=s.get_bind().dialect, compile_kwargs={"literal_binds": True})
            )
            [[explained]] = s.execute(text(f"EXPLAIN (FORMAT JSON) {sql}")).all()
            nodes = _nodes(explained[0]["Plan"])
            scans |= {(n["Node Type"], n.get("Relation Name"), n.get("Index Name")) for n in nodes}
    assert not [s for s in scans if s[0] == "Seq Scan" and s[1] == "transitions"], scans
    index_reads = {"Index Only Scan", "Index Scan", "Bitmap Index Scan"}
    assert {s[0] for s in scans if s[2] == "ix_transitions_changes"} & index_reads, scans
