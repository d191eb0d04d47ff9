"""``POST /webhooks/local``: change notices of the embedded CRM or any relay, signed with HMAC.

Body: ``{"notices": [{"id": "...", "object": "Lead", "record_ids": ["..."], "changed_by": ...}]}``
(at most 100 notices). ``X-Tasuki-Signature`` is the hex HMAC-SHA256 of the raw body under
``TASUKI_WEBHOOK_SECRET``. Answer: ``{"accepted": n, "duplicates": n, "ignored": n}``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from flask import Blueprint, Response, jsonify, request

from webhooks.intake import Intake, Work, verify_hmac_sha256_hex

SIGNATURE_HEADER = "X-Tasuki-Signature"
MAX_NOTICES = 100
"""Notices per request."""


def sign(secret: str, body: bytes) -> str:
    """The signature a sender puts in ``X-Tasuki-Signature`` for ``body``."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class BadNotices(ValueError):
    """The body is not a list of well-formed notices; the message says what is wrong."""


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 200:
        raise BadNotices(f"{where} must be a non-empty string of at most 200 characters")
    return value


def parse_notices(body: bytes) -> list[Work]:
    """The notices of a request body as :class:`Work`; :class:`BadNotices` when malformed."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadNotices("body is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("notices"), list):
        raise BadNotices('body must be an object with a "notices" list')
    notices = data["notices"]
    if not notices or len(notices) > MAX_NOTICES:
        raise BadNotices(f"between 1 and {MAX_NOTICES} notices per request")
    out = []
    for i, n in enumerate(notices):
        if not isinstance(n, dict):
            raise BadNotices(f"notices[{i}] must be an object")
        delivery = _text(n.get("id"), f"notices[{i}].id")
        obj = _text(n.get("object"), f"notices[{i}].object")
        ids = n.get("record_ids")
        if not isinstance(ids, list) or not ids:
            raise BadNotices(f"notices[{i}].record_ids must be a non-empty list")
        records = [(obj, _text(r, f"notices[{i}].record_ids[{j}]")) for j, r in enumerate(ids)]
        if n.get("changed_by") is not None and not isinstance(n.get("changed_by"), str):
            raise BadNotices(f"notices[{i}].changed_by must be a string or null")
        out.append(Work(delivery, records))
    return out


def blueprint(intake: Intake, secret: str) -> Blueprint:
    """The generic signed receiver."""
    bp = Blueprint("local", __name__)
    from pydantic import SecretStr

    key = SecretStr(secret)

    @bp.post("/webhooks/local")
    def receive() -> tuple[Response, int]:
        body = request.get_data(cache=False)
        if not verify_hmac_sha256_hex(key, body, request.headers.get(SIGNATURE_HEADER)):
            return jsonify(error=f"bad or missing {SIGNATURE_HEADER}"), 401
        try:
            work = parse_notices(body)
        except BadNotices as exc:
            return jsonify(error=str(exc)), 400
        taken = intake.take("local", work)
        return jsonify(
            accepted=taken.accepted, duplicates=taken.duplicates, ignored=taken.ignored
        ), 200

    return bp
