"""A small org for the notification tests, the settings that point tasuki at the emulated Slack
workspace and a real SMTP server (aiosmtpd, in a thread), and the times everything is set at.

The org lives in the embedded CRM and reaches the store through the real jobs
(``worker.sync_records``): the notifications are found from what the pipeline made of it.

Times: ``NOW`` is the next business day's 10:30 in Tokyo after today, so that the verdicts the
pipeline computes (at the real clock) are never later than the sweeps the tests run at ``NOW``.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from sqlalchemy import select

import worker
from connectors.local import LocalCrm
from tasuki import runtime, startup
from tasuki.calendar import BusinessCalendar
from tasuki.demo.org import define_schema
from tasuki.queue import connect
from tasuki.settings import Config, Settings, load_settings
from tasuki.store.db import Store
from tasuki.store.models import NotificationEntry

BOT_TOKEN = "xoxb-test-bot-token"
CAL = BusinessCalendar()
TZ = CAL.tz


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=TZ)


TODAY = datetime.now(UTC).astimezone(TZ).date()
DAY = CAL.next_business_day(TODAY)
"""The business day the tests' sweeps run on."""
PREV = DAY - timedelta(days=1)
while not CAL.is_business_day(PREV):
    PREV -= timedelta(days=1)
NOW = _at(DAY, 10, 30)
"""When the sweeps run: a business day, in working hours, after every verdict's time."""


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """A wall-clock time in Tokyo."""
    return _at(day, hour, minute)


PEOPLE = {
    "MK1": ("Mori Kana", "mk1@acme.test", "Marketing", None),
    "IS1": ("Ito Sho", "is1@acme.test", "Inside Sales", None),
    "FS1": ("Fujita Saki", "fs1@acme.test", "Field Sales", "FSM"),
    "FS2": ("Fukuda Sou", "fs2@acme.test", "Field Sales", None),
    "FSM": ("Furuya Mai", "fsm@acme.test", "Field Sales", None),
}
"""User id → (name, e-mail, department, manager). FS2 has no Slack account and no manager."""
IN_SLACK = ("MK1", "IS1", "FS1", "FSM")

HOSTILE_NAME = "<!channel> *Big* deal & <b>co</b>"
"""A deal name that would ping a channel and format if it were not escaped."""


def config_with(base: Config, notifications: Path, **meeting: Any) -> Config:
    """The default config, users' managers mapped (``ManagerId``), these notification rules."""
    user = base.objects["user"]
    local = user["local"].model_copy(
        update={"fields": {**user["local"].fields, "manager": "ManagerId"}}
    )
    return base.model_copy(
        update={
            "objects": {**base.objects, "user": {**user, "local": local}},
            "notifications": [str(notifications)],
            "meeting": base.meeting.model_copy(update=meeting),
        }
    )


def notify_settings(
    settings: Settings,
    rules_yaml: str,
    *,
    slack_url: str | None = None,
    smtp_port: int | None = None,
    extra_env: Mapping[str, str] | None = None,
    **meeting: Any,
) -> Settings:
    """``settings`` with the notification rules ``rules_yaml`` (written beside the data) and the
    environment of a deployment that uses the emulated Slack and the local SMTP server."""
    path = settings.data_dir.parent / "notifications.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(rules_yaml, encoding="utf-8")
    env = {"TASUKI_DATA_DIR": str(settings.data_dir), "TASUKI_WEBHOOK_SECRET": "s"}
    if slack_url:
        env |= {"TASUKI_SLACK_BOT_TOKEN": BOT_TOKEN, "TASUKI_SLACK_API_URL": slack_url}
    if smtp_port:
        env |= {
            "TASUKI_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
            "TASUKI_SMTP_FROM": "tasuki <tasuki@acme.test>",
        }
    env |= dict(extra_env or {})
    return load_settings(env, config=config_with(settings.config, path, **meeting))


def new_crm(settings: Settings) -> LocalCrm:
    """The embedded CRM with the org's people (and their managers)."""
    crm = LocalCrm(":memory:")
    define_schema(crm, settings.config)
    for uid, (name, email, dept, manager) in PEOPLE.items():
        values = {"Name": name, "Email": email, "Department": dept}
        if manager:
            values["ManagerId"] = manager
        crm.upsert("User", uid, values, at=NOW - timedelta(days=30))
    return crm


