"""KPI figures go to the CRM only through the write-back path: a dry run writes nothing; a second
push of unchanged figures makes no write call; ``tasuki kpi`` commands."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from connectors.local import LocalCrm
from tasuki import kpis
from tasuki.cli import main
from tasuki.settings import Settings
from tasuki.store.db import Store, open_store
from tasuki.store.models import LedgerEntry, Person
from tasuki.writeback import write_back

NOW = datetime(2026, 11, 30, 0, 30, tzinfo=UTC)
USER_FIELDS = ["Name", "Department", "Tasuki_Own_KPI__c", "Tasuki_Neighbour_KPI__c"]


def _crm(settings: Settings) -> LocalCrm:
    crm = LocalCrm(":memory:")
    crm.define("User", USER_FIELDS + ["Tasuki_Attainment__c"])
    for uid in ("M1", "M2", "I1", "I2", "F1", "C1"):
        crm.upsert("User", uid, {"Name": uid}, at=NOW)
    return crm


def test_desired_values_are_stable_user_fields(store: Store, settings: Settings, org: Any) -> None:
    kpis.compute(store, settings, now=NOW, periods=["2026-11"])
    desired = kpis.desired_values(store, settings, "2026-11")
    by = {(d.record_id, d.field): d.value for d in desired}
    assert {d.object for d in desired} == {"user"}
    assert by[("M1", "tasuki_own_kpi")] == "2026-11 MQLs: 3 / 20"
    assert str(by[("M1", "tasuki_neighbour_kpi")]).startswith(
        "2026-11 MQL→meeting rate (IS on MK's leads): 33% / 40%; "
    )
    assert isinstance(by[("M1", "tasuki_attainment")], int)
    assert kpis.desired_values(store, settings, "2026-11") == desired


def test_dry_run_writes_nothing_and_a_second_push_makes_no_call(
    store: Store, settings: Settings, org: Any
) -> None:
    crm = _crm(settings)
    kpis.compute(store, settings, now=NOW, periods=["2026-11"])
    desired = kpis.desired_values(store, settings, "2026-11")
    dry = write_back(store, crm, settings.config, desired, dry_run=True)
    assert dry.fields == len(desired) == 18 and dry.calls == 1
    assert crm.calls.total == 0
    assert crm.get("User", "M1") is not None
    assert "Tasuki_Own_KPI__c" not in (crm.get("User", "M1") or {})
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(LedgerEntry)) == 0
    real = write_back(store, crm, settings.config, desired)
    assert (real.fields, real.calls) == (18, 1)
    assert (crm.get("User", "M1") or {})["Tasuki_Own_KPI__c"] == "2026-11 MQLs: 3 / 20"
    kpis.compute(store, settings, now=NOW, periods=["2026-11"])
    again = write_back(store, crm, settings.config, kpis.desired_values(store, settings, "2026-11"))
    assert (again.fields, again.calls) == (0, 0)
    assert crm.calls["write"] == 1


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    """An environment whose default SQLite store holds the fixed org."""
    from tasuki.settings import load_settings

    data = tmp_path / "cli"
    monkeypatch.setenv("TASUKI_DATA_DIR", str(data))
    monkeypatch.delenv("TASUKI_DATABASE_URL", raising=False)
    monkeypatch.delenv("TASUKI_CONFIG", raising=False)
    store = open_store(load_settings().database_url)
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "kpi_fixed_org", Path(__file__).with_name("conftest.py")
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.build_org(module.Org(store))
    crm = LocalCrm(data / "crm.db")
    crm.define("User", USER_FIELDS + ["Tasuki_Attainment__c"])
    with store.session() as s:
        for p in s.scalars(select(Person)):
            crm.upsert("User", p.user_id, {"Name": p.name}, at=NOW)
    return store


def test_cli_push_dry_run_then_push_then_nothing_left(cli_env: Store) -> None:
    runner = CliRunner()
    dry = runner.invoke(main, ["kpi", "push", "--dry-run", "--period", "2026-11"])
    assert dry.exit_code == 0, dry.output
    assert "would change 0 field(s)" not in dry.output  # nothing computed yet: empty figures
    done = runner.invoke(main, ["kpi", "push", "--period", "2026-11"])
    assert done.exit_code == 0, done.output
    assert "user M1 tasuki_own_kpi: None → 2026-11 MQLs: 3 / 20" in done.output
    assert "changed 18 field(s) on 6 record(s) in 1 API call(s)" in done.output
    dry = runner.invoke(main, ["kpi", "push", "--dry-run", "--period", "2026-11"])
    assert "would change 0 field(s) on 0 record(s) in 0 API call(s)" in dry.output
    with cli_env.session() as s:
        ledger = s.scalar(select(func.count()).select_from(LedgerEntry))
    again = runner.invoke(main, ["kpi", "push", "--period", "2026-11"])
    assert "changed 0 field(s) on 0 record(s) in 0 API call(s)" in again.output
    with cli_env.session() as s:
        assert s.scalar(select(func.count()).select_from(LedgerEntry)) == ledger


def test_cli_show_and_explain(cli_env: Store) -> None:
    runner = CliRunner()
    shown = runner.invoke(main, ["kpi", "show", "--period", "2026-11"])
    assert shown.exit_code == 0, shown.output
    assert "MQLs: 3 / 20" in shown.output
    out = runner.invoke(
        main, ["kpi", "explain", "mk_mql_to_meeting", "--person", "M1", "--period", "2026-11"]
    )
    assert out.exit_code == 0, out.output
    assert "mk_mql_to_meeting" in out.output and "33.3%" in out.output
    assert all(rid in out.output for rid in ("L1", "L2", "L6")) and "L4" not in out.output
    assert "3 event(s)" in out.output
    bad = runner.invoke(main, ["kpi", "explain", "nope", "--period", "2026-11"])
    assert bad.exit_code == 1 and "unknown KPI 'nope'" in bad.output
    bad = runner.invoke(main, ["kpi", "show", "--period", "2026-13"])
    assert bad.exit_code == 1 and "not a period" in bad.output
