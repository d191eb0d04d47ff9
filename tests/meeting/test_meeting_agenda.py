"""The agenda of a hand-built org's Monday meeting, checked by hand, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import event

from tasuki.meeting import (
    Agenda,
    AgendaItem,
    ClockState,
    Labelled,
    RecordingLink,
    build_agenda,
    from_json,
    to_json,
)
from tasuki.meeting.formatting import display_width
from tasuki.settings import MeetingConfig, Settings
from tasuki.store.db import Store
from tasuki.store.models import Handoff, Record
from tests.meeting.meeting_support import LONG_NOTES, MONDAY, SUNDAY_NOON, SYSTEM, at, build_org


def _agenda(store: Store, settings: Settings) -> Agenda:
    return build_agenda(store, settings, MONDAY, now=SUNDAY_NOON)


def _by_title(items: tuple[AgendaItem, ...]) -> dict[str, AgendaItem]:
    return {i.title: i for i in items}


def test_the_monday_agenda(store: Store, settings: Settings) -> None:
    org = build_org(store)
    agenda = _agenda(store, settings)

    assert (agenda.boundary, agenda.sender_department, agenda.receiver_department) == (
        "IS→FS",
        "IS",
        "FS",
    )
    assert (agenda.window_start, agenda.window_end) == (
        at("2026-06-12", "10:00"),
        at("2026-06-15", "10:00"),
    )
    assert agenda.starts_at == at("2026-06-15", "10:00")
    assert agenda.ends_at == at("2026-06-15", "10:30")
    assert agenda.as_of == agenda.starts_at  # built on Sunday: clocks read at the meeting
    assert agenda.tz_label == "JST"
    assert agenda.answer_rule == (
        "deal.fs_accepted_at within 1 business day of handoff.at (rule is-fs.fs-answer-sla)"
    )
    # New handoffs by receiver (names, not ids); Monday 10:00, the deleted record and the
    # FS→CS handoff are not there.
    assert [(g.receiver, [i.title for i in g.items]) for g in agenda.groups] == [
        ("中村 由美", ["商談 3"]),
        ("山本 拓也", ["商談 2"]),
    ]
    # Earlier days: the unanswered Wednesday handoff (its older handoff and D3's earlier one
    # not repeated), and Friday's failure; the fixed one, the ancient one are gone.
    assert [i.title for i in agenda.waiting] == ["商談 5"]
    assert [i.title for i in agenda.unfixed] == ["商談 1"]
    assert agenda.waiting[0].handoff_id == org.handoffs["waiting"]

    pending = _by_title(agenda.items)["商談 3"]
    assert (pending.company, pending.contact, pending.sender, pending.receiver) == (
        "株式会社サンプル003",
        "リード 3",
        "高橋 翔",
        "中村 由美",
    )
    assert pending.handed_at == at("2026-06-13", "15:00")
    assert str(pending.handed_at.tzinfo) == "Asia/Tokyo"
    assert pending.meeting_at == at("2026-06-18", "14:00")
    # Shortened to 240 columns: 119 Japanese characters and the ellipsis.
    assert len(pending.hearing_notes) == 120 and pending.hearing_notes.endswith("…")
    assert display_width(pending.hearing_notes) == 239
    assert LONG_NOTES.startswith(pending.hearing_notes[:-1])
    assert pending.bant == (
        Labelled("Budget", "年300万円"),
        Labelled("Authority", "営業本部長"),
        Labelled("Need", "申し送りの標準化"),
        Labelled("Timeline", ""),
    )
    assert pending.proposals == (
        Labelled("IS proposal", "無料トライアル"),
        Labelled("FS proposal", ""),
    )
    assert pending.recordings == (
        RecordingLink(
            "call", "miitel", "https://acme.miitel.jp/app/calls/3", at("2026-06-12", "16:00")
        ),
    )
    assert pending.verdict is not None
    assert (pending.verdict.outcome, pending.verdict.score) == ("failed", 75)
    assert [(x.severity, x.rule_id) for x in pending.verdict.findings] == [
        ("warn", "is-fs.bant.timeline"),
        ("error", "is-fs.call-recording"),
    ]
    # Saturday 15:00 + 1 business day = Monday 18:00; at 10:00 Monday, 8 business hours left.
    assert pending.clock is not None
    assert (pending.clock.state, pending.clock.deadline) == (
        ClockState.PENDING,
        at("2026-06-15", "18:00"),
    )
    assert pending.clock.business_seconds == 8 * 3600
    assert pending.link is None  # the embedded CRM has no web page

    answered = _by_title(agenda.items)["商談 2"]
    assert answered.clock is not None
    assert answered.clock.state is ClockState.ANSWERED
    assert answered.clock.answered_at == at("2026-06-12", "11:30")
    assert answered.clock.business_seconds == 90 * 60
    assert answered.recordings == (RecordingLink("call", "crm", "https://miitel.jp/c/2"),)
    assert answered.verdict is not None and answered.verdict.findings == ()

    # Wednesday 14:00 + 1 business day = Thursday 14:00; by Monday 10:00, 4 + 9 + 1 hours over.
    waiting = agenda.waiting[0]
    assert waiting.receiver == "中村 由美"
    assert waiting.clock is not None
    assert (waiting.clock.state, waiting.clock.deadline) == (
        ClockState.OVERDUE,
        at("2026-06-11", "14:00"),
    )
    assert waiting.clock.business_seconds == 14 * 3600

    # Friday 09:59 + 1 business day = Monday 09:59: one minute over at the meeting.
    unfixed = agenda.unfixed[0]
    assert unfixed.hearing_notes == ""
    assert unfixed.verdict is not None and unfixed.verdict.outcome == "failed"
    assert unfixed.clock is not None
    assert (unfixed.clock.state, unfixed.clock.business_seconds) == (ClockState.OVERDUE, 60)

    assert from_json(to_json(agenda)) == agenda


def test_clocks_are_read_now_once_the_meeting_has_begun(store: Store, settings: Settings) -> None:
    build_org(store)
    agenda = build_agenda(store, settings, MONDAY, now=at("2026-06-15", "12:00"))
    assert agenda.as_of == at("2026-06-15", "12:00")
    pending = _by_title(agenda.items)["商談 3"]
    assert pending.clock is not None and pending.clock.business_seconds == 6 * 3600


def test_record_links_come_from_the_configured_url(store: Store, settings: Settings) -> None:
    build_org(store)
    url = "https://acme.lightning.force.com/lightning/r/{object}/{id}/view"
    config = settings.config.model_copy(update={"meeting": MeetingConfig(record_url=url)})
    agenda = _agenda(store, dataclasses.replace(settings, config=config))
    assert {i.link for i in agenda.items} == {
        "https://acme.lightning.force.com/lightning/r/Opportunity/D2/view",
        "https://acme.lightning.force.com/lightning/r/Opportunity/D3/view",
    }


def test_another_boundary_meets_too(store: Store, settings: Settings) -> None:
    build_org(store)
    config = settings.config.model_copy(update={"meeting": MeetingConfig(boundary="FS→CS")})
    agenda = _agenda(store, dataclasses.replace(settings, config=config))
    assert agenda.receiver_department == "CS"
    assert [(g.receiver, [i.title for i in g.items]) for g in agenda.groups] == [
        ("加藤 彩", ["商談 9"])
    ]
    assert agenda.answer_rule is None and agenda.items[0].clock is None
    assert agenda.waiting == () and agenda.unfixed == ()


@contextmanager
def _statements(store: Store) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(store.engine, "before_cursor_execute", count)


def test_the_queries_do_not_grow_with_the_handoffs(store: Store, settings: Settings) -> None:
    build_org(store)
    with _statements(store) as before:
        _agenda(store, settings)
    with store.session() as s:
        for n in range(100, 160):
            s.add(Record(system=SYSTEM, object="deal", record_id=f"D{n}", fields={"name": f"x{n}"}))
            s.add(
                Handoff(
                    system=SYSTEM,
                    boundary="IS→FS",
                    object="deal",
                    record_id=f"D{n}",
                    sender_id="u_is1",
                    receiver_id="u_fs1",
                    sender_department="IS",
                    receiver_department="FS",
                    handed_at=at("2026-06-12", "12:00") + timedelta(minutes=n),
                )
            )
    with _statements(store) as after:
        agenda = _agenda(store, settings)
    assert len(agenda.items) == 62
    assert len(after) == len(before)
    handoff_queries = [q for q in after if "FROM handoffs" in q and "handoffs.handed_at >=" in q]
    assert len(handoff_queries) == 2
    assert all("handoffs.boundary =" in q and "handoffs.handed_at <" in q for q in handoff_queries)
