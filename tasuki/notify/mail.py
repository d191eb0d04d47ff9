"""E-mail through the standard library's SMTP client: plain, STARTTLS or TLS from the start.

One connection per message (tasuki sends a few a day per person, not bulk mail), driven one
command at a time so that the outcome of every failure is known:

- anything before ``DATA`` (connection refused or dropped, a 4xx reply to MAIL or RCPT): the
  server has taken nothing; the message stays owed (``pending``) and the job fails so it runs
  again; a 5xx reply there is a refusal (``failed``, with the server's reply);
- a connection lost while the message is being transmitted or before the server's final reply:
  the server may have queued it; ``unknown``, never sent again by itself;
- the final reply: 250 ``sent`` (the reply, usually with the queue id, kept), 4xx ``pending``,
  5xx ``failed``.

Each message carries a ``Message-ID`` derived from its ledger key, so a mail reader also sees
two copies as one should a person ever send one again by hand.
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from collections.abc import Sequence
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, parseaddr

from tasuki.messaging import SmtpSettings
from tasuki.notify.ledger import Status
from tasuki.notify.message import Mail
from tasuki.notify.outcome import Outcome

TIMEOUT_SECONDS = 30
"""How long one SMTP command may take before the server counts as gone."""


def _reply(code: int, text: bytes | str) -> str:
    shown = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return f"{code} {shown}".strip()


def _by_code(code: int, text: bytes | str) -> Outcome:
    """A refusal before the message was handed over: 4xx try again later, 5xx for good."""
    status = Status.PENDING if 400 <= code < 500 else Status.FAILED
    return Outcome(status, error=_reply(code, text))


def build(mail: Mail, sender: str, to: Sequence[str], message_key: str) -> EmailMessage:
    """The MIME message: ``multipart/alternative`` with the text part first, then the HTML."""
    msg = EmailMessage(policy=policy.SMTP)  # CRLF line ends: smtplib sends bytes as they are
    msg["Subject"] = mail.subject
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Date"] = formatdate(localtime=False)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "tasuki.invalid"
    digest = hashlib.sha256(message_key.encode()).hexdigest()[:32]
    msg["Message-ID"] = f"<tasuki.{digest}@{domain}>"
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies, please
    # Quoted-printable keeps every line short (SMTP refuses lines over 998 octets) and the text
    # readable in the raw message.
    msg.set_content(mail.text, cte="quoted-printable")
    msg.add_alternative(mail.html, subtype="html", cte="quoted-printable")
    return msg


class Mailer:
    """Sends mail through the configured SMTP server."""

    def __init__(self, settings: SmtpSettings, *, timeout: float = TIMEOUT_SECONDS) -> None:
        self.settings = settings
        self.timeout = timeout
        self.sent = 0

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self.settings.ca_file:
            context.load_verify_locations(cafile=self.settings.ca_file)
        return context

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if s.security == "ssl":
            return smtplib.SMTP_SSL(s.host, s.port, timeout=self.timeout, context=self._context())
        conn = smtplib.SMTP(s.host, s.port, timeout=self.timeout)
        if s.security == "starttls":
            conn.starttls(context=self._context())
            conn.ehlo()
        return conn

    def check(self) -> str | None:
        """Connect (TLS as configured), sign in and say goodbye: None when all of it works,
        else what went wrong."""
        try:
            conn = self._connect()
        except (OSError, smtplib.SMTPException) as exc:
            return f"cannot connect: {exc}"
        try:
            if self.settings.username:
                password = self.settings.password
                conn.login(self.settings.username, password.get_secret_value() if password else "")
            return None
        except (OSError, smtplib.SMTPException) as exc:
            return f"sign-in refused: {exc}"
        finally:
            try:
                conn.quit()
            except (OSError, smtplib.SMTPException):
                conn.close()

    def send(self, mail: Mail, to: Sequence[str], message_key: str) -> Outcome:
        """Send ``mail`` to ``to``; the outcome as the ledger records it (see the module)."""
        s = self.settings
        msg = build(mail, s.sender, to, message_key)
        envelope_from = parseaddr(s.sender)[1] or s.sender
        try:
            conn = self._connect()
        except smtplib.SMTPNotSupportedError as exc:
            return Outcome(Status.FAILED, error=f"the server does not offer STARTTLS: {exc}")
        except (OSError, smtplib.SMTPException) as exc:
            return Outcome(Status.PENDING, error=f"cannot reach {s.url}: {exc}")
        try:
            try:
                if s.username:
                    conn.login(s.username, s.password.get_secret_value() if s.password else "")
                conn.ehlo_or_helo_if_needed()
                code, text = conn.mail(envelope_from)
                if code != 250:
                    conn.rset()
                    return _by_code(code, text)
                refused = []
                for address in to:
                    code, text = conn.rcpt(address)
                    if code not in (250, 251):
                        refused.append((address, code, text))
                if len(refused) == len(to):
                    conn.rset()
                    address, code, text = max(refused, key=lambda r: r[1])
                    again = Status.PENDING if 400 <= code < 500 else Status.FAILED
                    return Outcome(again, error=f"{address}: {_reply(code, text)}")
            except smtplib.SMTPAuthenticationError as exc:
                return Outcome(Status.FAILED, error=_reply(exc.smtp_code, exc.smtp_error))
            except smtplib.SMTPNotSupportedError as exc:  # e.g. no AUTH offered: set-up
                return Outcome(Status.FAILED, error=f"{s.url}: {exc}")
            except smtplib.SMTPResponseException as exc:
                return _by_code(exc.smtp_code, exc.smtp_error)
            except (OSError, smtplib.SMTPException) as exc:
                return Outcome(Status.PENDING, error=f"{s.url}: {exc}")
            try:
                code, text = conn.data(msg.as_bytes())
            except smtplib.SMTPDataError as exc:  # DATA itself refused: nothing handed over
                return _by_code(exc.smtp_code, exc.smtp_error)
            except (OSError, smtplib.SMTPException) as exc:
                return Outcome(Status.UNKNOWN, error=f"lost during DATA: {exc}")
            if code != 250:
                return _by_code(code, text)
            self.sent += 1
            note = "".join(f"; refused {a}: {_reply(c, t)}" for a, c, t in refused)
            return Outcome(Status.SENT, result=_reply(code, text) + note)
        finally:
            try:
                conn.quit()
            except (OSError, smtplib.SMTPException):
                conn.close()
