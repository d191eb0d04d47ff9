from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from tasuki.store.db import Store, open_store
from tasuki.store.models import Delivery, Transition


def test_migrations_create_every_table_and_rerun_is_harmless(store: Store) -> None:
    open_store(store.engine.url.render_as_string(hide_password=False)).engine.dispose()
    with store.session() as s:
        s.add(Delivery(provider="local", delivery_id="d1"))
    with store.session() as s:
        assert [d.delivery_id for d in s.scalars(select(Delivery))] == ["d1"]


def test_datetimes_come_back_aware_utc(store: Store) -> None:
    at = datetime(2026, 4, 1, 9, 30, tzinfo=UTC)
    with store.session() as s:
        s.add(
            Transition(
                system="local",
                object="lead",
                record_id="L1",
                field="owner",
                old="U1",
                new="U2",
                at=at,
                source_id="h1",
            )
        )
    with store.session() as s:
        t = s.scalars(select(Transition)).one()
        assert t.at == at and t.at.tzinfo is not None


def test_duplicate_delivery_is_refused_by_the_schema(store: Store) -> None:
    with store.session() as s:
        s.add(Delivery(provider="local", delivery_id="same"))
    with pytest.raises(IntegrityError), store.session() as s:
        s.add(Delivery(provider="local", delivery_id="same"))
