"""``tasuki alarms``: names and explanations as a table, CSV and JSON; CRM text kept inert."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tasuki.cli import main
from tasuki.settings import Settings
from tasuki.store.db import Store
from tests.alarms.support import Org

HOSTILE = '=HYPERLINK("http://evil.example","[red]x[/red]")'


@pytest.fixture
def cli_org(sqlite_store: Store, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Org:
    """The alarm org (M1 raises it) in the SQLite store the command opens, M1 named hostilely."""
    monkeypatch.delenv("TASUKI_CONFIG", raising=False)
    monkeypatch.setenv("TASUKI_DATA_DIR", str(settings.data_dir))
    org = Org(sqlite_store, names={"M1": HOSTILE})
    org.mqls("M1", "2026-09", 10, 6)
    org.mqls("M1", "2026-10", 15, 4)
    return org


def _run(*args: str) -> str:
    result = CliRunner().invoke(main, ["alarms", *args], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_json_has_names_figures_and_explanation(cli_org: Org) -> None:
    found = json.loads(_run("--period", "2026-10", "--format", "json"))
    assert [(a["subject_kind"], a["subject"]) for a in found] == [
        ("department", "MK"),
        ("person", HOSTILE),
    ]
    m1 = found[1]
    assert m1["own"]["previous"] == 10 and m1["own"]["current"] == 15
    assert m1["own"]["relative_change"] == pytest.approx(0.5)
    assert m1["neighbour"]["absolute_change"] == pytest.approx(4 / 15 - 0.6)
    assert m1["neighbour"]["threshold"] == 0.1
    assert "MQLs: 10 → 15 (+5, +50%" in m1["explanation"]
    assert m1["raised_at"].endswith("+09:00")  # the company's timezone, Tokyo


def test_csv_guards_against_formulas(cli_org: Org) -> None:
    rows = list(csv.DictReader(io.StringIO(_run("--period", "2026-10", "--format", "csv"))))
    assert [r["subject"] for r in rows] == ["MK", "'" + HOSTILE]
    assert rows[1]["own_previous"] == "10.0" and rows[1]["own_current"] == "15.0"
    assert rows[1]["neighbour_kpi"] == "MQL→meeting rate (IS on MK's leads)"
    assert rows[1]["raised_at"].endswith("+09:00")


def test_table_shows_the_name_as_text(cli_org: Org) -> None:
    out = _run("--period", "2026-10", "--kind", "person")
    assert "2026-10 against 2026-09" in out
    assert HOSTILE in out  # rich's markup in a CRM name is shown, not interpreted
    assert "M1" not in out  # the name, not the CRM id
    assert "MK" in out and "10 → 15" in out


def test_stored_lists_without_recomputing(cli_org: Org) -> None:
    assert json.loads(_run("--period", "2026-10", "--format", "json", "--stored")) == []
    _run("--period", "2026-10", "--format", "json")
    stored = json.loads(_run("--period", "2026-10", "--format", "json", "--stored"))
    assert len(stored) == 2


def test_a_bad_period_is_a_clear_error(cli_org: Org, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["alarms", "--period", "October"])
    assert result.exit_code == 1
    assert "not a period: 'October'" in result.output


def test_pairs_not_judged_yet_are_named_on_stderr(cli_org: Org) -> None:
    result = CliRunner().invoke(main, ["alarms", "--period", "2099-01", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []
    assert (
        "not judged yet for 2099-01: MQLs up while the MQL→meeting rate falls "
        "(mk_mqls_vs_meetings); its cohort window runs out at 2099-03-03 00:00 (Asia/Tokyo)"
    ) in result.stderr
