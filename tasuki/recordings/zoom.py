"""Zoom's event notifications: signature, URL validation, and events → :class:`Capture`.

As Zoom documents it (developers.zoom.us, "Using webhooks"): every request carries
``x-zm-request-timestamp`` and ``x-zm-signature`` = ``v0=`` + hex HMAC-SHA256 of
``v0:{timestamp}:{raw body}`` under the app's secret token; ``endpoint.url_validation`` is
answered with ``{"plainToken", "encryptedToken"}`` where ``encryptedToken`` is the hex
HMAC-SHA256 of the plain token, within 3 seconds. ``recording.completed`` carries the meeting's
``uuid``, ``topic``, ``start_time``, ``host_email``, ``share_url`` and ``recording_files``; it
has no participant list, which ``meeting.participant_joined`` (one participant each) supplies.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from tasuki.recordings.capture import Capture, Kind, compact, first, gather, parse_time
from tasuki.recordings.config import ZoomConfig

PROVIDER = "zoom"
URL_VALIDATION = "endpoint.url_validation"
RECORDING_COMPLETED = "recording.completed"
MAX_SIGNATURE_AGE_SECONDS = 300
"""Zoom requests older (or further in the future) than this are refused as replays."""
MAX_TIMESTAMP_DIGITS = 15
"""Digits of ``x-zm-request-timestamp``: epoch milliseconds need 13."""


def hmac_hex(secret: str, message: bytes) -> str:
    """Hex HMAC-SHA256 of ``message`` under ``secret``."""
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The ``x-zm-signature`` Zoom sends for ``body`` at ``timestamp``."""
    return "v0=" + hmac_hex(secret, b"v0:" + timestamp.encode() + b":" + body)


def signature_problem(
    secret: str, timestamp: str | None, given: str | None, body: bytes, now: float
) -> str | None:
    """Why the request is not Zoom's, or ``None`` when signature and time are right."""
    if not timestamp or not given:
        return "missing x-zm-signature or x-zm-request-timestamp"
    # ASCII digits only: int() also takes " 1_0", other scripts' digits, and refuses 4,301.
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > MAX_TIMESTAMP_DIGITS:
        return "bad x-zm-request-timestamp"
    sent = int(timestamp)
    if sent > 10**11:  # milliseconds
        sent //= 1000
    if abs(now - sent) > MAX_SIGNATURE_AGE_SECONDS:
        return "stale request"
    # Bytes: compare_digest refuses a non-ASCII str, and a header may hold any latin-1 text.
    expected = signature(secret, timestamp, body).encode()
    if not hmac.compare_digest(expected, given.encode("utf-8", "surrogatepass")):
        return "bad signature"
    return None


def url_validation_answer(secret: str, plain_token: str) -> dict[str, str]:
    """The body Zoom expects back for ``endpoint.url_validation``."""
    return {"plainToken": plain_token, "encryptedToken": hmac_hex(secret, plain_token.encode())}


def delivery_id(payload: dict[str, Any], cfg: ZoomConfig) -> str:
    """One delivery: a recording by its meeting; any other event also by its time."""
    event = str(payload.get("event", ""))
    uuid = first(payload, cfg.fields.meeting_uuid) or ""
    if event == RECORDING_COMPLETED:
        return f"{event}:{uuid}"
    who = "|".join(gather(payload, cfg.fields.participant_emails))
    return f"{event}:{uuid}:{who}:{payload.get('event_ts', '')}"


def parse(payload: dict[str, Any], cfg: ZoomConfig) -> Capture | None:
    """A meeting :class:`Capture` from a kept event; ``None`` for other events."""
    event = str(payload.get("event", ""))
    if event not in cfg.events:
        return None
    f = cfg.fields
    missing: list[str] = []
    uuid = first(payload, f.meeting_uuid)
    if uuid is None:
        return None
    completed = event == RECORDING_COMPLETED
    url = first(payload, f.url) if completed else None
    if completed and not isinstance(url, str):
        missing.append("url")
    at = parse_time(first(payload, f.started_at)) if completed else None
    if completed and at is None:
        missing.append("started_at")
    host = first(payload, f.host_email)
    topic = first(payload, f.topic)
    return Capture(
        provider=PROVIDER,
        external_id=str(uuid),
        kind=Kind.MEETING,
        url=url if isinstance(url, str) else "",
        at=at,
        title=str(topic) if topic and completed else "",
        emails=tuple(e.lower() for e in gather(payload, f.participant_emails)),
        host_email=str(host).lower() if isinstance(host, str) else "",
        event=event,
        missing=tuple(missing),
        payload=compact(payload) if completed else {},
    )
