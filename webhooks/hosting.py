"""Hosting the webhook app: waitress, and beside its request threads the intake's taker.

Kept apart from ``webhooks.serve`` (the ``tasuki serve`` command) so the console's demo server,
which that command imports, can host the app the same way without importing the command back.
"""

from __future__ import annotations

import threading

import waitress
from flask import Flask

from webhooks.shared import services

SERVER_BODY_LIMIT = 4 * 1024 * 1024
"""Waitress buffers a whole request before the app sees it: past this it answers 413 itself,
so a huge body costs neither disk nor memory. Between 1 MiB and this the app answers a JSON 413."""


def run(app: Flask, host: str, port: int, threads: int) -> None:
    """Serve ``app`` under waitress until the process is stopped, with the thread that moves
    accepted deliveries into the store beside the server's (one thread: its batches grow with
    the load, and no request waits for a commit)."""
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
