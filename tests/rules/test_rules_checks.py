"""Every check type, each case one rule written inline in YAML and one handoff."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from rules import Artifact, HandoffContext, Outcome, Rulebook
from tests.rules.rules_support import CALENDAR, handoff, jst, rulebook_from

CALL = "https://app.miitel.jp/v1/calls/42"


def one_rule(tmp_path: Path, check: str, boundary: str = "IS→FS") -> Rulebook:
    """A rulebook of one error rule ``r`` whose check settings are ``check``."""
    body = textwrap.indent(textwrap.dedent(check).strip(), " " * 8)
    text = (
        f"rule_sets:\n  - boundary: {boundary}\n    rules:\n"
        f"      - id: r\n        message: broken\n{body}\n"
    )
    return rulebook_from(tmp_path, text)


def broken(rulebook: Rulebook, ctx: HandoffContext) -> bool:
    verdict = rulebook.evaluate(ctx, CALENDAR)
    assert verdict.outcome in (Outcome.PASSED, Outcome.FAILED)
    return verdict.outcome is Outcome.FAILED


def deal(**fields: Any) -> HandoffContext:
    return handoff("IS→FS", "deal", fields)


@pytest.mark.parametrize(
    ("check", "record", "is_broken"),
    [
        ("check: required\nfield: deal.hearing_notes", {"hearing_notes": "予算あり"}, False),
        ("check: required\nfield: deal.hearing_notes", {}, True),
        ("check: required\nfield: deal.hearing_notes", {"hearing_notes": None}, True),
        ("check: required\nfield: deal.hearing_notes", {"hearing_notes": " \u3000 "}, True),
        ("check: required\nfield: deal.stakeholders", {"stakeholders": []}, True),
        ("check: required\nfield: deal.amount", {"amount": 0}, False),
        ("check: not_empty\nfield: deal.need", {"need": "x"}, False),
        # length counts characters, not bytes: 9 Japanese characters are 27 bytes of UTF-8
        (
            "check: length\nfield: deal.hearing_notes\nmin: 9",
            {"hearing_notes": "決裁者は本部長です"},
            False,
        ),
        (
            "check: length\nfield: deal.hearing_notes\nmin: 10",
            {"hearing_notes": "決裁者は本部長です"},
            True,
        ),
        # decomposed kana (か + combining dakuten) count as the one character a person sees
        ("check: length\nfield: deal.need\nmin: 2\nmax: 2", {"need": "か\u3099か\u3099"}, False),
        ("check: length\nfield: deal.need\nmax: 3", {"need": "abcd"}, True),
        ("check: length\nfield: deal.need\nmax: 3", {}, False),
        ("check: min_length\nfield: deal.need\nmin: 3", {"need": "  ab  "}, True),
        ("check: pattern\nfield: deal.name\nregex: '^商談 [0-9]+$'", {"name": "商談 12"}, False),
        ("check: pattern\nfield: deal.name\nregex: '^商談 [0-9]+$'", {"name": "商談 十二"}, True),
        (
            "check: pattern\nfield: deal.name\nregex: '^opp'\nignore_case: true",
            {"name": "OPP-1"},
            False,
        ),
        ("check: pattern\nfield: deal.name\nregex: x\noptional: true", {}, False),
        ("check: pattern\nfield: deal.name\nregex: x", {}, True),
        (
            "check: one_of\nfield: deal.fs_acceptance\nvalues: [Accepted, Rejected]",
            {"fs_acceptance": "Accepted"},
            False,
        ),
        (
            "check: one_of\nfield: deal.fs_acceptance\nvalues: [Accepted, Rejected]",
            {"fs_acceptance": "accepted"},
            True,
        ),
        ("check: one_of\nfield: deal.stage\nvalues: [true]", {"stage": "true"}, False),  # HubSpot
        ("check: one_of\nfield: deal.stage\nvalues: [true]", {"stage": True}, False),
        ("check: one_of\nfield: deal.stage\nvalues: [true]", {"stage": 1}, True),
        ("check: one_of\nfield: deal.stage\nvalues: [3]", {"stage": "3"}, False),
        ("check: range\nfield: deal.amount\nmin: 1000000", {"amount": 1_200_000}, False),
        ("check: range\nfield: deal.amount\nmin: 1000000", {"amount": "1,500,000"}, False),
        ("check: range\nfield: deal.amount\nmin: 1000000", {"amount": 999_999.5}, True),
        ("check: range\nfield: deal.amount\nmin: 1\nmax: 10", {"amount": 11}, True),
        ("check: range\nfield: deal.amount\nmin: 1", {"amount": "many"}, True),  # unreadable
        ("check: range\nfield: deal.amount\nmin: 1", {"amount": True}, True),
        ("check: range\nfield: deal.amount\nmin: 1\noptional: true", {}, False),
        (
            "check: url\nfield: deal.call_recording_url\nhosts: ['*.miitel.jp']",
            {"call_recording_url": CALL},
            False,
        ),
        (
            "check: url\nfield: deal.call_recording_url\nhosts: ['*.miitel.jp']",
            {"call_recording_url": "https://miitel.jp.evil.com/x"},
            True,
        ),
        (
            "check: url\nfield: deal.call_recording_url\nhosts: ['*.miitel.jp']",
            {"call_recording_url": "http://app.miitel.jp/x"},
            True,
        ),
        (
            "check: url\nfield: deal.call_recording_url",
            {"call_recording_url": "録音はこちら"},
            True,
        ),
        (
            "check: url\nfield: deal.meeting_recording_url\nhosts: [zoom.us, '*.zoom.us']",
            {"meeting_recording_url": "https://us02web.zoom.us/rec/share/abc"},
            False,
        ),
        (
            "check: url\nfield: deal.meeting_recording_url\nhosts: [zoom.us]\n"
            "schemes: [http, https]",
            {"meeting_recording_url": "http://ZOOM.us/rec"},
            False,
        ),
    ],
)
def test_field_checks(tmp_path: Path, check: str, record: dict[str, Any], is_broken: bool) -> None:
    assert broken(one_rule(tmp_path, check), deal(**record)) is is_broken


# Handed over Monday 2025-03-10 10:00 Tokyo unless a case says otherwise.
@pytest.mark.parametrize(
    ("check", "record", "at", "now", "is_broken"),
    [
        # meeting date set and in the future of the handoff
        (
            "check: date_order\nfirst: handoff.at\nthen: deal.meeting_date",
            {"meeting_date": "2025-03-12T05:00:00+00:00"},
            None,
            None,
            False,
        ),
        (
            "check: date_order\nfirst: handoff.at\nthen: deal.meeting_date",
            {"meeting_date": "2025-03-09T05:00:00Z"},
            None,
            None,
            True,
        ),
        ("check: date_order\nfirst: handoff.at\nthen: deal.meeting_date", {}, None, None, True),
        (
            "check: date_order\nfirst: handoff.at\nthen: deal.meeting_date",
            {"meeting_date": "来週"},
            None,
            None,
            True,
        ),
        # close date (a date) after created (an instant): by day, equal allowed
        (
            "check: date_order\nfirst: deal.created_at\nthen: deal.close_date\n"
            "by: day\nstrict: false",
            {"created_at": "2025-03-10T03:00:00Z", "close_date": "2025-03-10"},
            None,
            None,
            False,
        ),
        (
            "check: date_order\nfirst: deal.created_at\nthen: deal.close_date",
            {"created_at": "2025-03-10T03:00:00Z", "close_date": "2025-03-10"},
            None,
            None,
            True,
        ),
        (
            "check: date_order\nfirst: deal.created_at\nthen: deal.close_date\nby: day",
            {"created_at": "2025-03-10T03:00:00Z", "close_date": "2025-03-09"},
            None,
            None,
            True,
        ),
        # kickoff within 10 business days of the handoff (3/20 is a holiday)
        (
            "check: date_window\nfield: deal.kickoff_date\nmax: 10 business days",
            {"kickoff_date": "2025-03-24"},
            None,
            None,
            False,
        ),
        (
            "check: date_window\nfield: deal.kickoff_date\nmax: 10 business days",
            {"kickoff_date": "2025-03-26"},
            None,
            None,
            True,
        ),
        (
            "check: date_window\nfield: deal.kickoff_date\nmax: 10 business days",
            {"kickoff_date": "2025-03-07"},
            None,
            None,
            True,
        ),
        (
            "check: date_window\nfield: deal.meeting_date\nmin: 1 business day",
            {"meeting_date": "2025-03-10T15:00:00+09:00"},
            None,
            None,
            True,
        ),
        (
            "check: date_window\nfield: deal.meeting_date\nmin: 1 business day",
            {"meeting_date": "2025-03-11T10:00:00+09:00"},
            None,
            None,
            False,
        ),
        (
            "check: date_window\nfield: deal.kickoff_date\nfrom: deal.close_date\n"
            "min: 1 day\nmax: 2 weeks",
            {"close_date": "2025-03-01", "kickoff_date": "2025-03-10"},
            None,
            None,
            False,
        ),
        # SLA: FS answers within 1 business day of the handoff
        (
            "check: sla\nend: deal.fs_accepted_at\nwithin: 1 business day",
            {"fs_accepted_at": "2025-03-11T09:59:00+09:00"},
            None,
            None,
            False,
        ),
        (
            "check: sla\nend: deal.fs_accepted_at\nwithin: 1 business day",
            {"fs_accepted_at": "2025-03-11T10:01:00+09:00"},
            None,
            None,
            True,
        ),
        # pending: no answer yet, deadline not passed: not a violation; after it, a violation
        (
            "check: sla\nend: deal.fs_accepted_at\nwithin: 1 business day",
            {},
            None,
            "2025-03-11 09:59",
            False,
        ),
        (
            "check: sla\nend: deal.fs_accepted_at\nwithin: 1 business day",
            {},
            None,
            "2025-03-11 10:01",
            True,
        ),
        # Friday 17:30 + 1 business hour runs to Monday 09:30; the weekend does not count
        (
            "check: sla\nend: deal.fs_accepted_at\nwithin: 1 business hour",
            {"fs_accepted_at": "2025-03-17T09:29:00+09:00"},
            "2025-03-14 17:30",
            None,
            False,
        ),
        (
            "check: sla\nend: deal.fs_accepted_at\nwithin: 1 business hour",
            {"fs_accepted_at": "2025-03-17T09:31:00+09:00"},
            "2025-03-14 17:30",
            None,
            True,
        ),
        # Wednesday 3/19 17:30 → Friday 3/21 09:30: Thursday 3/20 is Vernal Equinox Day
        (
            "check: sla\nend: deal.fs_accepted_at\nwithin: 1 business hour",
            {"fs_accepted_at": "2025-03-21T09:30:00+09:00"},
            "2025-03-19 17:30",
            None,
            False,
        ),
        # wall-clock durations do count weekends
        (
            "check: sla\nend: deal.fs_accepted_at\nwithin: 24 hours",
            {"fs_accepted_at": "2025-03-17T09:29:00+09:00"},
            "2025-03-14 17:30",
            None,
            True,
        ),
        # the clock has not started: not a violation
        (
            "check: sla\nstart: deal.meeting_date\nend: deal.fs_accepted_at\nwithin: 2h",
            {},
            None,
            "2025-12-31 10:00",
            False,
        ),
        # instants in other zones are the same instants
        (
            "check: sla\nend: deal.fs_accepted_at\nwithin: 30 minutes",
            {"fs_accepted_at": "2025-03-10T01:29:00Z"},
            None,
            None,
            False,
        ),
    ],
)
def test_time_checks(
    tmp_path: Path,
    check: str,
    record: dict[str, Any],
    at: str | None,
    now: str | None,
    is_broken: bool,
) -> None:
    ctx = handoff("IS→FS", "deal", record, at=at or "2025-03-10 10:00", now=now)
    assert broken(one_rule(tmp_path, check), ctx) is is_broken


RECORDING = """
check: artifact
kind: call
before: 30 days
after: 1 day
hosts: ['*.miitel.jp', miitel.com]
url_field: deal.call_recording_url
"""


@pytest.mark.parametrize(
    ("artifacts", "record", "is_broken"),
    [
        ([Artifact("call", CALL, jst("2025-03-07 15:00"))], {}, False),
        ([Artifact("meeting", CALL, jst("2025-03-07 15:00"))], {}, True),  # wrong kind
        ([Artifact("call", CALL, jst("2025-01-07 15:00"))], {}, True),  # months before
        ([Artifact("call", CALL, jst("2025-03-12 15:00"))], {}, True),  # 2 days after
        ([Artifact("call", "https://example.com/rec", jst("2025-03-10 09:00"))], {}, True),
        ([], {"call_recording_url": "https://miitel.com/calls/1"}, False),  # the URL field
        ([], {"call_recording_url": "https://drive.example.com/rec.mp3"}, True),
        ([], {}, True),
    ],
)
def test_artifact_attached(
    tmp_path: Path, artifacts: list[Artifact], record: dict[str, Any], is_broken: bool
) -> None:
    ctx = handoff("IS→FS", "deal", record, artifacts=artifacts)
    assert broken(one_rule(tmp_path, RECORDING), ctx) is is_broken


TARGET = """
check: related
object: account
require: {check: one_of, field: account.is_target, values: [true]}
"""


@pytest.mark.parametrize(
    ("related", "is_broken"),
    [
        ({"account": {"is_target": True}}, False),
        ({"account": {"is_target": "true"}}, False),  # HubSpot sends text
        ({"account": {"is_target": False}}, True),
        ({"account": {}}, True),
        ({}, True),  # no account linked
    ],
)
def test_related_record(
    tmp_path: Path, related: dict[str, dict[str, Any]], is_broken: bool
) -> None:
    ctx = handoff("MK→IS", "lead", {"company": "x"}, related=related)
    assert broken(one_rule(tmp_path, TARGET, "MK→IS"), ctx) is is_broken


BANT = """
check: all
of:
  - {check: required, field: deal.budget}
  - check: any
    of:
      - {check: required, field: deal.authority}
      - {check: length, field: deal.hearing_notes, min: 40}
  - check: not
    of: {check: one_of, field: deal.stage, values: [Closed Lost]}
