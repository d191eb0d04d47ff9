"""Migrations on start: processes starting together on a fresh store take turns, and a store
that cannot be migrated is refused with a clear error that keeps the database's own."""

from __future__ import annotations

import json
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

# Each racer imports everything once, says "ready", then runs one round per line it reads (the
# round's store URL and data folder) and answers with its exit code, stdout and stderr. The test
# writes a round's line to every racer at once, so they reach the fresh store together; the
# racers outlive the rounds (starting a Python process that imports tasuki costs far more than a
# round), which they can because no module keeps state from one call to the next.
RACER = """
import contextlib, io, json, os, sys
{setup}
print("ready", flush=True)
for line in sys.stdin:
    url, data_dir = json.loads(line)
    os.environ.update(TASUKI_DATABASE_URL=url, TASUKI_DATA_DIR=data_dir)
    out, err, code = io.StringIO(), io.StringIO(), 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            run(url)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    print(json.dumps([code, out.getvalue(), err.getvalue()]), flush=True)
"""
UPGRADE = RACER.format(
    setup="""
from tasuki.cli import main
def run(url):
    main(["db", "upgrade"], standalone_mode=False)
"""
)
CONNECT = RACER.format(
    setup="""
from tasuki.store.db import make_engine
def run(url):
    engine = make_engine(url)
    with engine.connect() as conn:
        print(conn.exec_driver_sql("PRAGMA journal_mode").scalar())
    engine.dispose()
"""
)


class Racers:
    """``n`` processes running ``code``, released together once per round."""

    def __init__(self, stack: ExitStack, code: str, n: int) -> None:
        env = dict(os.environ)
        env.pop("TASUKI_CONFIG", None)
        self.procs = [
            stack.enter_context(
                subprocess.Popen(
                    [sys.executable, "-c", code],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=env,
                )
            )
            for _ in range(n)
        ]
        for p in self.procs:
            assert p.stdout is not None and p.stdout.readline() == "ready\n"

    def round(self, url: str, data_dir: Path) -> list[tuple[int, str, str]]:
        """Release every racer on ``url``: (exit code, stdout, stderr) of each."""
        line = json.dumps([url, str(data_dir)]) + "\n"
        for p in self.procs:
            assert p.stdin is not None
            p.stdin.write(line)
        for p in self.procs:
            assert p.stdin is not None
            p.stdin.flush()
        results = []
        for p in self.procs:
            assert p.stdout is not None
            code, out, err = json.loads(p.stdout.readline())
            results.append((code, out, err))
        return results

    def finish(self) -> list[tuple[int, str]]:
        """Let every racer end: (exit code, what it wrote to stderr outside the rounds) of each."""
        ended = []
        for p in self.procs:
            assert p.stdin is not None and p.stderr is not None
            p.stdin.close()
            ended.append((p.wait(timeout=120), p.stderr.read()))
        return ended


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
def test_processes_starting_together_take_turns_migrating_a_fresh_store(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    with ExitStack() as stack:
        racers = Racers(stack, UPGRADE, PROCESSES)
        for round_ in range(ROUNDS):
            if backend == "sqlite":
                url = f"sqlite:///{tmp_path / str(round_) / 'not-yet' / 'tasuki.db'}"
            else:
                url = request.getfixturevalue("fresh_postgres")()
            results = racers.round(url, tmp_path / str(round_))
            assert [(code, err) for code, _, err in results] == [(0, "")] * PROCESSES, results
            where = make_url(url).render_as_string(hide_password=True)
            said = sorted(out for _, out, _ in results)  # "applied …" before "store at …"
            assert said == [f"applied {APPLIED}; store at {where} is at head {HEAD_NAME}\n"] + [
                f"store at {where} already at head {HEAD_NAME}\n"
            ] * (PROCESSES - 1)
            assert _version_rows(url) == [HEAD]
        assert racers.finish() == [(0, "")] * PROCESSES


def test_processes_opening_a_new_sqlite_file_together_all_get_wal(tmp_path: Path) -> None:
    with ExitStack() as stack:
        racers = Racers(stack, CONNECT, 2 * PROCESSES)
        for round_ in range(3):
            url = f"sqlite:///{tmp_path / str(round_) / 'tasuki.db'}"
            results = racers.round(url, tmp_path)
            assert results == [(0, "wal\n", "")] * 2 * PROCESSES
            assert not list((tmp_path / str(round_)).glob("*.new"))  # each loser's file is gone
        assert racers.finish() == [(0, "")] * 2 * PROCESSES


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
