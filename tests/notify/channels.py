"""What the notification tests share besides fixtures: constants, factories and helpers (the
fixtures in conftest.py use them too; tests import them from here, never from conftest)."""

from __future__ import annotations

from dataclasses import dataclass

from tests.notify.support import PEOPLE
from tests.slack.slack_emulator import Workspace


@dataclass
class Channels:
    """The channel ids of the workspace."""

    handoffs: str
    sales_ops: str
    ops: str
    managers: str


def member(workspace: Workspace, uid: str) -> str:
    """The Slack user id of the org's person ``uid``."""
    email = PEOPLE[uid][1]
    return next(u.id for u in workspace.users.values() if u.email == email)
