from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.local import CHANGE_PAGE_SIZE, LocalCrm
from tasuki.crm import Connector, RecordWrite

T0 = datetime(2026, 10, 1, 0, 0, tzinfo=UTC)


@pytest.fixture
def crm(tmp_path: Path) -> LocalCrm:
    c = LocalCrm(tmp_path / "crm.db")
    c.define("Lead", ["OwnerId", "Status", "Phone"])
    return c


def test_it_is_a_connector(crm: LocalCrm) -> None:
    assert isinstance(crm, Connector)
    assert crm.write_batch_size == 200


def test_changes_page_in_order_and_include_deletes(crm: LocalCrm) -> None:
    n = CHANGE_PAGE_SIZE + 10
    for i in range(n):
        crm.upsert("Lead", f"L{i}", {"Status": "New"}, at=T0 + timedelta(seconds=i))
    first = crm.changes("Lead", None, ["Status"])
    assert first.more and len(first.records) == CHANGE_PAGE_SIZE
    second = crm.changes("Lead", first.cursor, ["Status"])
    assert not second.more and [r.id for r in second.records] == [f"L{i}" for i in range(2000, n)]
    crm.delete("Lead", "L5")
    third = crm.changes("Lead", second.cursor, ["Status"])
    assert [(r.id, r.deleted) for r in third.records] == [("L5", True)]
    assert crm.changes("Lead", third.cursor, ["Status"]).records == []


def test_history_keeps_tracked_fields_with_stable_ids(crm: LocalCrm) -> None:
    crm.upsert("Lead", "L1", {"OwnerId": "U1", "Status": "New", "Phone": "03"}, at=T0, by="U1")
    crm.upsert("Lead", "L1", {"OwnerId": "U2", "Status": "MQL"}, at=T0 + timedelta(hours=1))
    changes = crm.history("Lead", ["L1"], ["OwnerId"])
    assert [(c.old, c.new) for c in changes] == [(None, "U1"), ("U1", "U2")]
    assert changes == crm.history("Lead", ["L1"], ["OwnerId"])


def test_writes_are_per_record_and_limited_to_the_batch_size(crm: LocalCrm) -> None:
    crm.upsert("Lead", "L1", {"Status": "New"}, at=T0)
    results = crm.write(
        "Lead",
        [
            RecordWrite("L1", {"Status": "MQL"}),
            RecordWrite("L1", {"Nope__c": 1}),
            RecordWrite("X", {}),
        ],
    )
    assert [(r.ok, r.error_code) for r in results] == [
        (True, ""),
        (False, "INVALID_FIELD"),
        (False, "NOT_FOUND"),
    ]
    assert crm.get("Lead", "L1")["Status"] == "MQL"  # type: ignore[index]
    with pytest.raises(ValueError):
        crm.write("Lead", [RecordWrite("L1", {})] * 201)
    # Our write is a change like any other: it shows in the outbox, made by the integration user.
    assert crm.pending_notices(100)[-1][1:] == ("Lead", "L1", "tasuki")
