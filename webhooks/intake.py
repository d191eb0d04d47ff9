"""The shared path of every receiver: verify, record the delivery in one Redis call, answer.

A receiver verifies the request itself (:func:`verify_hmac_sha256_hex` for the common HMAC
scheme), parses it into :class:`~tasuki.deliveries.Notice` s and hands them to
:meth:`Intake.take` (syncs of CRM records) or :meth:`Intake.accept` (a delivery that is its own
job, a recording). Both make one Redis round trip, the journal's script
(:meth:`tasuki.deliveries.Journal.append`): the ids not seen before are remembered and their
work appended to the intake stream, atomically. The answer follows at once:

1. Redis down: 503 with ``Retry-After`` (:func:`unavailable`), nothing recorded anywhere.
2. 200: the delivery is in the stream; a retry is answered as a duplicate.
3. The store is not on this path: ``tasuki serve`` runs :meth:`Intake.keep_storing` in a process
   of its own beside the server's (:mod:`webhooks.taker`), which moves entries into the store
   (delivery ids and the work they owe, one transaction per batch) and queues their jobs,
   woken by Redis the moment an entry is appended. A store that is down costs no 503: the
   entries wait in Redis until it answers. ``worker.recover`` takes entries too, so nothing
   waits on a stopped server.

The guarantees of the move (exactly one taker owes each delivery's work, a killed taker's
entries are claimed) are :mod:`tasuki.deliveries`'s.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from flask import Response, jsonify
from pydantic import SecretStr
from rq import Queue
from sqlalchemy import exc as sa_exc

from tasuki import logs
from tasuki.deliveries import CLAIM_AFTER_MS, Journal, Notice, Stored
from tasuki.errors import QueueUnavailable, TasukiError
from tasuki.queue import JobSpec, job_name, recording_key
from tasuki.store.db import Store
from worker import sync_job

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30
"""What a 503 asks the provider to wait before retrying."""


def sign_hmac_sha256_hex(secret: str, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``body`` under ``secret``: what a sender puts in its header."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_hmac_sha256_hex(secret: SecretStr, body: bytes, signature: str | None) -> bool:
    """True when ``signature`` is the hex HMAC-SHA256 of ``body`` under ``secret``.

    An optional ``sha256=`` prefix and upper-case hex are accepted. Compared in constant time;
    any other header value (empty, non-hex, non-ASCII) is simply False.
    """
    if not signature:
        return False
    given = signature.strip().removeprefix("sha256=").lower()
    expected = sign_hmac_sha256_hex(secret.get_secret_value(), body)
    # Bytes, not str: compare_digest refuses non-ASCII str, and a header may hold any latin-1.
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())


def unavailable(exc: TasukiError | str) -> tuple[Response, int, dict[str, str]]:
    """The 503 answer when the queue or the store cannot take work: a JSON error and
    ``Retry-After``, so the provider delivers again later."""
    return jsonify(error=str(exc)), 503, {"Retry-After": str(RETRY_AFTER_SECONDS)}


@dataclass
class Taken:
    """What a request's deliveries came to."""

    accepted: int = 0
    duplicates: int = 0
    """Ids recorded before, or repeated within the request (counted at each repeat)."""
    ignored: int = 0
    """New deliveries naming no record (an echo of our own write, an object tasuki ignores):
    recorded, so their retries are duplicates, and nothing more."""


STORE_WHEN_QUIET_SECONDS = 0.02
""":meth:`Intake.keep_storing` stores once no request has appended anything for this long: a
burst is answered first and stored in few, large transactions (a commit costs far more than a
row), and no request waits for the store meanwhile."""

STORE_AT_LEAST_EVERY_SECONDS = 0.25
"""... and under load that never pauses, at least this often: about the most an accepted
delivery waits in Redis before its batch is stored while the server runs. Four commits a
second cost the taker little, and it has its own process (:mod:`webhooks.taker`): no request
waits for them."""

STORE_IDLE_SECONDS = 1.0
"""How often :meth:`Intake.keep_storing` looks at the stream when nothing new wakes it (to
claim entries a killed server left)."""

