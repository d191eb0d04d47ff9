"""``tasuki users`` and ``tasuki report`` as a user runs them."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tasuki.cli import main
from tasuki.console.accounts import check_password, list_users
from tasuki.settings import load_settings
from tasuki.store.db import open_store
from tests.console.org import SCRIPT_NAME, seed


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"TASUKI_DATA_DIR": str(tmp_path / "data")}


def test_users_add_list_password_remove(env: dict[str, str]) -> None:
    runner = CliRunner(env=env)
    added = runner.invoke(
        main,
        ["users", "add", "alice", "--role", "ops", "--password-stdin"],
        input="long enough pw\n",
    )
    assert added.exit_code == 0, added.output
    assert "Added alice (ops)" in added.output
    sso = runner.invoke(main, ["users", "add", "bob@example.com", "--oidc"])
    assert sso.exit_code == 0 and "OpenID Connect as bob@example.com" in sso.output
    short = runner.invoke(main, ["users", "add", "carol", "--password-stdin"], input="short\n")
    assert short.exit_code == 1 and "at least 10 characters" in short.output
    listed = runner.invoke(main, ["users", "list"])
    assert (
        "alice\tops\tpassword" in listed.output and "bob@example.com\tviewer\toidc" in listed.output
    )
    store = open_store(load_settings(env).database_url)
    assert check_password(store, "alice", "long enough pw") is not None
    changed = runner.invoke(
        main, ["users", "password", "alice", "--password-stdin"], input="another long pw\n"
    )
    assert changed.exit_code == 0
    assert check_password(store, "alice", "long enough pw") is None
    assert runner.invoke(main, ["users", "remove", "alice"]).exit_code == 0
    assert [u.disabled for u in list_users(store) if u.username == "alice"] == [True]
    link = runner.invoke(main, ["users", "link", "bob@example.com"])
    assert link.output.startswith("http://127.0.0.1:8080/console/login/link/")
    store.engine.dispose()


def test_report_writes_one_self_contained_file(env: dict[str, str], tmp_path: Path) -> None:
    store = open_store(load_settings(env).database_url)
    seed(store)
    store.engine.dispose()
    out = tmp_path / "october.html"
    result = CliRunner(env=env).invoke(
        main, ["report", "--period", "2026-10", "-o", str(out), "--lang", "ja"]
    )
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert "ファネル" in html and "Aiko Mori" in html
    assert SCRIPT_NAME not in html
    bad = CliRunner(env=env).invoke(main, ["report", "--period", "2026-13", "-o", str(out)])
    assert bad.exit_code != 0 and "2026-13" in bad.output
