"""E-mail through the standard library's SMTP client against a real SMTP server (aiosmtpd):
STARTTLS and TLS with a sign-in, HTML + text, the server's replies kept; the settings that
describe the server, their mistakes and their masked password."""

from __future__ import annotations

from pathlib import Path

import pytest
import trustme

from tasuki.errors import ConfigError
from tasuki.messaging import SmtpSettings, smtp_from_env
from tasuki.notify.ledger import Status
from tasuki.notify.mail import Mailer
from tasuki.notify.message import Line, Link, Message, mail
from tasuki.settings import load_settings
from tests.notify.support import HOSTILE_NAME, Inbox, MailServer, free_port

MESSAGE = Message(
    title=f"Handoff failed: {HOSTILE_NAME}",
    intro="To fix:",
    lines=(
        Line("ヒアリング内容が不足しています"),
        Line("bad link", Link("javascript:alert(1)", "x")),
    ),
    link=Link("https://acme.my.salesforce.com/006A", "Open in the CRM"),
)


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_a_message_goes_over_tls_with_a_sign_in_as_html_and_text(
    security: str, tmp_path: Path
) -> None:
    server = MailServer(Inbox(), free_port(), trustme.CA(), security, login=("tasuki", "p@ss:w"))
    server.start()
    try:
        scheme = "smtp+starttls" if security == "starttls" else "smtps"
        smtp = smtp_from_env(
            {
                "TASUKI_SMTP_URL": f"{scheme}://tasuki:p%40ss%3Aw@127.0.0.1:{server.port}",
                "TASUKI_SMTP_FROM": "tasuki <tasuki@acme.test>",
                "TASUKI_SMTP_CA_FILE": server.ca_file(tmp_path),
            }
        )
        assert smtp is not None and smtp.security == security
        outcome = Mailer(smtp, timeout=5).send(mail(MESSAGE), ["sato@acme.test"], "k1")
    finally:
        server.stop()
    assert outcome.status is Status.SENT and outcome.result == "250 2.0.0 Ok: queued as Q1"
    [(envelope, msg)] = server.inbox.messages
    assert envelope.mail_from == "tasuki@acme.test" and envelope.rcpt_tos == ["sato@acme.test"]
    assert msg.get_content_type() == "multipart/alternative"
    text, html = (part.get_content() for part in msg.iter_parts())
    assert "ヒアリング内容が不足しています" in text
    assert "https://acme.my.salesforce.com/006A" in text and "javascript" not in text
    # Autoescaped HTML: the deal's markup is text, the javascript: link is no link.
    assert "&lt;!channel&gt; *Big* deal &amp; &lt;b&gt;co&lt;/b&gt;" in html
    assert "<b>co</b>" not in html and "javascript" not in html
    assert '<a href="https://acme.my.salesforce.com/006A">Open in the CRM</a>' in html
    assert msg["Message-ID"].endswith("@acme.test>") and msg["Auto-Submitted"] == "auto-generated"


def test_refusals_keep_the_servers_reply_and_say_whether_to_try_again(tmp_path: Path) -> None:
    inbox = Inbox(
        refuse={
            "gone@acme.test": "550 5.1.1 <gone@acme.test>: Recipient address rejected",
            "full@acme.test": "452 4.2.2 Mailbox full",
        }
    )
    server = MailServer(inbox, free_port(), trustme.CA(), login=("tasuki", "right"))
    server.start()
    try:
        base = SmtpSettings("127.0.0.1", server.port, "none", "t@acme.test", "tasuki")
        from pydantic import SecretStr

        good = Mailer(SmtpSettings(**{**base.__dict__, "password": SecretStr("right")}), timeout=5)
        gone = good.send(mail(MESSAGE), ["gone@acme.test"], "k1")
        full = good.send(mail(MESSAGE), ["full@acme.test"], "k2")
        both = good.send(mail(MESSAGE), ["gone@acme.test", "ok@acme.test"], "k3")
        wrong = Mailer(SmtpSettings(**{**base.__dict__, "password": SecretStr("wrong")}), timeout=5)
        refused = wrong.send(mail(MESSAGE), ["ok@acme.test"], "k4")
    finally:
        server.stop()
    assert gone == (
        Status.FAILED,
        "",
        "gone@acme.test: 550 5.1.1 <gone@acme.test>: Recipient address rejected",
    )
    assert full.status is Status.PENDING and "452 4.2.2 Mailbox full" in full.error
    assert both.status is Status.SENT and "refused gone@acme.test: 550" in both.result
    assert refused.status is Status.FAILED and refused.error.startswith("535")
    assert len(inbox.messages) == 1
    down = Mailer(SmtpSettings("127.0.0.1", free_port(), "none", "t@acme.test"), timeout=5)
    assert down.send(mail(MESSAGE), ["ok@acme.test"], "k5").status is Status.PENDING


def test_the_smtp_settings_from_a_url_or_parts_with_the_password_masked(tmp_path: Path) -> None:
    env = {
        "TASUKI_DATA_DIR": str(tmp_path),
        "TASUKI_SMTP_URL": "smtp+starttls://mailer:hunter2@smtp.acme.test",
        "TASUKI_SMTP_FROM": "tasuki <tasuki@acme.test>",
    }
    settings = load_settings(env)
    smtp = settings.smtp
    assert smtp is not None
    assert (smtp.host, smtp.port, smtp.security, smtp.username) == (
        "smtp.acme.test",
        587,
        "starttls",
        "mailer",
    )
    assert smtp.password is not None and smtp.password.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings)
    assert "smtp+starttls://mailer:***@smtp.acme.test:587" in repr(settings)
    parts = smtp_from_env(
        {
            "TASUKI_SMTP_HOST": "smtp.acme.test",
            "TASUKI_SMTP_SECURITY": "ssl",
            "TASUKI_SMTP_USERNAME": "mailer",
            "TASUKI_SMTP_PASSWORD": "s3cret",
            "TASUKI_SMTP_FROM": "tasuki@acme.test",
        }
    )
    assert parts is not None and (parts.port, parts.security) == (465, "ssl")
    assert smtp_from_env({}) is None
    with pytest.raises(ConfigError) as caught:
        smtp_from_env({"TASUKI_SMTP_URL": "ftp://host", "TASUKI_SMTP_PORT": "none"})
    shown = [str(p) for p in caught.value.problems]
    assert any(p.startswith("environment:1:1: TASUKI_SMTP_URL: scheme 'ftp'") for p in shown)
    assert any("TASUKI_SMTP_PORT" in p for p in shown)
    assert any("TASUKI_SMTP_FROM is not set" in p for p in shown)
