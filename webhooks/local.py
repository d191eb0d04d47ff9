"""``POST /webhooks/local``: change notices of the embedded CRM or any relay, signed with HMAC.

Body: ``{"notices": [{"id": "...", "object": "Lead", "record_ids": ["..."], "changed_by": ...}]}``
(1 to 100 notices; ``id`` unique per notice, the delivery id). The sender puts the current Unix
time in seconds in ``X-Tasuki-Timestamp`` and, in ``X-Tasuki-Signature``, the hex HMAC-SHA256
under ``TASUKI_WEBHOOK_SECRET`` of the timestamp, a dot and the raw body (``f"{ts}.".encode() +
body``, as Stripe and Slack sign): :func:`signed_headers` makes both. A timestamp more than 5
minutes from now is refused, so a captured request cannot be replayed once its delivery id has
been pruned. The new notices are queued as one sync per object. Answer:
``{"accepted": n, "duplicates": n, "ignored": 0}``. Missing, malformed or stale timestamp or bad
signature 401, malformed body 400 naming what is wrong, Redis down 503 (the store is not on a
request's path: see :mod:`webhooks.intake`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify, request
from pydantic import SecretStr

from tasuki.deliveries import Notice
from webhooks.intake import Intake, sign_hmac_sha256_hex, verify_hmac_sha256_hex
from webhooks.limits import MAX_DELIVERY_ID, MAX_RECORD_ID, Refused, id_problem, load_json
from webhooks.limits import timestamp as read_timestamp

PROVIDER = "local"
SIGNATURE_HEADER = "X-Tasuki-Signature"
TIMESTAMP_HEADER = "X-Tasuki-Timestamp"
MAX_SKEW_SECONDS = 300
"""How far ``X-Tasuki-Timestamp`` may be from the receiver's clock, either way."""
MAX_NOTICES = 100
"""Notices per request."""
OBJECT_NAME = re.compile(r"[A-Za-z0-9_-]{1,40}")
"""A CRM object name: it becomes part of a job id, which rq limits to these characters."""
_NOTICE_KEYS = frozenset({"id", "object", "record_ids", "changed_by"})


def sign(secret: str, body: bytes, timestamp: int | str) -> str:
    """The ``X-Tasuki-Signature`` of ``body`` sent with ``X-Tasuki-Timestamp: timestamp``: hex
    HMAC-SHA256 of ``f"{timestamp}.".encode() + body`` under ``secret``."""
    return sign_hmac_sha256_hex(secret, f"{timestamp}.".encode() + body)


def signed_headers(secret: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """The headers a sender posts ``body`` with: JSON content type, ``X-Tasuki-Timestamp`` (``now``,
    default the current time, in whole seconds) and the ``X-Tasuki-Signature`` covering both."""
    stamp = int(time.time() if now is None else now)
    return {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(stamp),
        SIGNATURE_HEADER: sign(secret, body, stamp),
    }


def signature_problem(
    secret: SecretStr, body: bytes, stamp: str | None, signature: str | None, now: float
) -> str | None:
    """Why a request is not signed by a holder of ``secret`` within the last (or next) 5
    minutes, or ``None`` when it is."""
    sent = read_timestamp(stamp)
    if sent is None:
        return f"missing or malformed {TIMESTAMP_HEADER} (Unix seconds)"
    if abs(now - sent) > MAX_SKEW_SECONDS:
        return f"{TIMESTAMP_HEADER} is more than {MAX_SKEW_SECONDS} seconds from now"
    if not verify_hmac_sha256_hex(secret, f"{stamp}.".encode() + body, signature):
        return f"bad or missing {SIGNATURE_HEADER}"
    return None


class BadNotices(ValueError):
    """The body is not a list of well-formed notices; the message says what is wrong."""


def _text(value: Any, where: str, longest: int) -> str:
    problem = id_problem(value, where, longest)
    if problem:
        raise BadNotices(problem)
    return str(value)


def _notice(n: Any, where: str) -> Notice:
    if not isinstance(n, dict):
        raise BadNotices(f"{where} must be an object")
    unknown = sorted(set(n) - _NOTICE_KEYS)
    if unknown:
        raise BadNotices(f"{where} has unknown key(s): {', '.join(unknown)}")
    delivery = _text(n.get("id"), f"{where}.id", MAX_DELIVERY_ID)
    obj = n.get("object")
    if not isinstance(obj, str) or not OBJECT_NAME.fullmatch(obj):
        raise BadNotices(f"{where}.object must be an object name (A-Z a-z 0-9 _ -, 1 to 40)")
    ids = n.get("record_ids")
    if not isinstance(ids, list) or not ids:
        raise BadNotices(f"{where}.record_ids must be a non-empty list")
    records = [
        (obj, _text(r, f"{where}.record_ids[{j}]", MAX_RECORD_ID)) for j, r in enumerate(ids)
    ]
    by = n.get("changed_by")
    if by is not None and not isinstance(by, str):
        raise BadNotices(f"{where}.changed_by must be a string or null")
    return Notice(delivery, records)


def parse_notices(body: bytes) -> list[Notice]:
    """The notices of a request body; :class:`BadNotices` when malformed."""
    try:
        data = load_json(body)
    except Refused as exc:
        raise BadNotices(str(exc)) from exc
    if not isinstance(data, dict) or not isinstance(data.get("notices"), list):
        raise BadNotices('body must be an object with a "notices" list')
    if set(data) != {"notices"}:
        unknown = ", ".join(sorted(set(data) - {"notices"}))
        raise BadNotices(f"body has unknown key(s): {unknown}")
    notices = data["notices"]
    if not notices or len(notices) > MAX_NOTICES:
        raise BadNotices(f"between 1 and {MAX_NOTICES} notices per request, not {len(notices)}")
    return [_notice(n, f"notices[{i}]") for i, n in enumerate(notices)]


def blueprint(
    intake: Intake, secret: SecretStr, *, clock: Callable[[], float] = time.time
) -> Blueprint:
    """The generic signed receiver, handing its notices to ``intake``; ``clock`` is the time
    the timestamp is checked against."""
    bp = Blueprint(PROVIDER, __name__)

    @bp.post("/webhooks/local")
    def receive() -> tuple[Response, int]:
        # Over MAX_CONTENT_LENGTH this raises 413 before a byte is hashed.
        body = request.get_data(cache=False)
        problem = signature_problem(
            secret,
            body,
            request.headers.get(TIMESTAMP_HEADER),
            request.headers.get(SIGNATURE_HEADER),
            clock(),
        )
        if problem:
            return jsonify(error=problem), 401
        try:
            work = parse_notices(body)
        except BadNotices as exc:
            return jsonify(error=str(exc)), 400
        # QueueUnavailable propagates to the app's 503 handler.
        taken = intake.take(PROVIDER, work)
        return jsonify(
            accepted=taken.accepted, duplicates=taken.duplicates, ignored=taken.ignored
        ), 200

    return bp
