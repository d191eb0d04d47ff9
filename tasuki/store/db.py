"""Opening the store and bringing its schema up to date with Alembic.

Every process migrates its store on start, and several may start at once on a fresh one. The
migration therefore runs in one transaction holding the database's own lock (a PostgreSQL
advisory lock, SQLite's write lock): the first process applies what is pending, the others wait
for it and then find the schema at head.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import URL, Connection, Engine, NullPool, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from tasuki.errors import StoreUnavailable

MIGRATIONS = Path(__file__).parent / "migrations"

BUSY_TIMEOUT_MS = 10_000
"""How long a SQLite statement waits for another connection's lock before failing."""

MIGRATION_WAIT_SECONDS = 300
"""How long a starting process waits for another process's migration of the same store."""

SQLITE_MMAP_BYTES = 1 << 30
"""How much of a SQLite store is read through a memory map instead of a read call per page: a
KPI computation visits a million records' pages in key order, not file order, and SQLite's own
cache (2MB) turned each visit into a system call and a copy from the OS cache. Pages are shared
with the OS cache, so the map costs address space, not memory."""

MIGRATION_LOCK_KEY = 0x7461_7375_6B69
"""PostgreSQL advisory lock taken around migrations ("tasuki" in ASCII; scoped to a database)."""


def _sqlite_pragmas(dbapi_conn: sqlite3.Connection, busy_timeout_ms: int) -> None:
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    # WAL lets the webhook app read while a worker writes. A no-op on the files tasuki creates
    # (_create_in_wal_mode), which are in WAL mode from the start.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
    cur.close()


def _app_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
    _sqlite_pragmas(dbapi_conn, BUSY_TIMEOUT_MS)


def _migration_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
    # pysqlite opens a transaction only before INSERT/UPDATE/DELETE and runs DDL outside any;
    # with its own handling off, the "begin" event below decides how transactions start.
    dbapi_conn.isolation_level = None
    _sqlite_pragmas(dbapi_conn, MIGRATION_WAIT_SECONDS * 1000)


def _begin_immediate(conn: Connection) -> None:
    # The write lock at BEGIN, before Alembic reads the version: a second process waits here.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _create_in_wal_mode(path: Path) -> None:
    """Create the SQLite file at ``path`` already in WAL mode, unless it exists.

    Processes opening a new file at once would all switch it to WAL, and SQLite fails all but
    one of them at once (waiting could deadlock); asked again, a connection can keep failing.
    So each process makes a WAL file of its own and links it into place: one link wins, the
    others find the file there, in WAL mode already.
    """
    own = path.with_name(f"{path.name}.{uuid.uuid4().hex}.new")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            return
        conn = sqlite3.connect(own)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
        finally:
            conn.close()
        try:
            os.link(own, path)
        except OSError:
            pass  # another process's file won; or no hard links here: SQLite makes the file
    except (OSError, sqlite3.Error) as exc:
        raise StoreUnavailable(f"cannot create the store file {path}: {exc}") from exc
    finally:
        own.unlink(missing_ok=True)


