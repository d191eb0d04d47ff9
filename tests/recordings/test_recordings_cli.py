"""``tasuki handoff packet`` and ``tasuki artifacts unmatched``: times in the company's
timezone, labelled; people by name with their id; ``--format table|csv|json``."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

from click.testing import CliRunner
from sqlalchemy import select

from tasuki import rulechanges, runtime
from tasuki.cli import main
from tasuki.settings import Settings
from tasuki.store.models import Handoff, Person, Recording
from tests.rules.rules_support import seed_demo_store


def _runner(settings: Settings) -> CliRunner:
    return CliRunner(
        env={"TASUKI_DATA_DIR": str(settings.data_dir), "TASUKI_CONFIG": None, "COLUMNS": "250"}
    )


def test_packet_in_each_format(settings: Settings) -> None:
    rt = seed_demo_store(settings)
    with runtime.activate(rt):
        rulechanges.apply(rt, datetime.now(UTC))
    with rt.store.session() as s:
        query = select(Handoff).where(Handoff.boundary == "IS→FS").order_by(Handoff.id)
        h = s.scalars(query).first()
        assert h is not None and h.sender_id
        sender = s.scalars(select(Person).where(Person.user_id == h.sender_id)).one()
        rid, sender_shown = h.record_id, f"{sender.name} [{sender.user_id}]"
    runner = _runner(settings)

    table = runner.invoke(main, ["handoff", "packet", f"deal:{rid}"])
    assert table.exit_code == 0, table.output
    assert f"[{rid}]" in table.output and sender_shown in table.output
    assert " JST " in table.output

    as_json = runner.invoke(main, ["handoff", "packet", f"deal:{rid}", "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    packet = json.loads(as_json.output)
    (first, *_) = packet["handoffs"]
    assert first["sender"] == sender_shown and first["handed_at"].endswith(" JST")
    assert first["outcome"] in ("passed", "warned", "failed")

    as_csv = runner.invoke(main, ["handoff", "packet", f"deal:{rid}", "--format", "csv"])
    rows = list(csv.DictReader(io.StringIO(as_csv.output)))
    assert rows[0] == {"section": "record", "item": "name", "value": rows[0]["value"]}
    assert any(r["section"] == "Verdicts" and sender_shown in r["item"] for r in rows)


def test_unmatched_in_each_format_with_formula_text_defused(settings: Settings) -> None:
    rt = seed_demo_store(settings)
    with rt.store.session() as s:
        s.add(
            Recording(
                provider="miitel",
                external_id="c-1",
                kind="call",
                at=datetime(2026, 11, 4, 1, 0, tzinfo=UTC),
                phones=["=HYPERLINK('http://x')"],
                status="unmatched",
                reason="no CRM record has this number",
                payload={},
            )
        )
    runner = _runner(settings)
    table = runner.invoke(main, ["artifacts", "unmatched"])
    assert table.exit_code == 0, table.output
    assert "2026-11-04 10:00 JST" in table.output
    as_csv = runner.invoke(main, ["artifacts", "unmatched", "--format", "csv"])
    (row,) = list(csv.DictReader(io.StringIO(as_csv.output)))
    assert row["at"] == "2026-11-04 10:00 JST" and row["phones / emails"].startswith("'=")
    (item,) = json.loads(runner.invoke(main, ["artifacts", "unmatched", "--format", "json"]).output)
    assert item["id"] == "c-1" and item["reason"] == "no CRM record has this number"