STORE_RETRY_SECONDS = (0.5, 30.0)
"""The first and the longest wait of :meth:`Intake.keep_storing` after a failed take (the
store or Redis down), doubling in between."""


@dataclass(eq=False)
class Intake:
    """The store and queue a receiver hands its deliveries to, and the journal between them."""

    store: Store
    queue: Queue
    claim_after_ms: int = CLAIM_AFTER_MS
    """How long entries another taker read may stay unstored before this one takes them over
    (``recovery.abandoned_after_seconds``)."""
    journal: Journal = field(init=False, repr=False)

    def __post_init__(self) -> None:
        try:
            owner = self.store.identity()
        except sa_exc.SQLAlchemyError:  # a store down at start: ids remembered apart ("-")
            owner = "-"
        self.journal = Journal(self.queue, owner)

    def _append(self, provider: str, notices: Sequence[Notice]) -> list[Notice]:
        """The notices of ``notices`` (first of each id) that were new, appended in one script."""
        first: dict[str, Notice] = {}
        for n in notices:
            first.setdefault(n.delivery_id, n)
        if not first:
            return []
        # Stays bound for the rest of the request: the access-log line names the delivery.
        logs.bind(delivery_id=logs.ids_field(list(first)))
        unique = list(first.values())
        flags = self.journal.append(provider, unique)
        return [n for n, is_new in zip(unique, flags, strict=True) if is_new]

    def take(self, provider: str, deliveries: Sequence[Notice]) -> Taken:
        """Record the new deliveries; their records are synced (one job per CRM object, merged
        across requests) once they are in the store.

        Raises :class:`QueueUnavailable` with nothing recorded.
        """
        new = self._append(provider, deliveries)
        accepted = sum(1 for n in new if n.records)
        return Taken(accepted, len(deliveries) - len(new), len(new) - accepted)

    def accept(
        self, provider: str, delivery_id: str, func: Callable[..., Any], kwargs: dict[str, Any]
    ) -> bool:
        """Record one delivery whose work is ``func(**kwargs)``; False when it was a duplicate.

        Raises :class:`QueueUnavailable` with nothing recorded.
        """
        key = recording_key(provider, delivery_id)
        job_id = f"{job_name(func).replace('.', '_')}-{provider}-{key}"
        notice = Notice(delivery_id, job=JobSpec(job_id, func, kwargs), owed_key=key)
        return bool(self._append(provider, [notice]))

    def store_waiting(self) -> Stored:
        """Move every waiting entry into the store and queue its work (see
        :meth:`tasuki.deliveries.Journal.take`)."""
        return self.journal.take(self.store, sync_job, claim_after_ms=self.claim_after_ms)

    def _gather(self, stop: threading.Event) -> None:
        """Wait while requests keep appending (see :data:`STORE_WHEN_QUIET_SECONDS`)."""
        until = time.monotonic() + STORE_AT_LEAST_EVERY_SECONDS
        size = self.journal.backlog()
        while not stop.wait(STORE_WHEN_QUIET_SECONDS) and time.monotonic() < until:
            now = self.journal.backlog()
            if now == size:
                return
            size = now

    def keep_storing(
        self, stop: threading.Event, *, alive: Callable[[], bool] = lambda: True
    ) -> None:
        """:meth:`store_waiting` whenever a request appended something (Redis wakes it, whichever
        process the request came to) and every :data:`STORE_IDLE_SECONDS`, until ``stop`` is set
        or ``alive()`` turns false. A failure (the store or Redis down) is logged and retried
        with a doubling wait: the entries stay in the stream meanwhile."""
        wait, longest = STORE_RETRY_SECONDS
        retry = wait
        while not stop.is_set() and alive():
            try:
                if self.journal.wait(STORE_IDLE_SECONDS):
                    self._gather(stop)
                self.store_waiting()
                retry = wait
            except (redis.RedisError, QueueUnavailable, sa_exc.SQLAlchemyError) as exc:
                log.warning(
                    "accepted deliveries wait in Redis (%s: %s); retrying in %.1f s",
                    type(exc).__name__,
                    exc,
                    retry,
                )
                stop.wait(retry)
                retry = min(retry * 2, longest)
