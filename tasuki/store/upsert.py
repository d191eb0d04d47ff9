"""Insert-or-ignore and insert-or-update on SQLite and PostgreSQL alike (both do ON CONFLICT)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import literal_column
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Session


def dialect_insert(session: Session, model: type[DeclarativeBase]) -> Any:
    """An ``INSERT`` into ``model`` in the session's dialect (both offer ``ON CONFLICT``)."""
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(model)


def insert_ignore(
    session: Session,
    model: type[DeclarativeBase],
    rows: Sequence[dict[str, Any]],
    conflict: Sequence[str],
) -> int:
    """Insert ``rows``, skipping those that collide on ``conflict``; returns rows inserted."""
    if not rows:
        return 0
    stmt = (
        dialect_insert(session, model)
        .on_conflict_do_nothing(index_elements=conflict)
        .returning(literal_column("1"))
    )
    # One compiled statement, run as executemany (SQLAlchemy batches it into multi-row
    # INSERTs); RETURNING counts what went in on both dialects, where rowcount does not.
    return len(session.connection().execute(stmt, list(rows)).all())


def upsert(
    session: Session,
    model: type[DeclarativeBase],
    rows: Sequence[dict[str, Any]],
    conflict: Sequence[str],
    update: Sequence[str],
) -> None:
    """Insert ``rows``; on a collision on ``conflict``, overwrite the ``update`` columns."""
    if not rows:
        return
    stmt = dialect_insert(session, model)
    stmt = stmt.on_conflict_do_update(
        index_elements=conflict, set_={c: getattr(stmt.excluded, c) for c in update}
    )
    session.connection().execute(stmt, list(rows))


def mark_again(
    session: Session,
    model: type[DeclarativeBase],
    rows: Sequence[dict[str, Any]],
    key: Sequence[str],
) -> int:
    """Insert versioned marks (``rows`` with ``version`` 1 and ``marked_at``); a mark already
    there under ``key`` is marked again: its version grows and its ``marked_at`` moves, so a
    pass that read the old version leaves the new one. Returns the rows written."""
    if not rows:
        return 0
    stmt = dialect_insert(session, model)
    stmt = stmt.on_conflict_do_update(
        index_elements=key,
        set_={"version": stmt.table.c.version + 1, "marked_at": stmt.excluded.marked_at},
    )
    session.connection().execute(stmt, list(rows))
    return len(rows)
