"""The intake's taker: a process of its own beside ``tasuki serve``'s request threads.

The request threads only verify and append to the intake stream (:mod:`webhooks.intake`); moving
the stream into the store (:meth:`~webhooks.intake.Intake.keep_storing`) is CPU work (JSON,
SQL, job payloads) that would otherwise share the server process's one interpreter lock with
them. In a process of its own it runs on another core, and Redis wakes it when a request
appends, wherever that request was answered.

The embedded queue (no ``TASUKI_REDIS_URL``: the demo) lives in the server's memory, where no
other process can read it; there the taker stays a thread of the server.

The taker stops with the server: on SIGTERM or SIGINT, and on its own when the server that
started it is gone (it looks at its parent each time it wakes, at least every second). A taker
killed mid-batch loses nothing: its entries stay pending in the stream and the next taker
claims them (:mod:`tasuki.deliveries`).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from types import FrameType

from tasuki import logs
from tasuki.queue import job_queue
from tasuki.settings import Settings
from tasuki.store.db import open_store
from webhooks.intake import Intake

log = logging.getLogger(__name__)

READY_SECONDS = 60
"""How long a starting server waits for its taker to start taking (it imports what the server
did, a few seconds) before it serves anyway."""

STOP_SECONDS = 10
"""How long a stopping server waits for its taker to finish the batch it is on."""


def take(settings: Settings, parent: int, ready: Connection | None = None) -> None:
    """The taker process's body: store what the server accepts until told to stop, or until
    ``parent`` (the server's pid) is no longer this process's parent. It says so on ``ready``
    (then closes it) once it takes."""
    logs.setup(settings, "serve")
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    store = open_store(settings.database_url, migrate=False)
    abandoned = settings.config.recovery.abandoned_after_seconds
    intake = Intake(store, job_queue(settings), claim_after_ms=int(abandoned * 1000))
    if ready is not None:
        ready.send(True)
        ready.close()
    try:
        intake.keep_storing(stop, alive=lambda: os.getppid() == parent)
    finally:
        store.engine.dispose()


@contextmanager
def taking(settings: Settings, intake: Intake) -> Iterator[None]:
    """While inside, a taker stores what ``intake``'s receivers accept: a process of its own
    on a real Redis, a thread of this one on the embedded queue."""
    if settings.redis_url is None:
        with _thread(intake):
            yield
        return
    # spawn, not fork: the server's threads and open connections stay in the server.
    spawn = multiprocessing.get_context("spawn")
    # A pipe, not a multiprocessing Event: an Event's semaphores are named resources, which a
    # server stopped by a signal would leave to the resource tracker to complain about.
    waiting, ready = spawn.Pipe(duplex=False)
    process = spawn.Process(
        target=take, args=(settings, os.getpid(), ready), name="tasuki-intake-taker", daemon=True
    )
    process.start()
    ready.close()  # the taker's end
    # Serving before the taker takes would pile up a burst's first seconds in Redis.
    if not _said_ready(waiting):
        log.warning(
            "the intake's taker is not taking after %d s; serving anyway (what is accepted "
            "waits in Redis until it is)",
            READY_SECONDS,
        )
    waiting.close()
    try:
        yield
    finally:
        process.terminate()  # SIGTERM: it finishes the batch it is on
        process.join(STOP_SECONDS)
        if process.is_alive():
            log.warning("the intake's taker did not stop in %d s; killed", STOP_SECONDS)
            process.kill()
            process.join()


def _said_ready(waiting: Connection) -> bool:
    try:
        return waiting.poll(READY_SECONDS) and bool(waiting.recv())
    except EOFError:  # the taker died before it took: its error is on standard error
        return False


@contextmanager
def _thread(intake: Intake) -> Iterator[None]:
    stop = threading.Event()
    storing = threading.Thread(
        target=intake.keep_storing, args=(stop,), name="intake-store", daemon=True
    )
    storing.start()
    try:
        yield
    finally:
        stop.set()
        storing.join(timeout=STOP_SECONDS)
