"""Slack through ``slack_sdk``'s ``WebClient``: posting messages and finding people.

Retries are declared, not hand-looped: ``slack_sdk``'s :class:`RateLimitErrorRetryHandler`
waits as long as Slack's ``Retry-After`` says on a 429, and its server-error handler retries a
500/503. A message must never be posted twice, so the client that posts leaves out two of the
SDK's retries: on a dropped connection (the request may have arrived) and on Slack's
``internal_error`` / ``fatal_error``, after which, Slack documents, "some aspect of the
operation" may have succeeded (:class:`PostRetryHandler`). Reads (``users.lookupByEmail``,
``conversations.info``) change nothing and are retried on every transient failure.

Each answer becomes an :class:`~tasuki.notify.outcome.Outcome` the ledger records
(:func:`post_outcome`): Slack's own error code (``channel_not_found``, ``token_revoked`` …) is
kept verbatim.
"""

from __future__ import annotations

import json
import socket
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from sqlalchemy import select

from tasuki.messaging import SlackSettings
from tasuki.notify.ledger import Status
from tasuki.notify.outcome import Outcome
from tasuki.store.db import Store
from tasuki.store.models import SlackUser, utcnow
from tasuki.store.upsert import upsert

TIMEOUT_SECONDS = 30
"""How long one request to Slack may take before it counts as unanswered."""
RATE_LIMIT_RETRIES = 3
"""429 answers waited out (each as long as ``Retry-After`` says) before the job gives up."""
SERVER_ERROR_RETRIES = 2
"""5xx answers retried (with backoff) before the job gives up."""

MAYBE_DONE = frozenset({"internal_error", "fatal_error"})
"""Errors after which Slack says the operation may partly have succeeded: never resent."""
NOT_DONE = frozenset({"ratelimited", "service_unavailable", "request_timeout"})
"""Errors that say Slack did nothing with the request: safe to send again later."""
NOT_FOUND = frozenset({"users_not_found"})


def _error_code(response: HttpResponse | None) -> str | None:
    if response is None:
        return None
    body = response.body
    if not body and response.data:
        try:
            body = json.loads(response.data)
        except (ValueError, UnicodeDecodeError):
            return None
    return str(body.get("error")) if isinstance(body, dict) and body.get("error") else None


class PostRetryHandler(ServerErrorRetryHandler):
    """Slack's server-error retry handler, for answers that say nothing was done: a 503, or a
    500 whose error code says so. A 500 saying ``internal_error`` (or nothing readable) may
    follow a posted message: not retried, recorded ``unknown``."""

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if not super()._can_retry(state=state, request=request, response=response, error=error):
            return False
        assert response is not None
        # A 503 did nothing; a 500 only when its body says so (``internal_error`` may have).
        return response.status_code == 503 or _error_code(response) in NOT_DONE


def _refused_before_sending(exc: BaseException) -> bool:
    """True when the connection was never made (nothing reached Slack)."""
    reason = exc.reason if isinstance(exc, URLError) else exc
    return isinstance(reason, ConnectionRefusedError | socket.gaierror)


def post_outcome(response: dict[str, Any] | None, status_code: int) -> Outcome:
    """The ledger outcome of a ``chat.postMessage`` answer (its JSON and HTTP status)."""
    body = response or {}
    if status_code == 200 and body.get("ok"):
        result = json.dumps({"channel": body.get("channel"), "ts": body.get("ts")})
        return Outcome(Status.SENT, result=result)
    error = str(body.get("error") or f"HTTP {status_code}")
    if error in MAYBE_DONE:
        return Outcome(Status.UNKNOWN, error=error)
    if error in NOT_DONE or status_code == 429 or status_code in (502, 503, 504):
        return Outcome(Status.PENDING, error=error)
    if status_code >= 500:
        return Outcome(Status.UNKNOWN, error=error)
    needed = body.get("needed")
    return Outcome(Status.FAILED, error=f"{error} (needed: {needed})" if needed else error)


@dataclass(frozen=True)
class Lookup:
    """Who an e-mail address is in Slack: ``user_id``, or None with ``error`` empty (no such
    member: send e-mail), or an ``error`` and whether it may pass (``transient``)."""

    user_id: str | None = None
    error: str = ""
    transient: bool = False