"""


@pytest.mark.parametrize(
    ("record", "is_broken"),
    [
        ({"budget": "300万円", "authority": "部長"}, False),
        ({"budget": "300万円", "hearing_notes": "決" * 40}, False),
        ({"budget": "300万円"}, True),
        ({"authority": "部長"}, True),
        ({"budget": "300万円", "authority": "部長", "stage": "Closed Lost"}, True),
    ],
)
def test_all_any_not(tmp_path: Path, record: dict[str, Any], is_broken: bool) -> None:
    assert broken(one_rule(tmp_path, BANT), deal(**record)) is is_broken


@pytest.mark.parametrize(
    ("expr", "record", "is_broken"),
    [
        ("deal.amount >= 1000000 and deal.stage != 'Closed Lost'", {"amount": 2_000_000}, False),
        ("deal.amount >= 1000000", {"amount": 10}, True),
        ("not empty(deal.need) and len(deal.need) > 2", {"need": "申し送り"}, False),
        ("deal.amount > 1", {}, True),  # None > 1 fails: a broken rule, not a crash
        ("account.is_target == True", {}, True),
        ("now > handoff.at", {}, False),
    ],
)
def test_expression(tmp_path: Path, expr: str, record: dict[str, Any], is_broken: bool) -> None:
    rulebook = one_rule(tmp_path, f"check: expression\nexpr: {expr!r}")
    ctx = handoff("IS→FS", "deal", record, now="2025-03-11 10:00")
    assert broken(rulebook, ctx) is is_broken


def test_explain_says_why(tmp_path: Path) -> None:
    rulebook = rulebook_from(
        tmp_path,
        """
rule_sets:
  - boundary: IS->FS
    rules:
      - {id: sla, check: sla, end: deal.fs_accepted_at, within: 1 business day, message: 遅い}
      - {id: notes, check: length, field: deal.hearing_notes, min: 20, message: 短い}
      - id: reason
        when: {check: one_of, field: deal.fs_acceptance, values: [Rejected]}
        check: required
        field: deal.reject_reason
        message: 理由なし
""",
    )
    ctx = handoff("IS→FS", "deal", {"hearing_notes": "短いメモ"}, now="2025-03-10 12:00")
    results = {r.rule.id: r for r in rulebook.explain(ctx, CALENDAR)}
    assert results["sla"].status.value == "kept"
    assert results["sla"].reason == "pending until 2025-03-11 10:00"
    assert results["notes"].status.value == "broken"
    assert results["notes"].reason == "deal.hearing_notes has 4 characters, fewer than 20"
    assert results["reason"].status.value == "n/a"
    assert results["reason"].reason.startswith("condition does not hold: deal.fs_acceptance")
