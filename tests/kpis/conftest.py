"""A small fixed org for KPI tests, inserted straight into the store's tables.

Times are UTC; Tokyo is UTC+9, so 2026-10-31T15:00Z is the first instant of November there.
Every figure the tests expect is worked out by hand in the test that checks it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tasuki.settings import Settings
from tasuki.store.db import Store
from tasuki.store.models import Handoff, Person, Record, Verdict

SYSTEM = "local"
NOW = datetime(2026, 11, 30, 0, 30, tzinfo=UTC)
"""Monday 2026-11-30 09:30 in Tokyo."""


def utc(text: str) -> datetime:
    """``2026-11-02T01:00`` → an aware UTC instant."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class Org:
    """Inserts people, records, handoffs and verdicts."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def person(self, uid: str, dept: str | None, name: str = "", team: str | None = None) -> None:
        with self.store.session() as s:
            s.add(Person(system=SYSTEM, user_id=uid, name=name or uid, department=dept, team=team))

    def record(self, obj: str, rid: str, deleted: bool = False, **fields: Any) -> None:
        with self.store.session() as s:
            s.add(Record(system=SYSTEM, object=obj, record_id=rid, fields=fields, deleted=deleted))

    def handoff(
        self,
        boundary: str,
        rid: str,
        sender: str | None,
        receiver: str | None,
        at: str,
        verdict: str | None = None,
        detected: datetime | None = None,
    ) -> int:
        a, b = boundary.split("→")
        obj = "lead" if boundary == "MK→IS" else "deal"
        with self.store.session() as s:
            h = Handoff(
                system=SYSTEM,
                boundary=boundary,
                object=obj,
                record_id=rid,
                sender_id=sender,
                receiver_id=receiver,
                sender_department=a,
                receiver_department=b,
                handed_at=utc(at),
                detected_at=detected or utc(at),
            )
            s.add(h)
            s.flush()
            if verdict is not None:
                s.add(Verdict(handoff_id=h.id, outcome=verdict, score=100, evaluated_at=utc(at)))
            return h.id


def build_org(org: Org) -> None:
    """The fixed dataset (see each test for what it contributes to which figure)."""
    for uid, dept, team in [
        ("M1", "MK", None),
        ("M2", "MK", None),
        ("I1", "IS", "East"),
        ("I2", "FS", None),  # was IS when it handed D3 over; FS now
        ("F1", "FS", None),
        ("C1", "CS", None),
    ]:
        org.person(uid, dept, team=team)
    # Leads and MK→IS handoffs.
    org.record("lead", "L1", first_touch_at="2026-11-02T03:00:00Z")
    org.record("lead", "L2", first_touch_at="2026-11-03T05:00:00Z")
    org.record("lead", "L3")
    org.record("lead", "L4", first_touch_at="2026-11-06T07:00:00Z")
    org.record("lead", "L5", deleted=True)
    org.record("lead", "L6")
    org.handoff("MK→IS", "L1", "M1", "I1", "2026-11-02T01:00", verdict="passed")
    org.handoff("MK→IS", "L2", "M1", "I1", "2026-11-03T01:00", verdict="failed")
    org.handoff("MK→IS", "L3", "M1", "I1", "2026-10-31T14:59", verdict="passed")  # Oct in Tokyo
    org.handoff("MK→IS", "L4", "M1", "I1", "2026-11-04T01:00", verdict="failed")
    org.handoff("MK→IS", "L4", "M2", "I1", "2026-11-06T01:00", verdict="passed")  # again: M2's
    org.handoff("MK→IS", "L5", "M1", "I1", "2026-11-05T01:00", verdict="passed")  # deleted
    org.handoff("MK→IS", "L6", "M1", "I1", "2026-10-31T15:00", verdict="warned")  # Nov in Tokyo
    # Deals and IS→FS handoffs (fs_accepted_at: see the SLA test).
    org.record(
        "deal",
        "D1",
        lead_id="L1",
        account_id="A1",
        sourced_by="I1",
        stage="Closed Won",
        amount=1_000_000,
        close_date="2026-11-20",
        fs_acceptance="Accepted",
        fs_accepted_at="2026-11-10T06:00:00Z",
    )
    org.record("deal", "D2", lead_id="L2", sourced_by="I1", stage="Proposal")
    org.record(
        "deal",
        "D3",
        sourced_by="I2",
        stage="Closed Lost",
        close_date="2026-11-04",
        fs_acceptance="Rejected",
        fs_accepted_at="2026-11-04T07:00:00Z",
    )
    org.record(
        "deal",
        "D4",
        sourced_by="I1",
        stage="Proposal",
        fs_acceptance="Accepted",
        fs_accepted_at="2026-11-05T03:00:00Z",
    )
    org.record("deal", "D5", sourced_by="I1", stage="Meeting Booked")
    org.record("deal", "D6", sourced_by="I1", stage="Meeting Booked")
    org.record(
        "deal",
        "D7",
        account_id="A2",
        sourced_by="I1",
        stage="Closed Won",
        amount="2500000",
        close_date="2026-11-21",
    )
    org.record("deal", "D8", sourced_by="I1", stage="Closed Lost", close_date="2026-11-01")
    org.record("deal", "D9", sourced_by="I1", stage="Closed Won", close_date="2026-10-31")
    org.handoff("IS→FS", "D1", "I1", "F1", "2026-11-10T01:00")
    org.handoff("IS→FS", "D2", "I1", "F1", "2026-12-20T01:00")  # 47 days after L2's MQL
    org.handoff("IS→FS", "D3", "I2", "F1", "2026-11-02T08:00")
    org.handoff("IS→FS", "D4", "I1", "F1", "2026-11-04T01:00")
    org.handoff("IS→FS", "D5", "I1", "F1", "2026-11-27T08:00")
    org.handoff("IS→FS", "D6", "I1", "F1", "2026-11-09T01:00")
    # Accounts and FS→CS handoffs.
    org.record("account", "A1", status="Active")
    org.record("account", "A2", status="Churned")
    org.handoff("FS→CS", "D1", "F1", "C1", "2026-11-20T01:00", verdict="passed")
    org.handoff("FS→CS", "D7", "F1", "C1", "2026-11-21T01:00", verdict="failed")


@pytest.fixture
def org(store: Store) -> Iterator[Org]:
    """The fixed org in ``store`` (SQLite and PostgreSQL)."""
    o = Org(store)
    build_org(o)
    yield o


@pytest.fixture
def kpi_settings(settings: Settings) -> Settings:
    """Default settings (the shipped KPI book, Tokyo, April fiscal year)."""
    return settings
