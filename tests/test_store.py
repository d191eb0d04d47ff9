from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from tasuki import startup
from tasuki.settings import Settings
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


def test_old_delivery_ids_are_forgotten_after_every_providers_retry_window(
    store: Store, settings: Settings
) -> None:
    import worker
    from connectors.local import LocalCrm
    from tasuki import runtime
    from tasuki.store.models import utcnow

    with store.session() as s:
        s.add(
            Delivery(
                provider="hubspot", delivery_id="old", received_at=utcnow() - timedelta(days=8)
            )
        )
        s.add(
            Delivery(
                provider="hubspot", delivery_id="recent", received_at=utcnow() - timedelta(days=2)
            )
        )
    with runtime.activate(startup.assemble(settings, store, LocalCrm(":memory:"))):
        assert worker.prune_deliveries() == {"pruned": 1, "runs_pruned": 0}
    with store.session() as s:
        assert [d.delivery_id for d in s.scalars(select(Delivery))] == ["recent"]


def test_the_migrations_build_exactly_the_models(store: Store) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from tasuki.store.models import Base

    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_a_kpi_row_key_fits_the_ledger(store: Store) -> None:
    from tasuki.store.models import LedgerEntry

    key = "FY2026-Q3|" + "k" * 80 + "|team:" + "t" * 80
    with store.session() as s:
        s.add(LedgerEntry(system="salesforce", object="Tasuki_KPI__c", record_id=key, field="f"))
    with store.session() as s:
        assert s.query(LedgerEntry.record_id).scalar() == key
