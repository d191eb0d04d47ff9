"""Renderings of the agenda: hostile CRM text escaped in every one, JSON read back, Slack
threads when long, the mail's parts."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from tasuki.meeting import (
    Agenda,
    AgendaItem,
    AnswerClock,
    ClockState,
    Finding,
    Labelled,
    PersonGroup,
    RecordingLink,
    VerdictSummary,
    email,
    from_json,
    render_markdown,
    render_text,
    slack_blocks,
    to_json,
)
from tasuki.meeting.escape import markdown, plain, safe_url, slack_mrkdwn, slack_text
from tasuki.meeting.formatting import shorten
from tasuki.meeting.slack import MAX_BLOCKS
from tests.meeting.meeting_support import at

PING = "<!channel>"
BOLD = "*bold*"
SCRIPT = "<script>alert(1)</script>"
TERMINAL = "\x1b[2J\x1b[31mred"
HOSTILE_URL = "javascript:alert(document.cookie)"
ODD_URL = "https://x.miitel.jp/c?a=1&b=<2>|3 (x)"


def _item(n: int, *, hostile: bool = False, receiver: str = "山本 拓也") -> AgendaItem:
    title = f"{PING} {BOLD} _it_ ~s~ `code` {n}" if hostile else f"商談 {n}"
    return AgendaItem(
        handoff_id=n,
        object="deal",
        record_id=f"D{n}",
        title=title,
        company=f"{SCRIPT} & Co" if hostile else "株式会社サンプル001",
        contact=f"<@U123> {TERMINAL}" if hostile else "リード 1",
        sender="[red]rich[/red] <b>x</b>" if hostile else "高橋 翔",
        receiver=receiver,
        handed_at=at("2026-06-12", "14:20"),
        hearing_notes=f"notes with {PING}\nand [link](javascript:x) & <i>html</i>"
        if hostile
        else "予算は確保済み",
        bant=(Labelled("Budget", f"{BOLD} ¥3M"), Labelled("Timeline", "")),
        proposals=(Labelled("IS proposal", "<!here> trial"),),
        recordings=(
            RecordingLink("call", "miitel", HOSTILE_URL if hostile else "https://a.miitel.jp/c/1"),
            RecordingLink("call", "crm", ODD_URL),
        ),
        verdict=VerdictSummary(
            "failed", 62, (Finding("is-fs.hearing-notes", "error", f"{PING} too short"),)
        ),
        clock=AnswerClock(
            rule_id="is-fs.fs-answer-sla",
            within="1 business day",
            deadline=at("2026-06-15", "14:20"),
            state=ClockState.PENDING,
            business_seconds=4 * 3600 + 20 * 60,
        ),
        meeting_at=at("2026-06-18", "14:00"),
        link=HOSTILE_URL if hostile else "https://crm.example/D1",
    )


def _agenda(groups: list[PersonGroup], waiting: int = 0, unfixed: int = 0) -> Agenda:
    return Agenda(
        day=date(2026, 6, 15),
        boundary="IS→FS",
        sender_department="IS",
        receiver_department="FS",
        starts_at=at("2026-06-15", "10:00"),
        ends_at=at("2026-06-15", "10:30"),
        timezone="Asia/Tokyo",
        window_start=at("2026-06-12", "10:00"),
        window_end=at("2026-06-15", "10:00"),
        as_of=at("2026-06-15", "10:00"),
        answer_rule="deal.fs_accepted_at within 1 business day of handoff.at",
        groups=tuple(groups),
        waiting=tuple(_item(100 + n, receiver="中村 由美") for n in range(waiting)),
        unfixed=tuple(_item(200 + n) for n in range(unfixed)),
    )


@pytest.fixture
def hostile() -> Agenda:
    name = f"{PING} *Yamamoto* {SCRIPT}"
    return _agenda([PersonGroup(name, (_item(1, hostile=True, receiver=name),))], 1, 1)


def test_the_text_agenda_carries_no_terminal_escapes_or_unsafe_links(hostile: Agenda) -> None:
    text = render_text(hostile)
    assert "\x1b" not in text
    assert "javascript:" not in text.replace("[link](javascript:x)", "")  # only as notes text
    assert "2J[31mred" in text  # the text is kept, the escape character dropped
    assert "https://x.miitel.jp/c?a=1&b=%3C2%3E%7C3%20%28x%29" in text
    assert "Handoff meeting IS→FS, Mon 2026-06-15 10:00–10:30 JST" in text
    assert "handed over Fri 2026-06-12 14:20 JST" in text
    assert "FS answer due Mon 2026-06-15 14:20 JST: 4h20m business time left" in text


def test_the_markdown_agenda_escapes_crm_text(hostile: Agenda) -> None:
    md = render_markdown(hostile)
    for raw in (PING, "<script>", "<@U123>", "<b>", "<i>", BOLD, "`code`"):
        assert raw not in md, raw
    assert not re.search(r"(?<!\\)\]\(javascript:", md)  # no link: its bracket is escaped
    assert "&lt;!channel&gt; \\*bold\\* \\_it\\_ \\~s\\~ \\`code\\`" in md
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in md
    assert "\x1b" not in md
    assert "[call (crm)](https://x.miitel.jp/c?a=1&b=%3C2%3E%7C3%20%28x%29)" in md


def _texts(node: Any) -> Iterator[tuple[str, str]]:
    """(type, text) of every text object in Block Kit JSON."""
    if isinstance(node, dict):
        if node.get("type") in ("plain_text", "mrkdwn") and "text" in node:
            yield node["type"], node["text"]
        for v in node.values():
            yield from _texts(v)
    elif isinstance(node, list | tuple):
        for v in node:
            yield from _texts(v)


def test_slack_blocks_neither_ping_nor_format(hostile: Agenda) -> None:
    messages = slack_blocks(hostile)
    texts = [t for m in messages for t in _texts(list(m.blocks))] + [
        ("mrkdwn", m.text) for m in messages
    ]
    assert texts
    for kind, text in texts:
        assert "<!" not in text and "<@" not in text and "<script" not in text, text
        assert "\x1b" not in text
        if kind == "mrkdwn":
            assert "javascript:" not in text  # never a link (plain_text shows it as text)
            # CRM text never brings its own formatting: only tasuki's own bold (*name*, *FAILED*).
            assert BOLD not in text and "`code`" not in text and "_it_" not in text
    plain_texts = [t for k, t in texts if k == "plain_text"]
    assert any("&lt;!channel&gt; *bold* _it_ ~s~ `code` 1" in t for t in plain_texts)
    assert any("&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in t for t in plain_texts)
    mrkdwn_texts = " ".join(t for k, t in texts if k == "mrkdwn")
    assert "*&lt;!channel&gt; ∗Yamamoto∗ &lt;script&gt;alert(1)&lt;/script&gt;*" in mrkdwn_texts
    # A link only for http(s), its URL unable to end the link early.
    assert "<https://x.miitel.jp/c?a=1&amp;b=%3C2%3E%7C3%20%28x%29|call recording (crm)>" in (
        mrkdwn_texts
    )
    assert all(m.payload()["unfurl_links"] is False for m in messages)


def test_the_html_mail_escapes_crm_text(hostile: Agenda) -> None:
    mail = email(hostile)
    for raw in (PING, "<script>", "<@U123>", "<b>x</b>", "<i>html</i>", 'href="javascript:'):
        assert raw not in mail.html, raw
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in mail.html
    assert "&lt;!channel&gt;" in mail.html
    assert 'href="https://x.miitel.jp/c?a=1&amp;b=%3C2%3E%7C3%20%28x%29"' in mail.html
    assert "\x1b" not in mail.html and "\x1b" not in mail.text
    assert mail.subject == (
        "Handoff meeting IS→FS, Mon 2026-06-15 10:00–10:30 JST: 1 new, 1 waiting, 1 unfixed"
    )
    assert "\n" not in mail.subject
    # The text part is the text agenda, not HTML-escaped.
    assert "Last meeting's failures not yet fixed" in mail.text
    assert "&#39;" not in mail.text and "&lt;" not in mail.text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("javascript:alert(1)", None),
        ("JaVaScRiPt:alert(1)", None),
        ("data:text/html,x", None),
        ("//evil.example/x", None),
        ("https:///x", None),
        ("", None),
        ("https://a.example/x y", "https://a.example/x%20y"),
        ('https://a.example/"onmouseover=x', "https://a.example/%22onmouseover=x"),
        ("http://a.example/p?q=1&r=2#f", "http://a.example/p?q=1&r=2#f"),
        ("https://a.example/%E5%95%86", "https://a.example/%E5%95%86"),
    ],
)
def test_safe_url(value: str, expected: str | None) -> None:
    assert safe_url(value) == expected


def test_the_escaping_helpers() -> None:
    assert plain("a\x1b[31m\u202eb\n\tc") == "a[31mb c"
    assert markdown("a*b_[c](d)|e<f>&") == "a\\*b\\_\\[c\\](d)\\|e&lt;f&gt;&amp;"
    assert slack_text("<!channel> & *x*") == "&lt;!channel&gt; &amp; *x*"
    assert slack_mrkdwn("<!here> *x* _y_ ~z~ `w`") == "&lt;!here&gt; ∗x∗ ˍyˍ ∼z∼ ˋwˋ"


def test_json_round_trip(hostile: Agenda) -> None:
    text = to_json(hostile)
    assert from_json(text) == hostile
    data = json.loads(text)
    assert data["starts_at"] == "2026-06-15T10:00:00+09:00"
    assert data["groups"][0]["items"][0]["clock"]["state"] == "pending"
    assert from_json(text).tz_label == "JST"


def test_a_short_agenda_is_one_slack_message() -> None:
    agenda = _agenda([PersonGroup("山本 拓也", (_item(1), _item(2)))], waiting=1)
    (message,) = slack_blocks(agenda)
    assert not message.reply
    assert message.blocks[0] == {
        "type": "header",
        "text": {
            "type": "plain_text",
            "text": "Handoff meeting IS→FS, Mon 2026-06-15 10:00–10:30 JST",
            "emoji": False,
        },
    }
    assert len(message.blocks) <= MAX_BLOCKS


def test_a_long_agenda_is_a_parent_and_a_thread_reply_per_person() -> None:
    agenda = _agenda(
        [
            PersonGroup("中村 由美", tuple(_item(n) for n in range(3))),
            PersonGroup("山本 拓也", tuple(_item(n) for n in range(3, 23))),
        ],
        waiting=2,
        unfixed=1,
    )
    messages = slack_blocks(agenda)
    parent, *replies = messages
    assert not parent.reply and all(m.reply for m in replies)
    assert "23 new handoffs for 2 FS people" in parent.text
    heads = [m.blocks[0]["text"]["text"] for m in replies]
    assert heads[0] == "*中村 由美* — 3 new handoffs"
    assert heads[1] == "*山本 拓也* — 20 new handoffs"
    assert heads[2] == "*山本 拓也* — 20 new handoffs (continued)"  # 20 items: over 50 blocks
    assert heads[3:] == [
        "*Still waiting for an FS answer from earlier days* (2)",
        "*Last meeting's failures not yet fixed* (1)",
    ]
    assert all(len(m.blocks) <= MAX_BLOCKS for m in messages)
    shown = sum(1 for m in replies for b in m.blocks if b["type"] == "section" and "商談" in str(b))
    assert shown == 26  # every handoff once


def test_an_empty_agenda_says_so() -> None:
    agenda = _agenda([])
    assert "No new IS→FS handoffs since the last meeting." in render_text(agenda)
    assert "No new IS→FS handoffs since the last meeting." in render_markdown(agenda)
    assert len(slack_blocks(agenda)) == 1
    assert "0 new handoffs for 0 FS people" in email(agenda).html


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short  text\n here", 40, "short text here"),
        ("The customer wants to standardise handoffs across teams", 30, "The customer wants to…"),
        ("申し送りの標準化を来期初めに", 10, "申し送り…"),
        ("abcdefghij", 5, "abcd…"),
    ],
)
def test_shorten(text: str, limit: int, expected: str) -> None:
    assert shorten(text, limit) == expected
