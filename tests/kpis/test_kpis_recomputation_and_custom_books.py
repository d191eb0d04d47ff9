"""Recomputation and custom KPI books: SQLite and PostgreSQL agree row for row; the first run
covers history and later runs only the periods changes touched; durations, field changes,
quarters and team and personal targets from a custom KPI file."""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import select

from tasuki import kpis
from tasuki.settings import Settings
from tasuki.store.db import Store
from tasuki.store.models import KpiValue, Record, Transition

NOW = datetime(2026, 11, 30, 0, 30, tzinfo=UTC)


def _fixed_org() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "kpi_fixed_org", Path(__file__).with_name("conftest.py")
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _all_values(store: Store) -> list[tuple[Any, ...]]:
    with store.session() as s:
        rows = s.scalars(select(KpiValue)).all()
        return sorted(
            (
                v.kpi_id,
                v.subject_kind,
                v.subject_id,
                v.period,
                v.value,
                v.numerator,
                v.denominator,
                v.target,
            )
            for v in rows
        )


@pytest.mark.postgres
def test_sqlite_and_postgresql_give_identical_results(
    sqlite_store: Store, postgres_store: Store, settings: Settings
) -> None:
    fixed = _fixed_org()
    for store in (sqlite_store, postgres_store):
        fixed.build_org(fixed.Org(store))
        kpis.compute(store, settings, now=NOW, periods=["2026-10", "2026-11", "2026-12"])
    on_sqlite, on_postgres = _all_values(sqlite_store), _all_values(postgres_store)
    assert len(on_sqlite) > 60
    assert on_sqlite == on_postgres
    assert kpis.person_summary(sqlite_store, settings, "2026-11") == kpis.person_summary(
        postgres_store, settings, "2026-11"
    )


def _m2_september_mqls(store: Store) -> float | None:
    """M2's stored MQL count for September."""
    with store.session() as s:
        return s.scalar(
            select(KpiValue.value).where(
                KpiValue.kpi_id == "mk_mqls",
                KpiValue.subject_id == "M2",
                KpiValue.period == "2026-09",
            )
        )


def test_first_run_covers_history_then_only_touched_periods(
    store: Store, settings: Settings, org: Any
) -> None:
    assert kpis.compute(store, settings, now=NOW) > 0
    with store.session() as s:
        periods = set(s.scalars(select(KpiValue.period)))
    assert {"2026-10", "2026-11"} <= periods  # the first handoff was in October
    assert kpis.compute(store, settings, now=NOW + timedelta(minutes=5)) == 0
    # A handoff detected now but dated September (a late sync) recomputes September.
    later = NOW + timedelta(hours=1)
    org.record("lead", "L9")
    org.handoff("MK→IS", "L9", "M2", "I1", "2026-09-15T01:00", detected=later)
    assert kpis.compute(store, settings, now=later) > 0
    assert _m2_september_mqls(store) == 1.0


def test_computing_a_named_period_does_not_hide_changes_from_the_next_incremental_run(
    store: Store, settings: Settings, org: Any
) -> None:
    kpis.compute(store, settings, now=NOW)
    # A late handoff dated September arrives; before the hourly run, someone runs
    # `tasuki kpi show --period 2026-11`, which computes November only.
    later = NOW + timedelta(minutes=30)
    org.record("lead", "L9")
    org.handoff("MK→IS", "L9", "M2", "I1", "2026-09-15T01:00", detected=later)
    org.record("lead", "L10")
    org.handoff("MK→IS", "L10", "M2", "I1", "2026-11-25T01:00", detected=later)
    assert kpis.compute(store, settings, now=later + timedelta(minutes=20), periods=["2026-11"])
    # The hourly run still sees the September change.
    kpis.compute(store, settings, now=later + timedelta(hours=1))
    assert _m2_september_mqls(store) == 1.0


