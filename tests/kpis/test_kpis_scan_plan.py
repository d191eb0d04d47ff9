"""The shared scan of a boundary's crossings is served by indexes on PostgreSQL: the handoffs of
the period (and of the cohort windows ``reached`` probes) from ``ix_handoffs_crossings``
(migration 0013), never a sequential scan of the handoffs; each crossing's record by its unique
key (looked up one by one, or as a bitmap of them to hash). (The records behind a year of
crossings or a cohort window may be hashed from a scan when the planner finds that cheaper than
one lookup per handoff, as it does at a million records.) One month and a run of months (one
scan, :class:`~tasuki.kpis.crossings.Span`) are planned alike.

The planner is given enough rows to choose for itself (the benchmark's org at 20,000 records,
vacuumed and analysed); ``enable_seqscan`` is left on, so the plan is the one production gets."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from bench.kpis import generate
from tasuki.kpis.books import book
from tasuki.kpis.crossings import SharedScan, Span
from tasuki.kpis.periods import bounds
from tasuki.kpis.query import Context
from tasuki.settings import Settings
from tasuki.store.db import Store

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
