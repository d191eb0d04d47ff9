"""Handoff detection and echo suppression through the real sync path on the embedded CRM."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

import worker
from connectors.local import LocalCrm
from tasuki import runtime, startup
from tasuki.crm import RecordWrite
from tasuki.demo.org import define_schema
from tasuki.queue import connect
from tasuki.settings import Settings
from tasuki.store.db import Store
from tasuki.store.models import Handoff

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # Monday 10:00 in Tokyo


def _h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


@pytest.fixture
def crm(settings: Settings) -> LocalCrm:
    c = LocalCrm(":memory:")
    define_schema(c, settings.config)
    people = {
        "MK1": "Marketing",
        "IS1": "Inside Sales",
        "IS2": "Inside Sales",
        "FS1": "Field Sales",
        "FS2": "Field Sales",
        "CS1": "Customer Success",
    }
    for uid, dept in people.items():
        c.upsert("User", uid, {"Name": uid, "Department": dept}, at=_h(-100))
    c.upsert("Lead", "L1", {"OwnerId": "MK1", "Status": "New", "Phone": "03"}, at=_h(0), by="MK1")
    c.upsert("Lead", "L1", {"OwnerId": "IS1", "Status": "MQL"}, at=_h(1), by="MK1")
    c.upsert("Lead", "L1", {"OwnerId": "IS2"}, at=_h(2), by="IS1")  # inside IS: no handoff
    c.upsert("Lead", "L2", {"OwnerId": "MK1", "Status": "New"}, at=_h(0), by="MK1")
    c.upsert("Lead", "L2", {"OwnerId": "FS1"}, at=_h(3), by="MK1")  # MK→FS: not a boundary
    c.upsert("Opportunity", "O1", {"OwnerId": "IS1", "StageName": "Meeting Booked"}, at=_h(5))
    c.upsert("Opportunity", "O1", {"OwnerId": "FS1"}, at=_h(6), by="IS1")
    c.upsert("Opportunity", "O1", {"OwnerId": "FS2"}, at=_h(7), by="FS1")
    c.upsert(
        "Opportunity", "O1", {"StageName": "Closed Won", "CS_Owner__c": "CS1"}, at=_h(50), by="FS2"
    )
    return c


def _rows(store: Store) -> list[tuple[str, str, str | None, str | None, datetime]]:
    with store.session() as s:
        return [
            (h.boundary, h.record_id, h.sender_id, h.receiver_id, h.handed_at)
            for h in s.scalars(select(Handoff).order_by(Handoff.handed_at))
        ]


def test_handoffs_are_detected_per_boundary_with_sender_and_receiver(
    settings: Settings, store: Store, crm: LocalCrm
) -> None:
    rt = startup.assemble(settings, store, crm, redis_connection=connect(settings))
    with runtime.activate(rt):
        # Records before users: tasuki learns the users it has not met before judging.
        worker.sync_records("Lead", ["L1", "L2"])
        worker.sync_records("Opportunity", ["O1"])
        expected = [
            ("MK→IS", "L1", "MK1", "IS1", _h(1)),
            ("IS→FS", "O1", "IS1", "FS1", _h(6)),
            ("FS→CS", "O1", "FS2", "CS1", _h(50)),
        ]
        assert _rows(store) == expected
        # The same notices again: nothing new.
        worker.sync_records("Lead", ["L1", "L2"])
        worker.sync_records("Opportunity", ["O1"])
        assert _rows(store) == expected


def test_our_own_writes_come_back_as_echoes(
    settings: Settings, store: Store, crm: LocalCrm
) -> None:
    rt = startup.assemble(settings, store, crm, redis_connection=connect(settings))
    with runtime.activate(rt):
        worker.sync_records("Opportunity", ["O1"])
        first = worker.write_back()
        assert first["records"] >= 1 and first["calls"] >= 1
        echo = worker.sync_records("Opportunity", ["O1"])
        assert echo["echoes"] == 1 and echo["verdicts_changed"] == 0
        assert worker.write_back()["calls"] == 0
        # A person overwrites tasuki's field: the ledger forgets it and tasuki puts it back.
        crm.write("Opportunity", [RecordWrite("O1", {"Tasuki_Score__c": 1})])
        worker.sync_records("Opportunity", ["O1"])
        again = worker.write_back()
        assert again["fields"] == 1 and again["calls"] == 1


def test_a_deleted_record_is_marked_and_reconcile_catches_missed_changes(
    settings: Settings, store: Store, crm: LocalCrm
) -> None:
    rt = startup.assemble(settings, store, crm, redis_connection=connect(settings))
    with runtime.activate(rt):
        first = worker.reconcile()
        assert first["handoffs"] == 3
        # A change whose webhook was lost: the next reconcile finds it from the cursor.
        crm.upsert("Lead", "L3", {"OwnerId": "MK1", "Status": "New"}, at=_h(60), by="MK1")
        crm.upsert("Lead", "L3", {"OwnerId": "IS1", "Status": "MQL"}, at=_h(61), by="MK1")
        crm.delete("Lead", "L2")
        second = worker.reconcile()
        assert (second["records"], second["deleted"], second["handoffs"]) == (2, 1, 1)
        assert worker.reconcile()["records"] == 0


class _SpentCrm(LocalCrm):
    """The embedded CRM reporting its daily API budget past tasuki's share."""

    def should_defer_writes(self) -> bool:
        return True


