"""Fixtures of the notification tests: the emulated Slack workspace with the org's members and
channels, and a real SMTP server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trustme

from tests.notify.channels import Channels
from tests.notify.support import BOT_TOKEN, IN_SLACK, PEOPLE, Inbox, MailServer, free_port
from tests.slack.slack_emulator import RunningSlack, Workspace, serve


@pytest.fixture
def workspace() -> Workspace:
    """A workspace with the bot's token, the org's members (FS2 has no account) and channels."""
    ws = Workspace()
    ws.add_token(BOT_TOKEN)
    for uid in IN_SLACK:
        name, email, _, _ = PEOPLE[uid]
        ws.add_user(email, name)
    return ws


@pytest.fixture
def channels(workspace: Workspace) -> Channels:
    """The channels the notification rules of the tests send to."""
    return Channels(
        handoffs=workspace.add_channel("handoffs"),
        sales_ops=workspace.add_channel("sales-ops"),
        ops=workspace.add_channel("tasuki-ops"),
        managers=workspace.add_channel("sales-managers"),
    )


@pytest.fixture
def slack(workspace: Workspace, channels: Channels) -> Iterator[RunningSlack]:
    """The workspace served on 127.0.0.1."""
    running = serve(workspace)
    yield running
    running.stop()


@pytest.fixture
def mail_server() -> Iterator[MailServer]:
    """A plain SMTP server on 127.0.0.1 keeping what it accepts."""
    server = MailServer(Inbox(), free_port(), trustme.CA())
    server.start()
    yield server
    server.stop()
