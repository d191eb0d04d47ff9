"""What the webhook app's views share, and the one condition it starts on.

Kept apart from the app factory in ``webhooks/__init__.py`` so the views and the console, which
the factory imports, can import it without importing the factory back.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app
from rq import Queue

from tasuki.errors import ConfigError, Problem
from tasuki.settings import Settings
from tasuki.store.db import Store
from webhooks.intake import Intake


@dataclass(frozen=True)
class Services:
    """What the app's views share, kept in ``app.extensions["tasuki"]``."""

    settings: Settings
    store: Store
    queue: Queue
    intake: Intake


def services(app: Flask | None = None) -> Services:
    """The :class:`Services` of ``app`` (default: the app handling the current request)."""
    found: Services = (app or current_app).extensions["tasuki"]
    return found


def require_webhook_secret(settings: Settings) -> None:
    """Raise :class:`ConfigError` when ``TASUKI_WEBHOOK_SECRET`` is unset: a service that
    checks signatures has no default secret."""
    if settings.webhook_secret is None:
        raise ConfigError(
            [Problem("environment", 1, 1, "TASUKI_WEBHOOK_SECRET is not set; refusing to start")]
        )
