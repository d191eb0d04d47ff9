"""The shared scan (one statement per source of events and run of consecutive periods,
:mod:`tasuki.kpis.crossings`), and the same scan one period at a time, give exactly the figures of
the straightforward computation, one statement per KPI and period, on a
generated org (the benchmark's, small) with people who moved mid-year, field changes, and a
custom book that exercises every kind of condition and credit; on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from bench.kpis import generate
from tasuki.kpis.books import book
from tasuki.kpis.engine import Subjects, _epoch, _instant, per_kpi_figures, runs, shared_figures
from tasuki.kpis.query import Context
from tasuki.membership import BEGINNING
from tasuki.settings import Settings
from tasuki.store.db import Store
from tasuki.store.models import Membership, Person, Record, Transition

NOW = datetime(2027, 1, 15, tzinfo=UTC)
MOVED_AT = datetime(2026, 6, 14, 15, 0, tzinfo=UTC)
"""Mid-June in Tokyo: June's events of the people who moved are placed one by one."""
PERIODS = [f"2026-{m:02d}" for m in range(1, 13)] + ["FY2025-Q4", "FY2026-Q1"]

CUSTOM = """\
period: month
fiscal_year_start: 4
kpis:
  - id: meetings_kept_by_owner
    label: meetings not rejected, by the deal's owner
    kind: count
    events: {handoffs: IS→FS}
    credit: owner
    where: [{field: fs_acceptance, not_in: [Rejected]}]
  - id: failed_mqls
    label: MQLs whose handoff failed the rules
    kind: count
    events: {handoffs: MK→IS}
    credit: sender
    where: [{verdict: failed}]
  - id: mqls_ever_met
    label: MQLs that became a meeting, however late
    kind: rate
    events: {handoffs: MK→IS}
    credit: receiver
    success: {reached: IS→FS}
  - id: meetings_won_soon
    label: meetings won within 60 days
    kind: rate
    events: {handoffs: IS→FS}
    credit: sender
    where: [{field: sourced_by, is_set: true}]
    success: [{reached: FS→CS, within_days: 60}, {field: stage, in: [Closed Won]}]
  - id: revenue_of_active_accounts
    label: revenue received from accounts still active
    kind: sum
    events: {handoffs: FS→CS}
    credit: receiver
    value: amount
    where: [{related: account, field: status, equals: Active}]
  - id: first_touch_p90_by_sender
    label: wall-clock hours to first touch of MK's MQLs (p90)
    kind: duration
    events: {handoffs: MK→IS}
    credit: sender
    until: first_touch_at
    percentile: 90
    business_hours: false
    where: [{field: status, equals: MQL}]
  - id: first_touch_by_receiver
    label: business hours to first touch
    kind: duration
    events: {handoffs: MK→IS}
    credit: receiver
    until: first_touch_at
  - id: answered_by_owner
    label: meetings answered within a business day, by the deal's owner
    kind: sla
    events: {handoffs: IS→FS}
    credit: owner
    until: fs_accepted_at
    within_hours: 9
  - id: hours_to_mql
    label: wall-clock hours from a lead's creation to MQL, alone on its source
    kind: duration
    events: {records: lead, at: created_at}
    credit: owner
    until: mql_at
    business_hours: false
  - id: wins_by_changes
    label: deals moved to Closed Won
    kind: count
    events: {transitions: deal.stage, to: Closed Won}
    credit: by
  - id: stage_changes_by_owner
    label: deals whose stage changed, by owner
    kind: count
    events: {transitions: deal.stage}
    credit: owner
  - id: win_rate_by_close
    label: win rate by close date
    kind: rate
    events: {records: deal, at: close_date}
    credit: sourced_by
    where: [{field: stage, in: [Closed Won, Closed Lost]}]
    success: {field: stage, equals: Closed Won}
  - id: closed_amounts
    label: amounts of deals closed
    kind: sum
    events: {records: deal, at: close_date}
    credit: owner
    value: amount
    where: [{field: amount, is_set: true}]
"""


