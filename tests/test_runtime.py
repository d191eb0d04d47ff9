"""The runtime jobs use lives in a ContextVar: set for a block, per context, never leaked."""

from __future__ import annotations

import contextvars
import threading

from click.testing import CliRunner

from connectors.local import LocalCrm
from tasuki import runtime
from tasuki.cli import main
from tasuki.settings import Settings
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
