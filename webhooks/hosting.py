"""Hosting the webhook app: waitress, and beside it the intake's taker.

Kept apart from ``webhooks.serve`` (the ``tasuki serve`` command) so the console's demo server,
which that command imports, can host the app the same way without importing the command back.
"""

from __future__ import annotations

import waitress
from flask import Flask

from webhooks.shared import services
from webhooks.taker import taking

SERVER_BODY_LIMIT = 4 * 1024 * 1024
"""Waitress buffers a whole request before the app sees it: past this it answers 413 itself,
so a huge body costs neither disk nor memory. Between 1 MiB and this the app answers a JSON 413."""


def run(app: Flask, host: str, port: int, threads: int) -> None:
    """Serve ``app`` under waitress until the process is stopped, with the taker that moves
    accepted deliveries into the store beside it (:mod:`webhooks.taker`: one taker, whose
    batches grow with the load, so no request waits for a commit)."""
    found = services(app)
    with taking(found.settings, found.intake):
        # Behind a proxy the public URL is what providers sign; waitress serves the local socket.
        waitress.serve(
            app,
            host=host,
            port=port,
            threads=threads,
            ident="tasuki",
            max_request_body_size=SERVER_BODY_LIMIT,
        )
