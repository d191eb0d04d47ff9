"""``tasuki serve --demo``: the console on the demo's data, opened with a one-time link.

No identity provider and no password: an ``ops`` user named :data:`DEMO_USER` (without a
password, so it can only come in through such a link) and a link valid for
:data:`~tasuki.console.accounts.LINK_LIFETIME`, printed once. Secrets the demo's environment
lacks (``TASUKI_OPS_TOKEN``, ``TASUKI_WEBHOOK_SECRET``) are made up for this process only.
"""

from __future__ import annotations

import secrets
from dataclasses import replace

import click
from pydantic import SecretStr
from sqlalchemy import func, select

from tasuki.console.accounts import Role, add_user, login_link_token
from tasuki.errors import TasukiError
from tasuki.settings import Settings
from tasuki.store.db import Store, open_store
from tasuki.store.models import ConsoleUser, Handoff
from webhooks import create_app
from webhooks.hosting import run

DEMO_USER = "demo"
"""The console user the demo's link signs in."""


class NoDemoData(TasukiError):
    """The store has no handoffs yet: ``make demo`` (``tasuki demo``) comes first."""


def with_demo_secrets(settings: Settings) -> Settings:
    """``settings`` with one-off secrets where the environment gives none."""
    return replace(
        settings,
        webhook_secret=settings.webhook_secret or SecretStr(secrets.token_hex(16)),
        ops_token=settings.ops_token or SecretStr(secrets.token_urlsafe(32)),
    )


def demo_link(store: Store, base_url: str) -> str:
    """A one-time sign-in link for :data:`DEMO_USER` (added as ``ops`` on first use).

    Raises :class:`NoDemoData` when the store has no handoffs."""
    with store.session() as s:
        if not s.scalar(select(func.count()).select_from(Handoff)):
            raise NoDemoData("the store has no handoffs yet: run `make demo` first")
        known = s.scalar(select(ConsoleUser.id).where(ConsoleUser.username == DEMO_USER))
    if known is None:
        add_user(store, DEMO_USER, Role.OPS)
    return f"{base_url.rstrip('/')}/console/login/link/{login_link_token(store, DEMO_USER)}"


def serve_demo(settings: Settings, host: str, port: int, threads: int) -> None:
    """Serve webhooks and the console on the demo's store and print the sign-in link."""
    settings = with_demo_secrets(settings)
    store = open_store(settings.database_url)
    link = demo_link(store, f"http://{host}:{port}")
    app = create_app(settings, store=store)
    click.echo(f"The Sales Ops console on the demo's data; sign in once with:\n\n  {link}\n")
    click.echo("(valid 15 minutes, for one sign-in; Ctrl-C stops the server)")
    run(app, host, port, threads)