def _populate(store: Store) -> None:
    """The benchmark's org (about 3,000 records) plus moves, teams and stage changes."""
    generate(store, 3_000, seed=11)
    rng = random.Random(5)
    with store.session() as s:
        people = s.execute(select(Person.user_id, Person.department)).all()
        deals = s.execute(
            select(Record.record_id, Record.fields).where(Record.object == "deal")
        ).all()
    rows = []
    for uid, dept in people:
        common = {"system": "local", "user_id": uid, "source": "observed", "observed_at": NOW}
        team = f"{dept}-{'East' if uid[-1] in '02468' else 'West'}"
        if dept in ("IS", "FS") and uid[-1] in "37":  # a fifth of IS and FS moved in June
            other = "FS" if dept == "IS" else "IS"
            rows.append({**common, "department": other, "team": f"{other}-Old"})
            rows[-1].update(valid_from=BEGINNING, valid_to=MOVED_AT)
            rows.append({**common, "department": dept, "team": team})
            rows[-1].update(valid_from=MOVED_AT, valid_to=None)
        else:
            rows.append({**common, "department": dept, "team": team})
            rows[-1].update(valid_from=BEGINNING, valid_to=None)
    changes = []
    for i, (rid, fields) in enumerate(deals):
        if fields.get("close_date"):
            at = datetime.fromisoformat(fields["close_date"]).replace(hour=3, tzinfo=UTC)
            by = fields["owner"] if rng.random() < 0.9 else None
            changes.append(
                {
                    "system": "local",
                    "object": "deal",
                    "record_id": rid,
                    "field": "stage",
                    "old": "Proposal",
                    "new": fields["stage"],
                    "at": at,
                    "by": by,
                    "source_id": f"c{i}",
                }
            )
    with store.engine.begin() as conn:
        conn.execute(insert(Membership), rows)
        conn.execute(insert(Transition), changes)


@pytest.fixture
def custom(tmp_path: Path, settings: Settings) -> Settings:
    path = tmp_path / "custom_kpis.yaml"
    path.write_text(CUSTOM, encoding="utf-8")
    config = settings.config.model_copy(update={"kpis": [str(path)]})
    return replace(settings, config=config)


@pytest.mark.parametrize("book_name", ["default", "custom"])
def test_the_shared_scan_gives_the_figures_of_one_statement_per_kpi(
    store: Store, settings: Settings, custom: Settings, book_name: str
) -> None:
    _populate(store)
    chosen = settings if book_name == "default" else custom
    b = book(chosen)
    with store.session() as s:
        ctx = Context(s, chosen.config, b, "local", NOW)
        subjects = Subjects.load(s, "local")
        assert subjects.memberships.movers(MOVED_AT.replace(day=1), MOVED_AT.replace(day=28))
        kpis = list(b.kpis.values())
        # The months in one scan per source, the two quarters in another (a run each).
        assert [len(run) for run in runs(ctx, PERIODS)] == [12, 2]
        shared = shared_figures(ctx, kpis, PERIODS, subjects)
        alone = {p: shared_figures(ctx, kpis, [p], subjects)[p] for p in PERIODS}
        one_by_one = per_kpi_figures(ctx, kpis, PERIODS, subjects)
    for p in PERIODS:
        for kpi in kpis:
            assert shared[p][kpi.id] == one_by_one[p][kpi.id], (p, kpi.id)
            assert alone[p][kpi.id] == one_by_one[p][kpi.id], (p, kpi.id)
    # Not vacuous: every KPI with events has figures for people, teams (a mover's old team
    # included), departments and the org.
    everything = [key for p in PERIODS for figs in shared[p].values() for key in figs]
    assert len(everything) > 2_000
    assert {kind for kind, _ in everything} == {"person", "team", "department", "org"}
    assert ("team", "IS-Old") in everything or ("team", "FS-Old") in everything
    empty = {"cs_expansion_conversion", "cs_fs_pass_rate"}  # no CS→FS boundary in the org
    for kpi in kpis:
        if kpi.id not in empty:
            assert any(shared[p][kpi.id] for p in PERIODS), kpi.id


@pytest.mark.parametrize(
    "raw",
    [
        datetime(2026, 6, 14, 15, 0, 0, 123457),  # PostgreSQL's naive UTC
        "2026-06-14 15:00:00.123457",  # SQLite's stored text
        "2026-06-14T15:00:00Z",
        "2026-06-14T15:00:00.5+09:00",
        "2026-06-14",
        "1969-12-31T23:59:59.999999",
        datetime(2026, 6, 14, 15, 0, tzinfo=UTC),
    ],
)
def test_event_times_are_measured_as_their_instants(raw: datetime | str) -> None:
    """The scan reads times raw and measures them without making aware datetimes first: the
    same epoch seconds, to the bit, as the instant's own ``timestamp()``."""
    instant = _instant(raw)
    assert instant is not None
    assert _epoch(raw) == instant.timestamp()
    assert _epoch("not a date") is None and _epoch("") is None and _epoch(None) is None