def test_past_the_quota_share_only_urgent_fields_are_written_and_the_rest_waits(
    settings: Settings, sqlite_store: Store
) -> None:
    from rq.registry import ScheduledJobRegistry

    from tasuki.queue import job_queue

    crm = _SpentCrm(":memory:")
    define_schema(crm, settings.config)
    for uid, dept in {"MK1": "Marketing", "IS1": "Inside Sales"}.items():
        crm.upsert("User", uid, {"Name": uid, "Department": dept}, at=_h(-100))
    crm.upsert("Lead", "L1", {"OwnerId": "MK1", "Status": "New"}, at=_h(0), by="MK1")
    crm.upsert("Lead", "L1", {"OwnerId": "IS1", "Status": "MQL"}, at=_h(1), by="MK1")
    connection = connect(settings)
    rt = startup.assemble(settings, sqlite_store, crm, redis_connection=connection)
    with runtime.activate(rt):
        worker.sync_records("Lead", ["L1"])
        worker.compute_kpis()
        before = crm.calls["write"]
        result = worker.write_back()
        assert result["deferred"] == 1
        lead = crm.get("Lead", "L1") or {}
        assert lead.get("Tasuki_Verdict__c", "").startswith("MK→IS")
        assert "Tasuki_Attainment__c" not in (crm.get("User", "MK1") or {})
        assert crm.calls["write"] - before == 1
        scheduled = ScheduledJobRegistry(queue=job_queue(settings, connection))  # type: ignore[no-untyped-call]
        assert scheduled.count == 1


def test_the_first_scheduled_reconcile_keeps_history_out_of_the_crm(
    settings: Settings, sqlite_store: Store, crm: LocalCrm
) -> None:
    rt = startup.assemble(settings, sqlite_store, crm, redis_connection=connect(settings))
    with runtime.activate(rt):
        assert worker.reconcile()["handoffs"] == 3  # the org's history, before tasuki came
        worker.write_back()
        assert not any(
            (crm.get(obj, rid) or {}).get("Tasuki_Verdict__c")
            for obj, rid in (("Lead", "L1"), ("Opportunity", "O1"))
        )
        # Handed over after tasuki came: written as usual.
        now = datetime.now(UTC)
        crm.upsert("Lead", "L4", {"OwnerId": "MK1", "Status": "New"}, at=now, by="MK1")
        crm.upsert("Lead", "L4", {"OwnerId": "IS1", "Status": "MQL"}, at=now, by="MK1")
        assert worker.reconcile()["handoffs"] == 1
        worker.write_back()
        assert (crm.get("Lead", "L4") or {}).get("Tasuki_Verdict__c", "").startswith("MK→IS ")
        assert not (crm.get("Lead", "L1") or {}).get("Tasuki_Verdict__c")
        worker.write_back(write_history=True)  # as `tasuki sync --write-history` asks
        assert (crm.get("Lead", "L1") or {}).get("Tasuki_Verdict__c", "").startswith("MK→IS ")
