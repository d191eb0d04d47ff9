"""Escaping: CRM text in a notification never pings, formats or links in Slack, and is text in
the HTML mail; only http(s) URLs become links."""

from __future__ import annotations

from tasuki.notify.message import Line, Link, Message, mail, slack_payload
from tests.notify.support import HOSTILE_NAME

MESSAGE = Message(
    title=f"Handoff failed: {HOSTILE_NAME}",
    intro=f"The handoff of {HOSTILE_NAME} failed. <@U123> _x_ ~y~ `z`",
    lines=(
        Line("FIELD_CUSTOM_VALIDATION_EXCEPTION <refused> & *so*"),
        Line(
            f"{HOSTILE_NAME} recording", Link("https://zoom.us/rec/share/a?b=1&c=<2>", "watch|it")
        ),
        Line("a trap", Link("javascript:alert(document.cookie)", "click")),
    ),
    link=Link("https://acme.my.salesforce.com/006A", "Open in the CRM"),
)


def test_slack_gets_plain_text_for_crm_text_and_inert_mrkdwn_around_links() -> None:
    payload = slack_payload(MESSAGE)
    shown = str(payload)
    for raw in ("<!channel>", "<@U123>", "<b>", "<refused>", "javascript"):
        assert raw not in shown
    assert payload["mrkdwn"] is False
    header, intro, plain, linked, context = payload["blocks"]
    assert header["text"]["type"] == intro["text"]["type"] == plain["text"]["type"] == "plain_text"
    assert "&lt;@U123&gt; _x_ ~y~ `z`" in intro["text"]["text"]
    assert plain["text"]["text"] == "• FIELD_CUSTOM_VALIDATION_EXCEPTION &lt;refused&gt; &amp; *so*"
    assert linked["text"]["type"] == "mrkdwn"
    first, second = linked["text"]["text"].split("\n")
    assert first == (
        "• &lt;!channel&gt; ∗Big∗ deal &amp; &lt;b&gt;co&lt;/b&gt; recording "
        "<https://zoom.us/rec/share/a?b=1&amp;c=%3C2%3E|watch¦it>"
    )
    assert second == "• a trap click"
    assert context["elements"][0]["text"] == "<https://acme.my.salesforce.com/006A|Open in the CRM>"


def test_the_mail_is_autoescaped_html_and_control_free_text() -> None:
    subject, text, html = mail(
        Message(title="a\x1b[31mred\x1b[0m", intro=HOSTILE_NAME, lines=MESSAGE.lines)
    )
    assert subject == "a[31mred[0m" and "\x1b" not in text
    assert "&lt;!channel&gt; *Big* deal &amp; &lt;b&gt;co&lt;/b&gt;" in html
    assert "<b>" not in html and "javascript" not in html and "javascript" not in text
    assert '<a href="https://zoom.us/rec/share/a?b=1&amp;c=%3C2%3E">watch|it</a>' in html
