"""Linking recordings to CRM records: by phone and caller, by participants, domain and calendar;
ambiguity kept with its reason; late-arriving records; links to the rules and to write-back.
On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tasuki.handoffs import context_for
from tasuki.recordings.capture import Capture, Kind
from tasuki.recordings.config import RecordingsConfig
from tasuki.recordings.keys import web_domain
from tasuki.recordings.matching import match_pending
from tasuki.recordings.store import keep
from tasuki.recordings.values import recording_values
from tasuki.settings import Settings
from tasuki.store.db import Store
from tasuki.store.models import Handoff, Person, Record, Recording
from tasuki.store.upsert import upsert

SYSTEM = "local"
AT = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)
IS_REP, OTHER_IS, FS_REP = "005IS1", "005IS2", "005FS1"
RCFG = RecordingsConfig()


def _records(store: Store, obj: str, rows: dict[str, dict[str, Any]]) -> None:
    with store.session() as s:
        upsert(
            s,
            Record,
            [
                {"system": SYSTEM, "object": obj, "record_id": rid, "fields": f, "modstamp": "1"}
                for rid, f in rows.items()
            ],
            ["system", "object", "record_id"],
            ["fields", "deleted"],
        )


@pytest.fixture
def org(store: Store) -> Store:
    with store.session() as s:
        for uid, email, dept in (
            (IS_REP, "sho@example.co.jp", "IS"),
            (OTHER_IS, "ai@example.co.jp", "IS"),
            (FS_REP, "noah@example.co.jp", "FS"),
        ):
            s.add(Person(system=SYSTEM, user_id=uid, name=uid, email=email, department=dept))
    _records(
        store,
        "account",
        {
            "001A": {"name": "Corp A", "domain": "https://www.corp-a.example.jp/"},
            "001B": {"name": "Corp B", "domain": "corp-b.example.jp"},
        },
    )
    _records(
        store,
        "lead",
        {
            "00Q1": {
                "phone": "03-1234-5678",
                "email": "ken@corp-a.example.jp",
                "owner": IS_REP,
                "account_id": "001A",
            },
            # the same switchboard number on two leads of two reps
            "00Q2": {"phone": "(06)6123-4567", "owner": IS_REP, "account_id": "001B"},
            "00Q3": {"phone": "+81 6 6123 4567", "owner": OTHER_IS, "account_id": "001B"},
            "00Q4": {"phone": "０９０－１１１１－２２２２", "owner": IS_REP},
            "00Q5": {"phone": "090-1111-2222", "owner": IS_REP},
        },
    )
    meeting = (AT + timedelta(hours=1)).isoformat()
    _records(
        store,
        "deal",
        {
            "006A": {
                "lead_id": "00Q1",
                "account_id": "001A",
                "owner": FS_REP,
                "sourced_by": IS_REP,
                "meeting_date": meeting,
            },
            "006B1": {
                "lead_id": "00Q2",
                "account_id": "001B",
                "owner": FS_REP,
                "meeting_date": (AT + timedelta(days=3)).isoformat(),
            },
            "006B2": {
                "lead_id": "00Q3",
                "account_id": "001B",
                "owner": FS_REP,
                "meeting_date": (AT - timedelta(days=5)).isoformat(),
            },
        },
    )
    return store


def call(cid: str, *phones: str, user: str = "sho@example.co.jp", at: datetime = AT) -> Capture:
    return Capture(
        "miitel",
        cid,
        Kind.CALL,
        f"https://x.miitel.jp/app/calls/{cid}",
        at,
        phones=phones,
        host_email=user,
    )


def meeting(
    mid: str,
    *emails: str,
    host: str = "noah@example.co.jp",
    at: datetime = AT + timedelta(hours=1),
    url: str = "https://zoom.us/rec/share/m",
) -> Capture:
    return Capture("zoom", mid, Kind.MEETING, url, at, emails=emails, host_email=host)


def run(store: Store, settings: Settings, *captures: Capture) -> list[tuple[str, str]]:
    with store.session() as s:
        for c in captures:
            keep(s, c)
    with store.session() as s:
        return match_pending(s, settings.config, SYSTEM, RCFG)


def state(store: Store, external_id: str) -> tuple[str, str | None, str | None, str]:
    with store.session() as s:
        r = s.scalars(select(Recording).where(Recording.external_id == external_id)).one()
        return r.status, r.matched_object, r.matched_record_id, r.reason


def test_a_call_matches_the_lead_whatever_the_number_looks_like(
    org: Store, settings: Settings
) -> None:
    touched = run(org, settings, call("c1", "+81 50-1234-0000", "+81312345678"))
    assert touched == [("lead", "00Q1")]
    assert state(org, "c1")[:3] == ("matched", "lead", "00Q1")


def test_a_shared_number_is_decided_by_the_callers_crm_user(org: Store, settings: Settings) -> None:
    run(org, settings, call("c2", "0661234567", user="ai@example.co.jp"))
    assert state(org, "c2")[:3] == ("matched", "lead", "00Q3")


def test_ambiguity_is_kept_with_its_reason(org: Store, settings: Settings) -> None:
    # Both leads with this mobile belong to the caller: nothing decides between them.
    run(org, settings, call("c3", "+819011112222"))
    status, obj, rid, reason = state(org, "c3")
    assert (status, obj, rid) == ("ambiguous", None, None)
    assert "lead 00Q4" in reason and "lead 00Q5" in reason and "+819011112222" in reason


def test_an_unknown_caller_cannot_decide(org: Store, settings: Settings) -> None:
    run(org, settings, call("c4", "06-6123-4567", user="temp@agency.example"))
    status, _, _, reason = state(org, "c4")
    assert status == "ambiguous" and "not a CRM user" in reason


def test_a_call_to_an_unknown_number_waits_for_the_lead_to_sync(
    org: Store, settings: Settings
) -> None:
    assert run(org, settings, call("c5", "045-123-4567")) == []
    status, _, _, reason = state(org, "c5")
    assert status == "unmatched" and "+81451234567" in reason
    # Nothing changes until the lead arrives ...
    with org.session() as s:
        assert match_pending(s, settings.config, SYSTEM, RCFG) == []
    # ... then the next pass (run after each sync) links it.
    _records(org, "lead", {"00Q9": {"phone": "045 123 4567", "owner": IS_REP}})
    with org.session() as s:
        assert match_pending(s, settings.config, SYSTEM, RCFG) == [("lead", "00Q9")]
    assert state(org, "c5")[:3] == ("matched", "lead", "00Q9")


def test_a_call_with_no_usable_number_is_kept_unmatched(org: Store, settings: Settings) -> None:
    run(org, settings, call("c6", "非通知"))
    assert state(org, "c6")[0] == "unmatched" and "非通知" in state(org, "c6")[3]


def test_a_meeting_matches_the_deal_of_a_participants_lead(org: Store, settings: Settings) -> None:
    run(org, settings, meeting("m1", "noah@example.co.jp", "ken@corp-a.example.jp"))
    assert state(org, "m1")[:3] == ("matched", "deal", "006A")


def test_a_colleague_of_the_lead_finds_the_deal_through_the_domain_and_the_calendar(
    org: Store, settings: Settings
) -> None:
    # corp-b has two deals with this host; the one whose meeting date is now wins.
    run(org, settings, meeting("m2", "boss@corp-b.example.jp", at=AT + timedelta(days=3)))
    status, obj, rid, reason = state(org, "m2")
    assert (status, obj, rid) == ("matched", "deal", "006B1") and "meeting date" in reason


def test_two_deals_and_no_calendar_to_choose_is_ambiguous(org: Store, settings: Settings) -> None:
    run(org, settings, meeting("m3", "boss@corp-b.example.jp", at=AT + timedelta(days=30)))
    status, _, _, reason = state(org, "m3")
    assert status == "ambiguous" and "deal 006B1" in reason and "deal 006B2" in reason


def test_with_no_participant_the_hosts_calendar_decides(org: Store, settings: Settings) -> None:
    run(org, settings, meeting("m4", "noah@example.co.jp"))
    assert state(org, "m4")[:3] == ("matched", "deal", "006A")


def test_a_domain_with_no_deal_falls_back_to_the_account(org: Store, settings: Settings) -> None:
    _records(org, "account", {"001C": {"domain": "https://corp-c.example.jp"}})
    run(org, settings, meeting("m5", "cto@sales.corp-c.example.jp", at=AT + timedelta(days=60)))
    assert state(org, "m5")[:3] == ("matched", "account", "001C")


def test_free_mail_and_unknown_hosts_stay_unmatched(org: Store, settings: Settings) -> None:
    run(
        org,
        settings,
        meeting("m6", "someone@gmail.com", host="guest@else.example", at=AT + timedelta(days=60)),
    )
    status, _, _, reason = state(org, "m6")
    assert status == "unmatched" and "someone@gmail.com" in reason and "not a CRM user" in reason


def test_participants_before_the_recording_are_merged_into_one_row(
    org: Store, settings: Settings
) -> None:
    run(org, settings, meeting("m7", "ken@corp-a.example.jp", url=""))
    assert state(org, "m7")[0] == "unmatched" and "waiting" in state(org, "m7")[3]
    run(org, settings, meeting("m7"))
    with org.session() as s:
        row = s.scalars(select(Recording).where(Recording.external_id == "m7")).one()
        assert row.emails == ["ken@corp-a.example.jp"] and row.url
    assert state(org, "m7")[:3] == ("matched", "deal", "006A")


def test_matching_twice_changes_nothing(org: Store, settings: Settings) -> None:
    first = run(org, settings, call("c1", "03-1234-5678"), meeting("m1", "ken@corp-a.example.jp"))
    assert len(first) == 2
    again = run(org, settings, call("c1", "03-1234-5678"), meeting("m1", "ken@corp-a.example.jp"))
    assert again == []


def test_the_deal_carries_its_leads_latest_call_and_its_meeting(
    org: Store, settings: Settings
) -> None:
    run(
        org,
        settings,
        call("old", "03-1234-5678", at=AT - timedelta(days=2)),
        call("new", "0312345678", at=AT),
        meeting("m1", "ken@corp-a.example.jp"),
        call("c3", "+819011112222"),  # ambiguous: written nowhere
    )
    with org.session() as s:
        values = recording_values(s, settings.config, RCFG, SYSTEM)
    assert [(v.object, v.record_id, v.field, v.value) for v in values] == [
        ("deal", "006A", "call_recording_url", "https://x.miitel.jp/app/calls/new"),
        ("deal", "006A", "meeting_recording_url", "https://zoom.us/rec/share/m"),
    ]


def test_the_rules_see_the_deals_and_its_leads_recordings(org: Store, settings: Settings) -> None:
    run(org, settings, call("c1", "03-1234-5678"), meeting("m1", "ken@corp-a.example.jp"))
    with org.session() as s:
        h = Handoff(
            system=SYSTEM,
            boundary="IS→FS",
            object="deal",
            record_id="006A",
            sender_id=IS_REP,
            receiver_id=FS_REP,
            sender_department="IS",
            receiver_department="FS",
            handed_at=AT + timedelta(hours=2),
        )
        s.add(h)
        s.flush()
        ctx = context_for(s, settings.config, h, AT + timedelta(days=1))
    assert [(a.kind, a.source, a.url) for a in ctx.artifacts] == [
        ("call", "miitel", "https://x.miitel.jp/app/calls/c1"),
        ("meeting", "zoom", "https://zoom.us/rec/share/m"),
    ]


@pytest.mark.parametrize(
    ("value", "domain"),
    [
        ("https://www.corp.example.jp/about", "corp.example.jp"),
        ("corp.example.jp", "corp.example.jp"),
        ("HTTP://Corp.Example.JP", "corp.example.jp"),
        ("", ""),
        (None, ""),
    ],
)
def test_account_websites_become_domains(value: object, domain: str) -> None:
    assert web_domain(value) == domain
