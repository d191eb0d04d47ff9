"""Insert-or-ignore and insert-or-update on SQLite and PostgreSQL alike (both do ON CONFLICT)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import literal_column
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Session

ROWS_PER_STATEMENT = 500
"""Rows per INSERT: keeps bound parameters under SQLite's limit for wide rows."""


def _insert(session: Session, model: type[DeclarativeBase]) -> Any:
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
    inserted = 0
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = rows[start : start + ROWS_PER_STATEMENT]
        stmt = (
            _insert(session, model)
            .values(chunk)
            .on_conflict_do_nothing(index_elements=conflict)
            .returning(literal_column("1"))
        )
        # RETURNING counts what went in on both dialects; rowcount does not (psycopg batches).
        inserted += len(session.execute(stmt).all())
    return inserted


def upsert(
    session: Session,
    model: type[DeclarativeBase],
    rows: Sequence[dict[str, Any]],
    conflict: Sequence[str],
    update: Sequence[str],
) -> None:
    """Insert ``rows``; on a collision on ``conflict``, overwrite the ``update`` columns."""
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = rows[start : start + ROWS_PER_STATEMENT]
        stmt = _insert(session, model).values(chunk)
        stmt = stmt.on_conflict_do_update(
            index_elements=conflict, set_={c: getattr(stmt.excluded, c) for c in update}
        )
        session.execute(stmt)