def test_an_account_churning_recomputes_the_period_of_its_deals_handoff(
    store: Store, settings: Settings, org: Any
) -> None:
    kpis.compute(store, settings, now=NOW)
    with store.session() as s:
        a1 = s.scalars(select(Record).where(Record.record_id == "A1")).one()
        a1.fields = {"status": "Churned"}
        a1.synced_at = NOW + timedelta(days=40)
    kpis.compute(store, settings, now=NOW + timedelta(days=40, minutes=1))
    with store.session() as s:
        value = s.scalar(
            select(KpiValue.value).where(
                KpiValue.kpi_id == "cs_retention",
                KpiValue.subject_id == "C1",
                KpiValue.period == "2026-11",
            )
        )
    assert value == 0.0


CUSTOM = """\
period: month
fiscal_year_start: 1
kpis:
  - id: first_touch_hours
    label: hours to first touch (p50)
    kind: duration
    events: {handoffs: MK→IS}
    credit: receiver
    until: first_touch_at
    business_hours: false
  - id: first_touch_p90
    label: hours to first touch (p90)
    kind: duration
    events: {handoffs: MK→IS}
    credit: receiver
    until: first_touch_at
    percentile: 90
    business_hours: false
  - id: wins_by_changes
    label: deals moved to Closed Won
    kind: count
    events: {transitions: deal.stage, to: Closed Won}
    credit: by
  - id: meetings_q
    label: meetings per quarter
    kind: count
    events: {handoffs: IS→FS}
    credit: sender
    period: quarter
goals:
  IS:
    own: {meetings_q: 20}
    neighbour: {first_touch_hours: 3}
targets:
  people: {I1: {meetings_q: 8}}
  teams: {East: {meetings_q: 12}}
"""


@pytest.fixture
def custom(tmp_path: Path, settings: Settings) -> Settings:
    path = tmp_path / "custom_kpis.yaml"
    path.write_text(CUSTOM, encoding="utf-8")
    config = settings.config.model_copy(update={"kpis": [str(path)]})
    return replace(settings, config=config)


def test_durations_field_changes_quarters_and_targets(
    store: Store, custom: Settings, org: Any
) -> None:
    with store.session() as s:
        for i, (rid, by, at) in enumerate(
            [
                ("D1", "F1", "2026-11-20T01:00"),
                ("D7", "F1", "2026-11-21T01:00"),
                ("D9", "F1", "2026-10-30T01:00"),  # October
            ]
        ):
            s.add(
                Transition(
                    system="local",
                    object="deal",
                    record_id=rid,
                    field="stage",
                    old="Proposal",
                    new="Closed Won",
                    at=datetime.fromisoformat(at).replace(tzinfo=UTC),
                    by=by,
                    source_id=f"t{i}",
                )
            )
    kpis.compute(store, custom, now=NOW, periods=["2026-11"])
    with store.session() as s:
        got = {
            (v.kpi_id, v.subject_kind, v.subject_id, v.period): (v.value, v.target)
            for v in s.scalars(select(KpiValue))
        }
    # I1 received L1 (+2 h), L2 (+4 h), L4 (+6 h after M2's handover, the one that stands)
    # and L6 (never touched: no duration). p50 = 4, p90 = 4 + 0.8 × (6 − 4).
    assert got[("first_touch_hours", "person", "I1", "2026-11")][0] == 4.0
    assert got[("first_touch_p90", "person", "I1", "2026-11")][0] == pytest.approx(5.6)
    assert got[("wins_by_changes", "person", "F1", "2026-11")][0] == 2.0
    # Quarters with a January fiscal year: November is in FY2026-Q4, with D2 of 20 December.
    assert got[("meetings_q", "person", "I1", "FY2026-Q4")] == (5.0, 8.0)  # personal target
    assert got[("meetings_q", "team", "East", "FY2026-Q4")] == (5.0, 12.0)
    summary = {p.person_id: p for p in kpis.person_summary(store, custom, "2026-11")}
    i1 = summary["I1"]
    assert [(f.kpi_id, f.period, f.value, f.target) for f in i1.own] == [
        ("meetings_q", "FY2026-Q4", 5.0, 8.0)
    ]
    # Lower is better for durations: 3 h target / 4 h actual = 75%.
    assert i1.neighbour[0].attainment == 0.75
    assert i1.attainment == pytest.approx(0.5 * (5 / 8) + 0.5 * 0.75)
