"""``tasuki serve``: the webhook app under waitress, a production WSGI server in pure Python."""

from __future__ import annotations

import click

from tasuki.settings import Settings


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8080, threads: int = 8) -> None:
    """Serve the app until stopped. The rules are loaded first: a bad rules file stops it here."""
    import waitress

    from tasuki.runtime import build
    from webhooks import create_app

    rt = build(settings)
    rt.validate()
    app = create_app(settings, store=rt.store)
    # Behind a proxy the public URL is what providers sign; waitress serves the local socket.
    waitress.serve(app, host=host, port=port, threads=threads, ident="tasuki")


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int)
def serve_command(host: str, port: int, threads: int) -> None:
    """Receive webhooks (needs TASUKI_WEBHOOK_SECRET and TASUKI_REDIS_URL)."""
    from tasuki.settings import load_settings

    settings = load_settings()
    if settings.redis_url is None:
        raise click.UsageError("TASUKI_REDIS_URL is not set: the webhook app needs Redis")
    serve(settings, host, port, threads)
