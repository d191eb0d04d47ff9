"""Incremental write-back planning (tasuki/replan.py): the plan of the marked records is the full
plan, on SQLite and PostgreSQL, through the real jobs on the demo org in the embedded CRM."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

import worker
from connectors.local import LocalCrm
from tasuki import replan, runtime, startup
from tasuki.crm import RecordWrite
from tasuki.demo.org import OrgSpec, generate
from tasuki.judging import verdict_values
from tasuki.mapping import Mapper
from tasuki.queue import connect
from tasuki.settings import Settings
from tasuki.store.db import Store
from tasuki.store.models import Handoff, Verdict
from tasuki.writeback import PlannedChange, plan


@pytest.fixture
def org(settings: Settings, store: Store) -> Iterator[runtime.Runtime]:
    crm = LocalCrm(settings.data_dir / "crm.db")
    generate(crm, settings.config, OrgSpec(seed=5, leads=60, until=date(2025, 3, 14)))
    rt = startup.assemble(settings, store, crm, redis_connection=connect(settings))
    with runtime.activate(rt):
        worker.reconcile()
        yield rt


def _full_plan(rt: runtime.Runtime) -> list[PlannedChange]:
    with rt.store.session() as s:
        return plan(s, rt.system, Mapper(rt.settings.config), verdict_values(rt, s))


def _marked_plan(rt: runtime.Runtime) -> tuple[list[PlannedChange], int]:
    digest = replan.settings_digest(rt.settings.config)
    with rt.store.session() as s:
        marks = replan.pending(s, rt.system, digest)
        assert marks is not None, "a full plan ran: the marks are trusted"
        keys = [(m.object, m.record_id) for m in marks]
        return plan(s, rt.system, Mapper(rt.settings.config), verdict_values(rt, s, keys)), len(
            keys
        )


def _failing_deals(rt: runtime.Runtime, n: int) -> list[str]:
    with rt.store.session() as s:
        rows = s.scalars(
            select(Handoff.record_id)
            .join(Verdict, Verdict.handoff_id == Handoff.id)
            .where(Handoff.object == "deal", Verdict.outcome != "passed")
            .order_by(Handoff.record_id)
            .distinct()
        ).all()
    assert len(rows) >= n
    return list(rows[:n])


def test_the_plan_of_the_marked_records_is_the_full_plan(org: runtime.Runtime) -> None:
    rt = org
    crm = rt.connector
    assert isinstance(crm, LocalCrm)
    # nothing planned fully yet: a full plan; the org came in by a first back-fill, so its
    # verdicts are history, written because asked (then they are kept current)
    first = worker.write_back(write_history=True)
    assert first["records"] > 0
    assert _full_plan(rt) == [] and _marked_plan(rt) == ([], 0)

    # Verdicts change (hearing notes filled in) and a person overwrites a field tasuki wrote.
    mapping = rt.settings.config.mapping("deal").fields
    deals = _failing_deals(rt, 5)
    at = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
    for rid in deals[:4]:
        crm.upsert(
            "Opportunity",
            rid,
            {mapping["hearing_notes"]: "決裁者は営業本部長。予算確保済み、競合2社と比較中です。"},
            at=at,
            by="IS1",
        )
    crm.write("Opportunity", [RecordWrite(deals[4], {mapping["tasuki_score"]: 1})])
    worker.sync_records("Opportunity", deals)

    full = _full_plan(rt)
    marked, count = _marked_plan(rt)
    assert full and marked == full
    assert {c.record_id for c in full} <= set(deals)
    assert count <= len(deals)  # only what changed is marked, not every handed-over record

    # A dry run plans the same and clears nothing; a real pass writes it and clears the marks.
    assert worker.write_back(dry_run=True)["fields"] == len(full)
    assert _marked_plan(rt) == (full, count)
    done = worker.write_back()
    assert done["fields"] == len(full)
    assert _full_plan(rt) == [] and _marked_plan(rt) == ([], 0)
    assert worker.write_back()["calls"] == 0


def test_changed_write_back_settings_plan_everything_again(org: runtime.Runtime) -> None:
    rt = org
    worker.write_back()
    with rt.store.session() as s:
        digest = replan.settings_digest(rt.settings.config)
        assert replan.pending(s, rt.system, digest) == []
        verdict = rt.settings.config.writeback.verdict.model_copy(update={"score": "name"})
        changed = rt.settings.config.model_copy(
            update={
                "writeback": rt.settings.config.writeback.model_copy(update={"verdict": verdict})
            }
        )
        other = replan.settings_digest(changed)
        assert other != digest
        assert replan.pending(s, rt.system, other) is None  # a full plan is due


def test_a_record_marked_again_during_a_pass_stays_marked(settings: Settings, store: Store) -> None:
    system = "local"
    with store.session() as s:
        replan.mark(s, system, [("deal", "D1"), ("deal", "D2")])
        replan.planned_fully(s, system, "d")
    with store.session() as s:
        read = replan.pending(s, system, "d")
        assert read is not None and len(read) == 2
    with store.session() as s:
        replan.mark(s, system, [("deal", "D2")])  # judged again while the pass ran
    with store.session() as s:
        assert replan.clear(s, read, []) == 1
    with store.session() as s:
        left = replan.pending(s, system, "d")
        assert left is not None and [(m.object, m.record_id) for m in left] == [("deal", "D2")]


def test_marks_are_per_system(settings: Settings, store: Store) -> None:
    with store.session() as s:
        replan.mark(s, "salesforce", [("deal", "D1")])
        replan.planned_fully(s, "hubspot", "d")
    with store.session() as s:
        assert replan.pending(s, "hubspot", "d") == []
        assert replan.pending(s, "salesforce", "d") is None
        assert dataclasses.astuple(replan.all_marks(s, "salesforce")[0])[1:3] == ("deal", "D1")
