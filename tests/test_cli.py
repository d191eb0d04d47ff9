"""Every process refuses to start on a broken rules file, naming file, line and column."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tasuki.cli import main
from tasuki.settings import builtin_path

BROKEN_RULES = """\
rule_sets:
  - boundary: IS→FS
    rules:
      - id: notes
        check: {requird: deal.hearing_notes}
        severity: error
        message: ヒアリング内容がありません
"""


@pytest.fixture
def broken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str) -> Path:
    rules = tmp_path / "rules.yaml"
    rules.write_text(BROKEN_RULES, encoding="utf-8")
    config = tmp_path / "tasuki.yaml"
    text = builtin_path("tasuki.yaml").read_text(encoding="utf-8")
    config.write_text(
        text.replace("rules: [builtin:rules/default.yaml]", f"rules: [{rules}]"), encoding="utf-8"
    )
    monkeypatch.setenv("TASUKI_CONFIG", str(config))
    monkeypatch.setenv("TASUKI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TASUKI_REDIS_URL", redis_url)
    monkeypatch.setenv("TASUKI_WEBHOOK_SECRET", "s")
    return rules


@pytest.mark.parametrize(
    "command", [["check-config"], ["worker", "--burst"], ["serve"], ["scheduler"], ["demo"]]
)
def test_a_broken_rules_file_stops_every_process(broken: Path, command: list[str]) -> None:
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 2
    assert f"{broken}:5:" in result.output
    assert "refusing to start" in result.output


def test_a_good_config_checks_ok(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TASUKI_CONFIG", raising=False)
    monkeypatch.setenv("TASUKI_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TASUKI_WEBHOOK_SECRET", "s")
    result = CliRunner().invoke(main, ["check-config"])
    assert result.exit_code == 0, result.output
    assert "ok:" in result.output
