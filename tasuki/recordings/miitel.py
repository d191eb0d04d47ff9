"""MiiTel's outgoing webhook (call history): the challenge and call events → :class:`Capture`.

What MiiTel publishes (support.miitel.jp, "Outgoing Webhook (call history)"): on saving the
setting it POSTs ``{"challenge": "<hex token>"}`` and expects ``200``, ``text/plain``, the token
alone; requests carry any "Additional headers" the admin configured (that is how tasuki's token
travels); events fire when the voice analysis of a call ends and on missed / unanswered calls.
The call fields themselves are read through the paths in ``recordings.yaml`` (see
:class:`~tasuki.recordings.config.MiitelFields`): tasuki does not claim to know them.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from tasuki.recordings.capture import Capture, Kind, compact, first, gather, parse_time
from tasuki.recordings.config import MiitelConfig

PROVIDER = "miitel"


def challenge_token(payload: Any, cfg: MiitelConfig) -> str | None:
    """The registration challenge's token, when ``payload`` is MiiTel's challenge request."""
    if not isinstance(payload, dict):
        return None
    token = first(payload, cfg.fields.challenge)
    return token if isinstance(token, str) and token else None


def delivery_id(payload: Any, cfg: MiitelConfig) -> str:
    """What identifies one delivery: the call and the event, else a digest of the body."""
    call_id = first(payload, cfg.fields.call_id)
    event = first(payload, cfg.fields.event)
    if call_id is not None:
        return f"{call_id}:{event or 'call'}"
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def parse(payload: dict[str, Any], cfg: MiitelConfig) -> Capture:
    """A call :class:`Capture`; each fact not found is named in ``missing``."""
    f = cfg.fields
    missing: list[str] = []
    call_id = first(payload, f.call_id)
    if call_id is None:
        missing.append("call_id")
    external_id = str(call_id) if call_id is not None else delivery_id(payload, cfg)
    url = first(payload, f.url)
    if not isinstance(url, str) and cfg.url_template and call_id is not None:
        url = cfg.url_template.format(call_id=call_id)
    if not isinstance(url, str):
        missing.append("url")
        url = ""
    at = parse_time(first(payload, f.started_at))
    if at is None:
        missing.append("started_at")
    own = set(cfg.own_numbers)
    phones = tuple(p for p in gather(payload, f.phones) if p not in own)
    if not phones:
        missing.append("phones")
    user_id = first(payload, f.user_id)
    user_id = str(user_id) if user_id is not None else ""
    emails = [e.lower() for e in gather(payload, f.user_email)]
    user_email = cfg.users.get(user_id, emails[0] if emails else "").lower()
    if not user_email:
        missing.append("user_email")
    event = first(payload, f.event)
    return Capture(
        provider=PROVIDER,
        external_id=external_id,
        kind=Kind.CALL,
        url=url,
        at=at,
        phones=phones,
        host_email=user_email,
        user_id=user_id,
        event=str(event) if event is not None else "",
        missing=tuple(missing),
        payload=compact(payload),
    )
