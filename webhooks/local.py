"""``POST /webhooks/local``: change notices of the embedded CRM or any relay, signed with HMAC.

Body: ``{"notices": [{"id": "...", "object": "Lead", "record_ids": ["..."], "changed_by": ...}]}``
(1 to 100 notices; ``id`` unique per notice, the delivery id). ``X-Tasuki-Signature`` is the hex
HMAC-SHA256 of the raw body under ``TASUKI_WEBHOOK_SECRET`` (:func:`sign`). The new notices are
queued as one sync per object. Answer: ``{"accepted": n, "duplicates": n, "ignored": 0}``.
Bad signature 401, malformed body 400 naming what is wrong, queue or store down 503.
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Blueprint, Response, jsonify, request
from pydantic import SecretStr

from webhooks.intake import Intake, Work, sign_hmac_sha256_hex, verify_hmac_sha256_hex

PROVIDER = "local"
SIGNATURE_HEADER = "X-Tasuki-Signature"
MAX_NOTICES = 100
"""Notices per request."""
MAX_DELIVERY_ID = 200
"""Longest delivery id (the ``deliveries`` table's column)."""
MAX_RECORD_ID = 64
"""Longest record id (the ``records`` table's column)."""
OBJECT_NAME = re.compile(r"[A-Za-z0-9_-]{1,40}")
"""A CRM object name: it becomes part of a job id, which rq limits to these characters."""
_NOTICE_KEYS = frozenset({"id", "object", "record_ids", "changed_by"})

sign = sign_hmac_sha256_hex
"""The signature a sender puts in ``X-Tasuki-Signature`` for a body (the demo and tests sign)."""


class BadNotices(ValueError):
    """The body is not a list of well-formed notices; the message says what is wrong."""


def _text(value: Any, where: str, longest: int) -> str:
    if not isinstance(value, str) or not value or len(value) > longest:
        raise BadNotices(f"{where} must be a non-empty string of at most {longest} characters")
    return value


def _notice(n: Any, where: str) -> Work:
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
    return Work(delivery, records)


def parse_notices(body: bytes) -> list[Work]:
    """The notices of a request body as :class:`Work`; :class:`BadNotices` when malformed."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise BadNotices("body is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("notices"), list):
        raise BadNotices('body must be an object with a "notices" list')
    if set(data) != {"notices"}:
        unknown = ", ".join(sorted(set(data) - {"notices"}))
        raise BadNotices(f"body has unknown key(s): {unknown}")
    notices = data["notices"]
    if not notices or len(notices) > MAX_NOTICES:
        raise BadNotices(f"between 1 and {MAX_NOTICES} notices per request, not {len(notices)}")
    return [_notice(n, f"notices[{i}]") for i, n in enumerate(notices)]


def blueprint(intake: Intake, secret: SecretStr) -> Blueprint:
    """The generic signed receiver, handing its notices to ``intake``."""
    bp = Blueprint(PROVIDER, __name__)

    @bp.post("/webhooks/local")
    def receive() -> tuple[Response, int]:
        # Over MAX_CONTENT_LENGTH this raises 413 before a byte is hashed.
        body = request.get_data(cache=False)
        if not verify_hmac_sha256_hex(secret, body, request.headers.get(SIGNATURE_HEADER)):
            return jsonify(error=f"bad or missing {SIGNATURE_HEADER}"), 401
        try:
            work = parse_notices(body)
        except BadNotices as exc:
            return jsonify(error=str(exc)), 400
        # QueueUnavailable / StoreUnavailable propagate to the app's 503 handler.
        taken = intake.take(PROVIDER, work)
        return jsonify(
            accepted=taken.accepted, duplicates=taken.duplicates, ignored=taken.ignored
        ), 200

    return bp