def _is_sqlite_file(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")


def make_engine(url: str) -> Engine:
    """An engine for ``url``; a SQLite file (and its folder) is created in WAL mode if missing."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if _is_sqlite_file(parsed) and not str(parsed.database).startswith("file:"):
            _create_in_wal_mode(Path(str(parsed.database)))
        engine = create_engine(url)
        event.listen(engine, "connect", _app_connect)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    # rq's worker forks a work horse per job: the child must not reuse the parent's
    # connections (their sockets and server-side state belong to the parent).
    ref = weakref.ref(engine)
    os.register_at_fork(after_in_child=lambda: _dispose_in_child(ref))
    return engine


def _dispose_in_child(ref: weakref.ReferenceType[Engine]) -> None:
    engine = ref()
    if engine is not None:
        engine.dispose(close=False)


def alembic_config(url: str) -> AlembicConfig:
    """An Alembic config pointing at the shipped migrations and ``url``."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@dataclass
class Store:
    """A handle on the store: its engine and a session factory."""

    engine: Engine
    sessions: sessionmaker[Session]

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed on success, rolled back on error."""
        with self.sessions.begin() as s:
            yield s

    def identity(self) -> str:
        """This store's random id, written when it was created (migration 0015), or now when
        its row was emptied away since. Two rows (two processes writing one at once) resolve to
        the smaller, so every later reader agrees."""
        smallest = text("SELECT MIN(id) FROM store_identity")
        with self.engine.begin() as conn:
            found = conn.execute(smallest).scalar()
            if found is None:
                conn.execute(
                    text("INSERT INTO store_identity (id) VALUES (:id)"), {"id": uuid.uuid4().hex}
                )
                found = conn.execute(smallest).scalar()
        return str(found)

    def ping(self) -> bool:
        """True when the database answers."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except OperationalError:
            return False

    @property
    def is_sqlite(self) -> bool:
        """True on SQLite (some statements differ)."""
        return self.engine.dialect.name == "sqlite"


@dataclass(frozen=True)
class Upgrade:
    """What :func:`upgrade` did to a store."""

    applied: tuple[str, ...]
    """Migrations applied, oldest first, by file name (``0001_core_tables``); empty if none."""
    head: str
    """The migration the store's schema is at now."""


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction holding the store's migration lock until the block ends."""
    if _is_sqlite_file(engine.url):
        # A connection of its own: the app's engine keeps pysqlite's transaction handling.
        migration = create_engine(engine.url, poolclass=NullPool)
        event.listen(migration, "connect", _migration_connect)
        event.listen(migration, "begin", _begin_immediate)
        try:
            with migration.begin() as conn:
                yield conn
        finally:
            migration.dispose()
        return
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(
                text("SELECT set_config('lock_timeout', :wait, true)"),
                {"wait": f"{MIGRATION_WAIT_SECONDS}s"},
            )
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        yield conn  # an in-memory SQLite store belongs to this process alone: nothing to lock


def _migrate(conn: Connection) -> Upgrade:
    cfg = alembic_config(conn.engine.url.render_as_string(hide_password=False))
    cfg.attributes["connection"] = conn
    before = MigrationContext.configure(conn).get_current_revision()
    command.upgrade(cfg, "head")
    after = MigrationContext.configure(conn).get_current_revision()
    scripts = ScriptDirectory.from_config(cfg)
    applied = [] if after == before else list(scripts.iterate_revisions(after, before or "base"))
    head = scripts.get_revision(after) if after is not None else None
    return Upgrade(
        applied=tuple(Path(s.path).stem for s in reversed(applied)),
        head=Path(head.path).stem if head is not None else "base",
    )


def upgrade(engine: Engine) -> Upgrade:
    """Apply every migration not yet applied; safe to call on each start, from many processes
    at once (they take turns). Raises :class:`StoreUnavailable`, the database's error as its
    cause, when the store cannot be reached or migrated."""
    where = engine.url.render_as_string(hide_password=True)
    try:
        with _migration_lock(engine) as conn:
            return _migrate(conn)
    except OperationalError as exc:
        raise StoreUnavailable(f"store at {where} unreachable: {exc.orig}") from exc
    except (SQLAlchemyError, CommandError) as exc:
        reason = exc.orig if isinstance(exc, DBAPIError) else exc
        raise StoreUnavailable(f"store at {where} could not be migrated: {reason}") from exc


def open_store(url: str, *, migrate: bool = True) -> Store:
    """Connect to the store at ``url`` and, unless told not to, migrate it to the latest schema."""
    engine = make_engine(url)
    if migrate:
        try:
            upgrade(engine)
        except StoreUnavailable:
            engine.dispose()
            raise
    return Store(engine, sessionmaker(engine, expire_on_commit=False))
