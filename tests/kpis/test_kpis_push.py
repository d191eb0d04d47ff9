"""KPI figures go to the CRM only through the write-back path: a dry run writes nothing; a second
push of unchanged figures makes no write call; ``tasuki kpi`` commands."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from connectors.local import LocalCrm
from tasuki import kpis
from tasuki.cli import main
from tasuki.demo.org import define_schema
from tasuki.mapping import Mapper
from tasuki.settings import Settings
from tasuki.store.db import Store, open_store
from tasuki.store.models import LedgerEntry, Person, WriteRejection
from tasuki.writeback import DesiredValue, write_back

NOW = datetime(2026, 11, 30, 0, 30, tzinfo=UTC)
ROWS = "Tasuki_KPI__c"


def _crm(settings: Settings) -> LocalCrm:
    """An embedded CRM with every object and field the default mapping names, and the users."""
    crm = LocalCrm(":memory:")
    define_schema(crm, settings.config)
    for uid in ("M1", "M2", "I1", "I2", "F1", "C1"):
        crm.upsert("User", uid, {"Name": uid}, at=NOW)
    for lead in ("L1", "L2", "L3", "L4", "L6"):
        crm.upsert("Lead", lead, {"Status": "Working"}, at=NOW)
    return crm


def _by(desired: list[DesiredValue], obj: str) -> dict[tuple[str, str], Any]:
    return {(d.record_id, d.field): d.value for d in desired if d.object == obj}


def test_user_fields_show_the_current_period_only(
    store: Store, settings: Settings, org: Any
) -> None:
    kpis.compute(store, settings, now=NOW, periods=["2026-10", "2026-11"])
    desired = kpis.desired_values(store, settings, ["2026-11"], now=NOW)
    by = _by(desired, "user")
    assert by[("M1", "tasuki_own_kpi")] == "2026-11 MQLs: 3 / 20"
    assert str(by[("M1", "tasuki_neighbour_kpi")]).startswith(
        "2026-11 MQL→meeting rate (IS on MK's leads): 33% / 40%; "
    )
    assert isinstance(by[("M1", "tasuki_attainment")], int)
    assert kpis.desired_values(store, settings, ["2026-11"], now=NOW) == desired
    # A closed period pushed alone leaves the user fields (they show the current period) alone.
    closed = kpis.desired_values(store, settings, ["2026-10"], now=NOW)
    assert not _by(closed, "user") and _by(closed, "kpi_row")
    assert kpis.pushed_periods(settings, NOW) == ["2026-10", "2026-11"]


def test_kpi_rows_one_per_subject_kpi_and_period(
    store: Store, settings: Settings, org: Any
) -> None:
    kpis.compute(store, settings, now=NOW, periods=["2026-11"])
    rows = _by(kpis.desired_values(store, settings, ["2026-11"], now=NOW), "kpi_row")
    m1 = kpis.row_key("2026-11", "mk_mqls", "person", "M1")
    assert m1 == "2026-11|mk_mqls|person:M1"
    # L1, L2, L6 (L4 went to M2 when it was handed over again; L5 is deleted): 3 of 20.
    assert rows[(m1, "value")] == 3 and rows[(m1, "target")] == 20
    assert rows[(m1, "attainment")] == 15 and rows[(m1, "person")] == "M1"
    assert (rows[(m1, "kpi")], rows[(m1, "period")], rows[(m1, "label")]) == (
        "mk_mqls",
        "2026-11",
        "MQLs",
    )
    assert rows[(m1, "subject_kind")] == "person" and rows[(m1, "subject")] == "M1"
    # The org total: L1, L2, L6 by M1 and L4 by M2.
    org_row = kpis.row_key("2026-11", "mk_mqls", "org", "org")
    assert rows[(org_row, "value")] == 4 and (org_row, "person") not in rows
    assert rows[(kpis.row_key("2026-11", "mk_mqls", "department", "MK"), "value")] == 4
    # Teams: I1 is in East; its meetings (D1, D3 was I2's, D4, D5, D6) count for East too.
    east = kpis.row_key("2026-11", "is_meetings", "team", "East")
    mine = kpis.row_key("2026-11", "is_meetings", "person", "I1")
    assert rows[(east, "value")] == rows[(mine, "value")] == 4
    # A person with a goal and no events still gets a row: a count of 0, a rate unknown.
    c1 = kpis.row_key("2026-11", "cs_expansion_conversion", "person", "C1")
    assert rows[(c1, "value")] is None and rows[(c1, "target")] == 0.3
    assert rows[(c1, "attainment")] is None
    f1_won = kpis.row_key("2026-11", "fs_won_revenue", "person", "I2")  # I2 is in FS now
    assert rows[(f1_won, "value")] == 0 and rows[(f1_won, "attainment")] == 0
    # Nobody's goal holds is_meetings for M1, and M1 had no meetings: no row.
    assert (kpis.row_key("2026-11", "is_meetings", "person", "M1"), "value") not in rows


def test_record_level_figures_go_on_the_record(store: Store, settings: Settings, org: Any) -> None:
    kpis.compute(store, settings, now=NOW, periods=["2026-10", "2026-11"])
    leads = _by(kpis.desired_values(store, settings, now=NOW), "lead")
    # Business hours from MQL to first touch, Tokyo calendar: L1 Mon 10:00 → 12:00 = 2.0; L2 on
    # Culture Day (a holiday) → 0.0; L4's latest handoff Fri 10:00 → 16:00 = 6.0. L3 and L6 are
    # untouched (clocks still running), L5 is deleted: nothing for them.
    assert leads == {
        ("L1", "tasuki_first_touch_hours"): 2.0,
        ("L2", "tasuki_first_touch_hours"): 0.0,
        ("L4", "tasuki_first_touch_hours"): 6.0,
    }


def test_dry_run_writes_nothing_and_a_second_push_makes_no_call(
    store: Store, settings: Settings, org: Any
) -> None:
    crm = _crm(settings)
    kpis.compute(store, settings, now=NOW, periods=["2026-10", "2026-11"])
    desired = kpis.desired_values(store, settings, now=NOW)
    rows = {d.record_id for d in desired if d.object == "kpi_row"}
    dry = write_back(store, crm, settings.config, desired, dry_run=True)
    assert dry.fields == len(desired) and dry.records == 6 + len(rows) + 3
    # users in 1 call, the rows in full batches of 200, the 3 leads in 1.
    assert dry.calls == dry.min_calls == 1 + math.ceil(len(rows) / 200) + 1
    assert crm.calls.total == 0 and crm.count(ROWS) == 0
    assert "Tasuki_Own_KPI__c" not in (crm.get("User", "M1") or {})
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(LedgerEntry)) == 0
    real = write_back(store, crm, settings.config, desired)
    assert (real.fields, real.calls, real.rejected) == (dry.fields, dry.calls, [])
    assert (crm.get("User", "M1") or {})["Tasuki_Own_KPI__c"] == "2026-11 MQLs: 3 / 20"
    assert crm.count(ROWS) == len(rows)
    assert (crm.get("Lead", "L4") or {})["Tasuki_First_Touch_Hours__c"] == 6.0
    kpis.compute(store, settings, now=NOW, periods=["2026-10", "2026-11"])
    again = write_back(store, crm, settings.config, kpis.desired_values(store, settings, now=NOW))
    assert (again.fields, again.calls) == (0, 0)
    assert crm.calls["write"] == real.calls


def test_a_changed_figure_updates_its_row_in_place(
    store: Store, settings: Settings, org: Any
) -> None:
    crm = _crm(settings)
    kpis.compute(store, settings, now=NOW, periods=["2026-11"])
    write_back(
        store, crm, settings.config, kpis.desired_values(store, settings, ["2026-11"], now=NOW)
    )
    before = crm.count(ROWS)
    org.record("lead", "L7")
    org.handoff("MK→IS", "L7", "M1", "I1", "2026-11-24T01:00", verdict="passed")
    kpis.compute(store, settings, now=NOW, periods=["2026-11"])
    report = write_back(
        store, crm, settings.config, kpis.desired_values(store, settings, ["2026-11"], now=NOW)
    )
    changed = {(c.object, c.record_id, c.field): c.new for c in report.changes}
    m1 = kpis.row_key("2026-11", "mk_mqls", "person", "M1")
    assert changed[("kpi_row", m1, "value")] == 4
    assert crm.count(ROWS) == before  # upserted on the key: the same row, not a new one
    held = [
        crm.get(ROWS, r.id)
        for r in crm.changes(ROWS, None, ["Tasuki_Key__c", "Value__c"]).records
        if r.fields["Tasuki_Key__c"] == m1
    ]
    assert len(held) == 1 and (held[0] or {})["Value__c"] == 4


def test_rows_the_crm_refuses_are_kept_with_its_message_and_retried(
    store: Store, settings: Settings, org: Any
) -> None:
    # An org that created Tasuki_KPI__c but forgot the Attainment__c field.
    crm = LocalCrm(":memory:")
    rows_fields = [f for f in Mapper(settings.config).physical_fields("kpi_row")]
    crm.define(ROWS, [f for f in rows_fields if f != "Attainment__c"])
    crm.define("User", ["Name", "Tasuki_Own_KPI__c", "Tasuki_Neighbour_KPI__c"])
    crm.define("User", ["Tasuki_Attainment__c"])
    for uid in ("M1", "M2", "I1", "I2", "F1", "C1"):
        crm.upsert("User", uid, {"Name": uid}, at=NOW)
    kpis.compute(store, settings, now=NOW, periods=["2026-11"])
    desired = [
        d
        for d in kpis.desired_values(store, settings, ["2026-11"], now=NOW)
        if d.object in ("user", "kpi_row")
    ]
    rows = {d.record_id for d in desired if d.object == "kpi_row"}
    report = write_back(store, crm, settings.config, desired)
    # Every row carries an attainment: all are refused, each with the CRM's message; the users'
    # fields, in another object, are written all the same.
    refused = {r.record_id for r in report.rejected}
    assert refused == rows
    assert all(r.error_code == "INVALID_FIELD" for r in report.rejected)
    assert "No such column 'Attainment__c' on entity 'Tasuki_KPI__c'" in report.rejected[0].message
    assert crm.count(ROWS) == len(rows - refused)
    assert (crm.get("User", "M1") or {})["Tasuki_Own_KPI__c"] == "2026-11 MQLs: 3 / 20"
    with store.session() as s:
        kept = s.scalar(select(func.count()).select_from(WriteRejection))
    assert kept == len(refused)
    # The admin adds the field: the next push writes exactly the refused rows.
    crm.define(ROWS, ["Attainment__c"])
    retry = write_back(store, crm, settings.config, desired)
    assert retry.records == len(refused) and retry.rejected == []
    assert crm.count(ROWS) == len(rows)


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
    define_schema(crm, load_settings().config)
    with store.session() as s:
        for p in s.scalars(select(Person)):
            crm.upsert("User", p.user_id, {"Name": p.name}, at=NOW)
    for lead in ("L1", "L2", "L3", "L4", "L6"):
        crm.upsert("Lead", lead, {"Status": "Working"}, at=NOW)
    return store


def cli_env_crm(store: Store) -> Path:
    """The embedded CRM's file next to the CLI environment's store."""
    url = store.engine.url.database
    assert url
    return Path(url).parent / "crm.db"


def _summary(output: str) -> tuple[int, int, int]:
    m = re.search(r"change[d]? (\d+) field\(s\) on (\d+) record\(s\) in (\d+) API call", output)
    assert m, output
    return int(m[1]), int(m[2]), int(m[3])


def test_cli_push_dry_run_then_push_then_nothing_left(cli_env: Store) -> None:
    runner = CliRunner()
    dry = runner.invoke(main, ["kpi", "push", "--dry-run", "--period", "2026-11"])
    assert dry.exit_code == 0, dry.output
    assert "Would change" in dry.output and "2026-11: would change" in dry.output
    m1 = "2026-11|mk_mqls|person:M1"
    assert re.search(rf"kpi_row +│ {re.escape(m1)} +│ value +│ – +│ 3.0 ", dry.output)
    assert re.search(r"lead +│ L4 +│ tasuki_first_touch_hours +│ – +│ 6.0 ", dry.output)
    fields, records, calls = _summary(dry.output)
    assert fields > 0 and calls >= 2
    with cli_env.session() as s:
        assert s.scalar(select(func.count()).select_from(LedgerEntry)) == 0
    assert LocalCrm(cli_env_crm(cli_env)).count(ROWS) == 0
    done = runner.invoke(main, ["kpi", "push", "--period", "2026-11"])
    assert done.exit_code == 0, done.output
    assert "Changed" in done.output and _summary(done.output) == (fields, records, calls)
    assert "rejected" not in done.output
    dry = runner.invoke(main, ["kpi", "push", "--dry-run", "--period", "2026-11"])
    assert _summary(dry.output) == (0, 0, 0)
    with cli_env.session() as s:
        ledger = s.scalar(select(func.count()).select_from(LedgerEntry))
    again = runner.invoke(main, ["kpi", "push", "--period", "2026-11"])
    assert _summary(again.output) == (0, 0, 0)
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


def _name(store: Store, uid: str, name: str, email: str = "") -> None:
    with store.session() as s:
        p = s.scalars(select(Person).where(Person.user_id == uid)).one()
        p.name, p.email = name, email


def test_cli_people_by_name_email_or_id_and_an_unknown_one_is_an_error(cli_env: Store) -> None:
    _name(cli_env, "M1", "Emma Clarke", "emma@example.com")
    _name(cli_env, "M2", "Ken Ito")
    _name(cli_env, "I1", "Ken Ito")
    runner = CliRunner()
    args = ["kpi", "explain", "mk_mqls", "--period", "2026-11", "--person"]
    for who in ("M1", "Emma Clarke", "EMMA@example.com"):
        out = runner.invoke(main, [*args, who])
        assert out.exit_code == 0, out.output
        assert "Emma Clarke [M1]: 3.00" in out.output and "3 event(s)" in out.output
    unknown = runner.invoke(main, [*args, "Nobody Here"])
    assert unknown.exit_code == 2 and "no person 'Nobody Here'" in unknown.output
    assert "None" not in unknown.output
    ambiguous = runner.invoke(main, [*args, "ken ito"])
    assert ambiguous.exit_code == 2
    assert "Ken Ito [I1]" in ambiguous.output and "Ken Ito [M2]" in ambiguous.output


def test_cli_times_are_in_the_company_zone_and_listings_have_csv_and_json(cli_env: Store) -> None:
    import csv
    import io
    import json

    runner = CliRunner()
    table = runner.invoke(main, ["kpi", "explain", "mk_mqls", "--period", "2026-11"])
    assert table.exit_code == 0, table.output
    # L6 was handed over at 2026-10-31T15:00Z: midnight on 1 November in Tokyo.
    assert "2026-11-01 00:00 JST" in table.output
    out = runner.invoke(
        main, ["kpi", "explain", "mk_mqls", "--period", "2026-11", "--format", "json"]
    )
    rows = json.loads(out.output)
    assert {r["record"] for r in rows} == {"L1", "L2", "L4", "L6"}
    assert all(r["when"].endswith(" JST") for r in rows)
    shown = runner.invoke(main, ["kpi", "show", "--period", "2026-11", "--format", "csv"])
    assert shown.exit_code == 0, shown.output
    parsed = list(csv.DictReader(io.StringIO(shown.output)))
    m1 = next(r for r in parsed if r["person_id"] == "M1")
    assert (m1["period"], m1["mk_mqls"], m1["mk_mqls_target"]) == ("2026-11", "3.0", "20.0")
    table = runner.invoke(main, ["kpi", "show", "--period", "2026-11"])
    assert "JST" in table.output and "warned counts as passed" in table.output


def test_cli_periods_as_declared_and_the_running_one_labelled(cli_env: Store) -> None:
    from tasuki.kpis.periods import previous
    from tasuki.settings import load_settings

    runner = CliRunner()
    quarter = runner.invoke(main, ["kpi", "explain", "mk_mqls", "--period", "FY2026-Q3"])
    assert quarter.exit_code == 0, quarter.output
    # The whole quarter: October's L3 as well as November's handoffs, not October alone.
    assert "FY2026-Q3, the whole org: 5.00" in quarter.output
    same = runner.invoke(main, ["kpi", "explain", "mk_mqls", "--period", "2026-q4"])
    assert same.exit_code == 0 and "FY2026-Q3, the whole org: 5.00" in same.output
    settings = load_settings()
    current = kpis.current_period(settings)
    closed = previous(current, "month", 4, kpis.company_tz(settings))
    default = runner.invoke(main, ["kpi", "explain", "mk_mqls"])
    assert f"mk_mqls (MQLs), {closed}, the whole org" in default.output
    running = runner.invoke(main, ["kpi", "explain", "mk_mqls", "--mtd"])
    assert f"{current}, month to date" in running.output
    assert (
        f"{current}, month to date"
        in runner.invoke(main, ["kpi", "show", "--period", "current"]).output
    )


def test_cli_push_since_shows_its_cost_first_and_restate_shows_a_diff(cli_env: Store) -> None:
    runner = CliRunner()
    dry = runner.invoke(main, ["kpi", "push", "--since", "2026-10", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    first = dry.output.splitlines()[0]
    assert re.match(
        r"\d+ period\(s\) 2026-10…\d{4}-\d{2}: \d+ row\(s\)/record\(s\); \d+ field", first
    )
    assert "write call(s)" in first
    assert LocalCrm(cli_env_crm(cli_env)).count(ROWS) == 0
    done = runner.invoke(main, ["kpi", "push", "--since", "2026-10"])
    assert done.exit_code == 0, done.output
    pushed = LocalCrm(cli_env_crm(cli_env)).count(ROWS)
    assert pushed > 0
    same = runner.invoke(main, ["kpi", "push", "--restate", "2026-10"])
    assert same.exit_code == 0 and "restating changes nothing" in same.output
