"""The runtime jobs use lives in a ContextVar: set for a block, per context, never leaked."""

from __future__ import annotations

import contextvars
import os
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from connectors.local import LocalCrm
from tasuki import kpis, runtime, startup
from tasuki.cli import main
from tasuki.errors import ConfigError
from tasuki.settings import Settings, builtin_path, load_settings
from tasuki.store.db import Store


def _unset() -> bool:
    return runtime._current.get(None) is None


def test_activate_nests_and_restores(settings: Settings, sqlite_store: Store) -> None:
    outer = runtime.Runtime(settings, sqlite_store, LocalCrm(":memory:"))
    inner = runtime.Runtime(settings, sqlite_store, LocalCrm(":memory:"))
    assert _unset()
    with runtime.activate(outer):
        assert runtime.current() is outer
        with runtime.activate(inner):
            assert runtime.current() is inner
        assert runtime.current() is outer
    assert _unset()


def test_a_thread_sees_the_runtime_only_when_given_the_context(
    settings: Settings, sqlite_store: Store
) -> None:
    rt = runtime.Runtime(settings, sqlite_store, LocalCrm(":memory:"))
    seen: dict[str, object] = {}
    with runtime.activate(rt):
        bare = threading.Thread(target=lambda: seen.update(bare=runtime._current.get(None)))
        context = contextvars.copy_context()
        given = threading.Thread(
            target=context.run, args=(lambda: seen.update(given=runtime.current()),)
        )
        for t in (bare, given):
            t.start()
            t.join()
    assert seen == {"bare": None, "given": rt}


def test_a_command_builds_its_own_runtime_and_keeps_it_to_itself(settings: Settings) -> None:
    runner = CliRunner(env={"TASUKI_DATA_DIR": str(settings.data_dir), "TASUKI_CONFIG": None})
    result = runner.invoke(main, ["rules", "explain", "--boundary", "IS→FS", "--record", "x"])
    assert result.exit_code == 1 and "no handoff of record x" in result.output
    assert _unset()  # the command's runtime ended with it


def _own_files(folder: Path) -> dict[str, str | None]:
    """A tasuki.yaml naming copies of the default rules and KPI files; its environment."""
    rules, kpis = folder / "rules.yaml", folder / "kpis.yaml"
    rules.write_text(builtin_path("rules/default.yaml").read_text(encoding="utf-8"), "utf-8")
    kpis.write_text(builtin_path("kpis/default.yaml").read_text(encoding="utf-8"), "utf-8")
    text = builtin_path("tasuki.yaml").read_text(encoding="utf-8")
    text = text.replace("builtin:rules/default.yaml", str(rules))
    text = text.replace("builtin:kpis/default.yaml", str(kpis))
    (folder / "tasuki.yaml").write_text(text, "utf-8")
    return {"TASUKI_CONFIG": str(folder / "tasuki.yaml"), "TASUKI_DATA_DIR": str(folder / "data")}


def test_refresh_reads_changed_rules_and_kpi_files_and_refuses_broken_ones(tmp_path: Path) -> None:
    env = _own_files(tmp_path)
    rt = startup.build(load_settings(env))  # type: ignore[arg-type]
    rt.validate()
    rules_print, kpi_print = rt.rules_fingerprint, rt.kpi_fingerprint
    assert not rt.refresh()  # nothing moved: a stat per file, nothing read

    rules = tmp_path / "rules.yaml"
    rules.touch()  # moved, same content: the same rule set
    os.utime(rules, ns=(1, 1))
    assert not rt.refresh() and rt.rules_fingerprint == rules_print

    kpis_file = tmp_path / "kpis.yaml"
    kpis_file.write_text(
        kpis_file.read_text("utf-8").replace("label: MQLs", "label: MQL数"), "utf-8"
    )
    assert rt.refresh() and rt.kpi_fingerprint != kpi_print
    assert kpis.book(rt.settings).kpis["mk_mqls"].label == "MQL数"

    rules.write_text(
        rules.read_text("utf-8").replace("check: required", "check: requird", 1), "utf-8"
    )
    with pytest.raises(ConfigError) as info:
        rt.refresh()
    assert f"{rules}:" in str(info.value) and "requird" in str(info.value)
    assert rt.rules_fingerprint == rules_print  # the old rules are not taken for the new ones
