"""What the Slack tests share besides fixtures: constants, factories and helpers (the
fixtures in conftest.py use them too; tests import them from here, never from conftest)."""

from __future__ import annotations

BOT_TOKEN = "xoxb-test-bot-token"
