"""``tasuki serve``: the webhook app under waitress, a production WSGI server in pure Python."""

from __future__ import annotations

import logging

import click

from tasuki import logs
from tasuki.console.demo import serve_demo
from tasuki.preflight import SERVE, checked_settings
from tasuki.settings import Settings, load_settings
from tasuki.startup import build
from webhooks import create_app, require_webhook_secret, services
from webhooks.hosting import SERVER_BODY_LIMIT, run

log = logging.getLogger(__name__)

__all__ = ["SERVER_BODY_LIMIT", "serve", "serve_command"]


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8080, threads: int = 8) -> None:
    """Serve the webhook app on ``host:port`` until the process is stopped.

    Refuses to start without ``TASUKI_WEBHOOK_SECRET`` or with a broken rules or KPI file
    (:class:`~tasuki.errors.ConfigError`), or when the store is unreachable.
    """
    require_webhook_secret(settings)
    rt = build(settings)
    rt.validate()
    app = create_app(settings, store=rt.store)
    logs.started("serve", settings, address=f"http://{host}:{port}", threads=str(threads))
    if services(app).intake.journal.persisted() is False:
        log.warning(
            "Redis keeps no append-only file: a webhook answered 200 lives in Redis until this "
            "server stores it (milliseconds), and a Redis restart in between would lose it; "
            "run Redis with appendonly yes"
        )
    run(app, host, port, threads)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option("--threads", default=8, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--demo",
    is_flag=True,
    help="The console on the demo's data (after `make demo`), with a one-time sign-in link.",
)
def serve_command(host: str, port: int, threads: int, demo: bool) -> None:
    """Receive webhooks and serve the Sales Ops console (needs TASUKI_WEBHOOK_SECRET,
    TASUKI_REDIS_URL and, for the console, TASUKI_OPS_TOKEN)."""
    if demo:
        serve_demo(load_settings(), host, port, threads)
        return

    # Every file, the CRM's sign-in and every receiver's secret, every problem at once.
    settings = checked_settings(SERVE)
    logs.setup(settings, "serve")
    serve(settings, host, port, threads)
