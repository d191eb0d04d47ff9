"""Migrations on start: processes starting together on a fresh store take turns, and a store
that cannot be migrated is refused with a clear error that keeps the database's own."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from click.testing import CliRunner
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from tasuki.cli import main
from tasuki.errors import StoreUnavailable
from tasuki.store.db import alembic_config, make_engine, open_store

PROCESSES = 4
ROUNDS = 5

_SCRIPTS = ScriptDirectory.from_config(alembic_config("sqlite://"))
_HEAD = _SCRIPTS.get_revision("head")
assert _HEAD is not None
HEAD, HEAD_NAME = _HEAD.revision, Path(_HEAD.path).stem
APPLIED = ", ".join(Path(s.path).stem for s in reversed(list(_SCRIPTS.walk_revisions())))
"""Every migration, oldest first, as ``db upgrade`` names them on a fresh store."""

# Each process imports everything, says "ready" and blocks reading stdin; the test closes every
# stdin once all are ready, so they reach the store together.
UPGRADE = """
import sys
from tasuki.cli import main
print("ready", flush=True)
sys.stdin.read()
main(["db", "upgrade"])
"""
CONNECT = """
import sys
from tasuki.store.db import make_engine
print("ready", flush=True)
sys.stdin.read()
with make_engine(sys.argv[1]).connect() as conn:
    print(conn.exec_driver_sql("PRAGMA journal_mode").scalar())
"""


def _start_together(code: str, url: str, data_dir: Path, n: int) -> list[tuple[int, str, str]]:
    """Run ``code`` in ``n`` processes released at once: (exit code, stdout, stderr) of each."""
    env = {**os.environ, "TASUKI_DATABASE_URL": url, "TASUKI_DATA_DIR": str(data_dir)}
    env.pop("TASUKI_CONFIG", None)
    with ExitStack() as running:
        procs = [
            running.enter_context(
                subprocess.Popen(
                    [sys.executable, "-c", code, url],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=env,
                )
            )
            for _ in range(n)
        ]
        for p in procs:
            assert p.stdout is not None and p.stdout.readline() == "ready\n"
        for p in procs:
            assert p.stdin is not None
            p.stdin.close()
        results = []
        for p in procs:
            assert p.stdout is not None and p.stderr is not None
            out, err = p.stdout.read(), p.stderr.read()
            results.append((p.wait(timeout=120), out, err))
    return results


@pytest.fixture
def fresh_postgres(postgres_url: str) -> Iterator[Callable[[], str]]:
    """Makes empty PostgreSQL databases on the test server; they are dropped afterwards."""
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    names: list[str] = []

    def make() -> str:
        names.append(f"tasuki_race_{uuid.uuid4().hex[:10]}")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{names[-1]}"'))
        return make_url(postgres_url).set(database=names[-1]).render_as_string(hide_password=False)

    yield make
    with admin.connect() as conn:
        for name in names:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _version_rows(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.scalars(text("SELECT version_num FROM alembic_version")))
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
@pytest.mark.parametrize("round_", range(ROUNDS))
def test_processes_starting_together_take_turns_migrating_a_fresh_store(
    backend: str, round_: int, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'not-yet' / 'tasuki.db'}"
    else:
        url = request.getfixturevalue("fresh_postgres")()
    results = _start_together(UPGRADE, url, tmp_path, PROCESSES)
    assert [(code, err) for code, _, err in results] == [(0, "")] * PROCESSES, results
    where = make_url(url).render_as_string(hide_password=True)
    said = sorted(out for _, out, _ in results)  # "applied …" before "store at …"
    assert said == [f"applied {APPLIED}; store at {where} is at head {HEAD_NAME}\n"] + [
        f"store at {where} already at head {HEAD_NAME}\n"
    ] * (PROCESSES - 1)
    assert _version_rows(url) == [HEAD]


def test_processes_opening_a_new_sqlite_file_together_all_get_wal(tmp_path: Path) -> None:
    for round_ in range(3):
        url = f"sqlite:///{tmp_path / str(round_) / 'tasuki.db'}"
        results = _start_together(CONNECT, url, tmp_path, 2 * PROCESSES)
        assert results == [(0, "wal\n", "")] * 2 * PROCESSES
        assert not list((tmp_path / str(round_)).glob("*.new"))  # each loser's file is gone


def test_db_upgrade_says_what_it_applied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TASUKI_CONFIG", raising=False)
    monkeypatch.setenv("TASUKI_DATABASE_URL", f"sqlite:///{tmp_path / 'tasuki.db'}")
    first, second = (CliRunner().invoke(main, ["db", "upgrade"]) for _ in range(2))
    where = f"sqlite:///{tmp_path / 'tasuki.db'}"
    assert first.output == f"applied {APPLIED}; store at {where} is at head {HEAD_NAME}\n"
    assert second.output == f"store at {where} already at head {HEAD_NAME}\n"


def test_an_unreachable_store_is_refused_with_the_drivers_reason() -> None:
    with pytest.raises(StoreUnavailable) as refused:
        open_store("postgresql+psycopg://u:s3cr3t-pw@127.0.0.1:1/x")
    assert str(refused.value).startswith("store at postgresql+psycopg://u:***@127.0.0.1:1/x ")
    assert "Connection refused" in str(refused.value) and "s3cr3t" not in str(refused.value)
    assert isinstance(refused.value.__cause__, OperationalError)


def test_a_store_ahead_of_this_code_is_refused_clearly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tasuki.db'}"
    engine = make_engine(url)
    open_store(url).engine.dispose()
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(StoreUnavailable, match="could not be migrated: .*'9999'") as refused:
        open_store(url)
    assert isinstance(refused.value.__cause__, CommandError)
