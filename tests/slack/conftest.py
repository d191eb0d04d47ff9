"""Fixtures for the Slack tests: an emulated workspace over HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.slack.slack_emulator import RunningSlack, Workspace, serve
from tests.slack.support import BOT_TOKEN


@pytest.fixture
def workspace() -> Workspace:
    """A workspace with the bot's token (the scopes docs/notifications.md asks for)."""
    ws = Workspace()
    ws.add_token(BOT_TOKEN)
    return ws


@pytest.fixture
def slack(workspace: Workspace) -> Iterator[RunningSlack]:
    """``workspace`` served on 127.0.0.1."""
    running = serve(workspace)
    yield running
    running.stop()