def handoff(
    crm: LocalCrm,
    deal_id: str,
    handed_at: datetime,
    *,
    to: str = "FS1",
    name: str | None = None,
    **fields: Any,
) -> None:
    """A deal IS1 books and hands to ``to`` at ``handed_at`` (an IS→FS handoff)."""
    crm.upsert(
        "Opportunity",
        deal_id,
        {
            "OwnerId": "IS1",
            "StageName": "Meeting Booked",
            "Name": name or f"Deal {deal_id}",
            **fields,
        },
        at=handed_at - timedelta(days=1),
        by="IS1",
    )
    crm.upsert("Opportunity", deal_id, {"OwnerId": to}, at=handed_at, by="IS1")


def live(settings: Settings, store: Store, crm: LocalCrm) -> runtime.Runtime:
    """A runtime on ``store`` and ``crm`` with the in-process queue."""
    return startup.assemble(settings, store, crm, redis_connection=connect(settings))


def sync(rt: runtime.Runtime, crm: LocalCrm) -> None:
    """Bring every CRM change into the store through the real jobs."""
    with runtime.activate(rt):
        for obj in ("Lead", "Account", "Opportunity"):
            ids = sorted({r for _, o, r, _ in crm.pending_notices(10_000) if o == obj})
            if ids:
                worker.sync_records(obj, ids)
        crm.mark_delivered([seq for seq, *_ in crm.pending_notices(10_000)])


def synced(settings: Settings, store: Store, crm: LocalCrm) -> runtime.Runtime:
    """A runtime on ``store`` and ``crm`` (see :func:`live`) with every CRM change synced."""
    rt = live(settings, store, crm)
    sync(rt, crm)
    return rt


def ledger_rows(store: Store) -> list[tuple[str, str, str, str, str]]:
    """(rule, recipient, status, medium, error) of every ledger row, in the order written."""
    with store.session() as s:
        return [
            (e.rule_id, e.recipient, e.status, e.medium, e.error)
            for e in s.scalars(select(NotificationEntry).order_by(NotificationEntry.id))
        ]


def free_port() -> int:
    """A TCP port nothing listens on (yet)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Inbox:
    """A mail server's handler: keeps what it accepted; refuses the addresses in ``refuse``."""

    messages: list[tuple[Envelope, EmailMessage]] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        parsed = message_from_bytes(raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append((envelope, parsed))
        await asyncio.sleep(0)
        return f"250 2.0.0 Ok: queued as Q{len(self.messages)}"

    def to(self, address: str) -> list[EmailMessage]:
        """Messages whose envelope named ``address``."""
        return [m for env, m in self.messages if address in env.rcpt_tos]


@dataclass
class MailServer:
    """An aiosmtpd server in a thread: plain, STARTTLS (``tls``) or TLS from the start
    (``ssl``), with AUTH when ``login`` is given."""

    inbox: Inbox
    port: int
    ca: trustme.CA
    security: str = "none"
    login: tuple[str, str] | None = None
    controller: Controller | None = None

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            self.login is not None
            and isinstance(data, LoginPassword)
            and (data.login.decode(), data.password.decode()) == self.login
        )
        return AuthResult(success=ok, handled=False)  # a refusal answers 535

    def start(self) -> None:
        """Listen on :attr:`port`."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        options: dict[str, Any] = {}
        if self.login is not None:
            # aiosmtpd counts only STARTTLS as TLS for auth_require_tls.
            options |= {
                "authenticator": self._authenticate,
                "auth_require_tls": self.security == "starttls",
            }
        if self.security == "starttls":
            options |= {"tls_context": context, "require_starttls": True}
        if self.security == "ssl":
            options |= {"ssl_context": context}
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port, **options)
        self.controller.start()

    def stop(self) -> None:
        """Stop listening (the port refuses connections)."""
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def ca_file(self, folder: Path) -> str:
        """The test CA as a PEM file (``TASUKI_SMTP_CA_FILE``)."""
        path = folder / "smtp-ca.pem"
        self.ca.cert_pem.write_to_path(str(path))
        return str(path)