class Slack:
    """A bot token's view of Slack: posting and looking people up (cached in the store)."""

    def __init__(
        self,
        settings: SlackSettings,
        store: Store,
        *,
        lookup_ttl: timedelta = timedelta(hours=24),
        timeout: int = TIMEOUT_SECONDS,
    ) -> None:
        assert settings.bot_token is not None
        token = settings.bot_token.get_secret_value()
        self.store = store
        self.lookup_ttl = lookup_ttl
        self.calls: Counter[str] = Counter()

        def client(*retry_handlers: RetryHandler) -> WebClient:
            return WebClient(
                token=token,
                base_url=settings.api_url,
                timeout=timeout,
                retry_handlers=list(retry_handlers),
            )

        self.poster = client(
            RateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
            PostRetryHandler(max_retry_count=SERVER_ERROR_RETRIES),
        )
        self.reader = client(
            ConnectionErrorRetryHandler(max_retry_count=SERVER_ERROR_RETRIES),
            RateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
            ServerErrorRetryHandler(max_retry_count=SERVER_ERROR_RETRIES),
        )

    def post(
        self, channel: str, payload: dict[str, Any], *, thread_ts: str | None = None
    ) -> Outcome:
        """Post one message to ``channel`` (an id, a ``#name``, or a user id for a direct
        message), in the thread of ``thread_ts`` when given."""
        self.calls["chat.postMessage"] += 1
        try:
            response = self.poster.chat_postMessage(channel=channel, thread_ts=thread_ts, **payload)
        except SlackApiError as exc:
            data = exc.response.data if isinstance(exc.response.data, dict) else {}
            return post_outcome(data, exc.response.status_code)
        except (URLError, OSError) as exc:
            if _refused_before_sending(exc):
                return Outcome(Status.PENDING, error=f"connection refused: {exc}")
            return Outcome(Status.UNKNOWN, error=f"no answer: {type(exc).__name__}: {exc}")
        data = response.data if isinstance(response.data, dict) else {}
        return post_outcome(data, response.status_code)

    def lookup(self, email: str) -> Lookup:
        """The Slack member with ``email`` (``users.lookupByEmail``), from the store's cache
        while it is younger than ``lookup_ttl``; a deactivated member counts as none."""
        key = email.strip().lower()
        with self.store.session() as session:
            cached = session.scalars(select(SlackUser).where(SlackUser.email == key)).one_or_none()
            if cached is not None and utcnow() - cached.looked_up_at < self.lookup_ttl:
                return Lookup(cached.user_id)
        self.calls["users.lookupByEmail"] += 1
        try:
            response = self.reader.users_lookupByEmail(email=key)
        except SlackApiError as exc:
            data = exc.response.data if isinstance(exc.response.data, dict) else {}
            error = str(data.get("error") or f"HTTP {exc.response.status_code}")
            if error not in NOT_FOUND:
                transient = error in NOT_DONE or exc.response.status_code >= 500
                return Lookup(error=error, transient=transient)
            found: str | None = None
        except (URLError, OSError) as exc:
            return Lookup(error=f"no answer: {type(exc).__name__}: {exc}", transient=True)
        else:
            user = response.get("user") or {}
            found = None if user.get("deleted") else str(user.get("id") or "") or None
        with self.store.session() as session:
            upsert(
                session,
                SlackUser,
                [{"email": key[:200], "user_id": found, "looked_up_at": utcnow()}],
                ["email"],
                ["user_id", "looked_up_at"],
            )
        return Lookup(found)

    def cached(self, email: str) -> Lookup | None:
        """What the cache says of ``email`` (no call), None when it does not know."""
        with self.store.session() as session:
            row = session.scalars(
                select(SlackUser).where(SlackUser.email == email.strip().lower())
            ).one_or_none()
            if row is None or utcnow() - row.looked_up_at >= self.lookup_ttl:
                return None
            return Lookup(row.user_id)

    def channel_info(self, channel: str) -> dict[str, Any] | str:
        """``conversations.info`` of a channel id: the channel, or Slack's error code."""
        self.calls["conversations.info"] += 1
        try:
            response = self.reader.conversations_info(channel=channel)
        except SlackApiError as exc:
            data = exc.response.data if isinstance(exc.response.data, dict) else {}
            return str(data.get("error") or f"HTTP {exc.response.status_code}")
        except (URLError, OSError) as exc:
            return f"no answer: {exc}"
        found = response.get("channel")
        return found if isinstance(found, dict) else "no channel in the answer"

    def whoami(self) -> dict[str, Any] | str:
        """``auth.test``: the bot and workspace the token belongs to, or Slack's error code."""
        self.calls["auth.test"] += 1
        try:
            response = self.reader.auth_test()
        except SlackApiError as exc:
            data = exc.response.data if isinstance(exc.response.data, dict) else {}
            return str(data.get("error") or f"HTTP {exc.response.status_code}")
        except (URLError, OSError) as exc:
            return f"no answer: {exc}"
        return dict(response.data) if isinstance(response.data, dict) else {}
