"""``tasuki init`` writes a starting config the admin keeps in git; file arguments take
``builtin:`` names of the shipped files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from tasuki.cli import main
from tasuki.configure import STARTER_FILES


@pytest.fixture(autouse=True)
def no_tasuki_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("TASUKI_"):
            monkeypatch.delenv(name)


def test_init_writes_files_check_config_accepts(tmp_path: Path) -> None:
    folder = tmp_path / "revops-config"
    result = CliRunner().invoke(main, ["init", str(folder)])
    assert result.exit_code == 0, result.output
    written = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert written == sorted(s.target for s in STARTER_FILES)
    config = (folder / "tasuki.yaml").read_text(encoding="utf-8")
    assert config.startswith("# tasuki.yaml, written by `tasuki init`")
    assert "builtin:" not in config and "rules: [rules/default.yaml]" in config
    assert "#" in (folder / "rules" / "default.yaml").read_text(encoding="utf-8")  # commented

    env = {
        "TASUKI_CONFIG": str(folder / "tasuki.yaml"),
        "TASUKI_DATA_DIR": str(tmp_path / "data"),
        "TASUKI_WEBHOOK_SECRET": "s",
    }
    checked = CliRunner().invoke(main, ["check-config"], env=env)
    assert checked.exit_code == 0, checked.output
    for own in ("tasuki.yaml", "rules/default.yaml", "kpis/default.yaml", "recordings.yaml"):
        assert str(folder / own) in checked.output  # its own copies, not the shipped files
    tested = CliRunner().invoke(
        main, ["rules", "test", str(folder / "rules" / "default_tests.yaml")], env=env
    )
    assert tested.exit_code == 0, tested.output
    assert " 0 failed" in tested.output


def test_init_overwrites_nothing(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    mine = tmp_path / "rules" / "default.yaml"
    mine.write_text("rule_sets: []\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["init", str(tmp_path)])
    assert result.exit_code == 1
    assert f"not overwriting {mine}" in result.output
    assert mine.read_text(encoding="utf-8") == "rule_sets: []\n"
    assert not (tmp_path / "tasuki.yaml").exists()  # nothing written at all


@pytest.mark.parametrize(
    "command",
    [
        ["rules", "check", "builtin:rules/default"],
        ["rules", "check", "builtin:rules/default.yaml"],
        ["rules", "test", "builtin:rules/default_tests"],
    ],
)
def test_builtin_files_are_accepted_where_a_path_is(command: list[str]) -> None:
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 0, result.output


def test_an_unknown_builtin_file_lists_the_shipped_ones() -> None:
    result = CliRunner().invoke(main, ["rules", "check", "builtin:rules/nope"])
    assert result.exit_code == 2
    assert "builtin:rules/nope: no such shipped file" in result.output
    assert "rules/default" in result.output and "kpis/default" in result.output
