"""``tasuki serve``: the webhook app under waitress, a production WSGI server in pure Python."""

from __future__ import annotations

import logging
import threading

import click
from flask import Flask

from tasuki.settings import Settings
from webhooks import services

log = logging.getLogger(__name__)

SERVER_BODY_LIMIT = 4 * 1024 * 1024
"""Waitress buffers a whole request before the app sees it: past this it answers 413 itself,
so a huge body costs neither disk nor memory. Between 1 MiB and this the app answers a JSON 413."""


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8080, threads: int = 8) -> None:
    """Serve the webhook app on ``host:port`` until the process is stopped.

    Refuses to start without ``TASUKI_WEBHOOK_SECRET`` or with a broken rules or KPI file
    (:class:`~tasuki.errors.ConfigError`), or when the store is unreachable.
    """
    from tasuki import logs
    from tasuki.runtime import build
    from webhooks import create_app, require_webhook_secret

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


def run(app: Flask, host: str, port: int, threads: int) -> None:
    """Serve ``app`` under waitress until the process is stopped, with the thread that moves
    accepted deliveries into the store beside the server's (one thread: its batches grow with
    the load, and no request waits for a commit)."""
    import waitress

    stop = threading.Event()
    storing = threading.Thread(
        target=services(app).intake.keep_storing, args=(stop,), name="intake-store", daemon=True
    )
    storing.start()
    try:
        # Behind a proxy the public URL is what providers sign; waitress serves the local socket.
        waitress.serve(
            app,
            host=host,
            port=port,
            threads=threads,
            ident="tasuki",
            max_request_body_size=SERVER_BODY_LIMIT,
        )
    finally:
        stop.set()
        storing.join(timeout=10)


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
    from tasuki import logs
    from tasuki.preflight import SERVE, checked_settings

    if demo:
        from tasuki.console.demo import serve_demo
        from tasuki.settings import load_settings

        serve_demo(load_settings(), host, port, threads)
        return

    # Every file, the CRM's sign-in and every receiver's secret, every problem at once.
    settings = checked_settings(SERVE)
    logs.setup(settings, "serve")
    serve(settings, host, port, threads)
