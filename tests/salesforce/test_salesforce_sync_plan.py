"""``tasuki sync --dry-run`` against the Salesforce emulator: the estimate costs a count or two
and no write, and its read calls match what the real sync then makes (±1 page)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from connectors.salesforce import SalesforceConnector
from tasuki import backfill, runtime, startup
from tasuki.mapping import Mapper
from tasuki.settings import Config, Settings
from tasuki.store.db import Store
from tests.salesforce.sf_emulator import Org

AT = datetime(2026, 6, 1, 1, 0, tzinfo=UTC)


def define_mapped(org: Org, config: Config) -> None:
    """Every object and field the mapping names, so a sync's queries are all valid."""
    mapper = Mapper(config)
    for logical in mapper.objects:
        physical = mapper.physical_object(logical)
        known = org.schema.get(physical, {})
        org.define(
            physical, {f: "string" for f in mapper.physical_fields(logical) if f not in known}
        )


def test_the_estimate_matches_the_reads_of_the_sync_and_writes_nothing(
    settings: Settings,
    sqlite_store: Store,
    sf_config: Config,
    org: Org,
    connector: SalesforceConnector,
) -> None:
    define_mapped(org, sf_config)
    ids = [
        org.upsert(
            "Opportunity",
            None,
            {"Name": f"D{i}", "StageName": "Meeting Booked"},
            at=AT + timedelta(seconds=i),
        )
        for i in range(4_500)
    ]
    for n, rid in enumerate(ids[::3]):  # a third moved on: field history to read
        org.upsert(
            "Opportunity", rid, {"StageName": "Qualified"}, at=AT + timedelta(days=1, seconds=n)
        )
    rt = startup.assemble(replace(settings, config=sf_config), sqlite_store, connector)
    with runtime.activate(rt):
        before = dict(org.calls), org.api_used
        plan = backfill.plan(rt, backfill.synced_objects(rt))
        assert org.api_used - before[1] == plan.spent == 4  # a count per object, one of history
        assert {
            k: v - before[0].get(k, 0) for k, v in org.calls.items() if v != before[0].get(k, 0)
        }.keys() <= {"login", "query"}
        deal = next(o for o in plan.objects if o.logical == "deal")
        assert deal.estimate.records == 4_500 and deal.estimate.change_calls == 3
        assert deal.estimate.minimum == 3  # pages of 2,000
        assert plan.usage is not None and plan.quota_share is not None
        assert plan.write_calls == 0  # a first back-fill: everything is history

        used = org.api_used
        outcome = backfill.run(rt, plan)
        made = org.api_used - used
    assert outcome.records == 4_500
    assert abs(made - plan.read_calls) <= 1, (made, plan.read_calls)
    assert abs(outcome.read_calls - plan.read_calls) <= 1
    assert "update" not in org.calls and not org.jobs  # no write at all
