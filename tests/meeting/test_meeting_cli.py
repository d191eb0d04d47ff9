"""``tasuki handoff agenda`` on the hand-built org (SQLite store in the data folder)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tasuki.cli import main
from tasuki.meeting import from_json
from tasuki.settings import Settings
from tasuki.store.db import Store
from tests.meeting.meeting_support import build_org


@pytest.fixture
def runner(settings: Settings, sqlite_store: Store, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    build_org(sqlite_store)
    monkeypatch.setenv("TASUKI_DATA_DIR", str(settings.data_dir))
    for name in ("TASUKI_CONFIG", "TASUKI_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    return CliRunner()


def test_the_text_agenda(runner: CliRunner) -> None:
    result = runner.invoke(main, ["handoff", "agenda", "--date", "2026-06-15"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.startswith("Handoff meeting IS→FS, Mon 2026-06-15 10:00–10:30 JST\n")
    assert "Handoffs from Fri 2026-06-12 10:00 JST to Mon 2026-06-15 10:00 JST" in out
    assert "2 new handoffs for 2 FS people · 1 still waiting for an FS answer · 1 of the" in out
    assert out.index("== 中村 由美 (1) ==") < out.index("== 山本 拓也 (1) ==")
    assert "1. 商談 3 — 株式会社サンプル003\n" in out
    assert "contact リード 3 · from 高橋 翔 · handed over Sat 2026-06-13 15:00 JST" in out
    assert (
        "recording: call (miitel) Fri 2026-06-12 16:00 JST https://acme.miitel.jp/app/calls/3"
        in out
    )
    assert "verdict: FAILED 75/100" in out
    assert "  - error is-fs.call-recording: 架電の録音（MiiTel）が添付されていません。" in out
    assert "FS answered Fri 2026-06-12 11:30 JST, 1h30m business time after the handoff" in out
    assert "== Still waiting for an FS answer from earlier days (1) ==" in out
    assert "FS answer OVERDUE since Thu 2026-06-11 14:00 JST" in out
    assert "== Last meeting's failures not yet fixed (1) ==" in out
    assert "1. 商談 1 — 株式会社サンプル001" in out


def test_markdown_and_json(runner: CliRunner) -> None:
    md = runner.invoke(main, ["handoff", "agenda", "--date", "2026-06-15", "--format", "markdown"])
    assert md.exit_code == 0, md.output
    assert md.output.startswith("# Handoff meeting IS→FS, Mon 2026-06-15 10:00–10:30 JST\n")
    assert "## 中村 由美 (1)" in md.output
    js = runner.invoke(main, ["handoff", "agenda", "--date", "2026-06-15", "--format", "json"])
    assert js.exit_code == 0, js.output
    agenda = from_json(js.output)
    assert [i.title for i in agenda.items] == ["商談 3", "商談 2"]
    assert json.loads(js.output)["window_start"] == "2026-06-12T10:00:00+09:00"


def test_no_meeting_on_a_holiday(runner: CliRunner) -> None:
    result = runner.invoke(main, ["handoff", "agenda", "--date", "2026-07-20"])
    assert result.exit_code == 2
    assert "2026-07-20 (Mon) is not a business day" in result.output
    assert "the next one is on 2026-07-21 (Tue)" in result.output


def test_the_next_meeting_by_default(runner: CliRunner) -> None:
    result = runner.invoke(main, ["handoff", "agenda"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Handoff meeting IS→FS, ")
    assert " JST\n" in result.output.splitlines(keepends=True)[0]
