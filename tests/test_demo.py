from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tasuki.cli import main


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("TASUKI_DATA_DIR", str(tmp_path / "data"))
    for name in ("TASUKI_CONFIG", "TASUKI_DATABASE_URL", "TASUKI_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    return CliRunner()


def test_demo_runs_the_pipeline_and_a_second_run_writes_nothing(
    runner: CliRunner, tmp_path: Path
) -> None:
    args = ["demo", "--leads", "80", "--seed", "5", "--until", "2026-11-20"]
    first = runner.invoke(main, args, catch_exceptions=False)
    assert first.exit_code == 0, first.output
    for heading in ("Handoffs by boundary", "Own and neighbour KPIs", "Written back to the CRM"):
        assert heading in first.output
    for boundary in ("MK→IS", "IS→FS", "FS→CS"):
        assert boundary in first.output
    assert "Nothing changed" not in first.output
    # KPI rows land in the CRM's Tasuki_KPI__c, record-level figures on the leads, teams in
    # the store from the users' Division.
    assert "Tasuki_KPI__c: records / fields" in first.output
    assert "Lead: records / fields" in first.output
    from connectors.local import LocalCrm
    from tasuki.settings import load_settings
    from tasuki.store.db import open_store
    from tasuki.store.models import Person

    crm = LocalCrm(tmp_path / "data" / "crm.db")
    rows = crm.changes("Tasuki_KPI__c", None, ["Tasuki_Key__c", "Subject_Kind__c"]).records
    assert rows and {r.fields["Subject_Kind__c"] for r in rows} == {
        "person",
        "team",
        "department",
        "org",
    }
    assert len({r.fields["Tasuki_Key__c"] for r in rows}) == len(rows)
    leads = crm.changes("Lead", None, ["Tasuki_First_Touch_Hours__c"]).records
    hours = [r.fields["Tasuki_First_Touch_Hours__c"] for r in leads]
    assert any(h is not None and h >= 0 for h in hours)
    store = open_store(load_settings().database_url)
    with store.session() as s:
        teams = {p.team for p in s.query(Person).all()}
    assert {"IS East", "IS West", "FS East", "FS West"} <= teams
    report = tmp_path / "data" / "report.html"
    html = report.read_text(encoding="utf-8")
    assert "<svg" in html and "IS→FS" in html
    # The console's overview, boundaries and people sections (funnel, verdicts, trend and
    # attainment charts), self-contained: no script, no link back to a server.
    assert html.count("<svg") == 4 and 'id="people"' in html and "<script" not in html
    # The next handoff meeting: Monday 11-23 is Labor Thanksgiving Day, so Tuesday's.
    assert "Next: Handoff meeting IS→FS, Tue 2026-11-24 10:00–10:30 JST" in first.output
    agenda = (tmp_path / "data" / "agenda.md").read_text(encoding="utf-8")
    assert agenda.startswith("# Handoff meeting IS→FS, Tue 2026-11-24 10:00–10:30 JST")

    second = runner.invoke(main, args, catch_exceptions=False)
    assert second.exit_code == 0, second.output
    assert "same org replayed" in second.output
    assert "Nothing changed: 0 fields changed, 0 write calls." in second.output


def test_another_seed_gives_other_data_and_the_same_seed_the_same(runner: CliRunner) -> None:
    from tasuki.demo.org import OrgSpec, _Generator

    a = _Generator(OrgSpec(seed=1, leads=50)).run()
    b = _Generator(OrgSpec(seed=1, leads=50)).run()
    c = _Generator(OrgSpec(seed=2, leads=50)).run()
    assert [(e.at, e.record_id, e.values) for e in a] == [(e.at, e.record_id, e.values) for e in b]
    assert [(e.at, e.record_id) for e in a] != [(e.at, e.record_id) for e in c]
