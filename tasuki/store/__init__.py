"""The store: SQLAlchemy models, engine and migrations. SQLite by default, PostgreSQL by URL."""

from tasuki.store.db import Store, open_store

__all__ = ["Store", "open_store"]
