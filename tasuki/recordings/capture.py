"""What a provider told us about one recording, before any CRM record is looked at.

:class:`Capture` is the provider-neutral result of reading a MiiTel or Zoom payload; the
parsers in :mod:`tasuki.recordings.miitel` and :mod:`tasuki.recordings.zoom` build it with the
path helpers here, from the paths in ``recordings.yaml``. A fact the payload lacks is named in
``missing`` instead of being guessed, so the stored recording can say why it is not linked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any

MAX_STORED_PAYLOAD = 64 * 1024
"""Bytes of a provider payload kept with a recording (and carried by the job); larger values
inside it (a MiiTel transcript, say) are replaced by a note of their size."""

_STEP = re.compile(r"^(?P<key>[^\[\]]*)(?P<all>\[\])?$")


class Kind(str, Enum):
    """What was recorded."""

    CALL = "call"
    MEETING = "meeting"


def _walk(value: Any, steps: Sequence[str]) -> Iterator[Any]:
    if not steps:
        yield value
        return
    m = _STEP.match(steps[0])
    if m is None:
        return
    key, every = m.group("key"), bool(m.group("all"))
    if isinstance(value, dict):
        if key not in value:
            return
        value = value[key]
    elif isinstance(value, list) and key.isdigit():
        index = int(key)
        if index >= len(value):
            return
        value = value[index]
    else:
        return
    if every:
        for item in value if isinstance(value, list) else []:
            yield from _walk(item, steps[1:])
    else:
        yield from _walk(value, steps[1:])


def values_at(payload: Any, path: str) -> list[Any]:
    """Every non-empty value found at ``path`` (``a.b[].c``; ``[]`` walks a list)."""
    return [v for v in _walk(payload, path.split(".")) if v not in (None, "", [], {})]


def first(payload: Any, paths: Sequence[str]) -> Any:
    """The value at the first of ``paths`` that holds one, else ``None``."""
    for path in paths:
        found = values_at(payload, path)
        if found:
            return found[0]
    return None


def gather(payload: Any, paths: Sequence[str]) -> list[str]:
    """Every text value at any of ``paths``, in order, without repeats."""
    seen: dict[str, None] = {}
    for path in paths:
        for v in values_at(payload, path):
            if isinstance(v, str | int) and not isinstance(v, bool):
                seen.setdefault(str(v).strip(), None)
    return [v for v in seen if v]


def parse_time(value: Any) -> datetime | None:
    """An aware datetime from ISO 8601 text or epoch seconds/milliseconds; ``None`` otherwise.

    A time without zone is taken as UTC, which is what Zoom sends (``…Z``); MiiTel's zone is
    not published, so a zone-less MiiTel time is kept as UTC and docs/recordings.md says so."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 10**11 else value
        return datetime.fromtimestamp(seconds, UTC)
    text = str(value).strip()
    if not text:
        return None
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def compact(payload: Any, limit: int = MAX_STORED_PAYLOAD) -> Any:
    """``payload`` unchanged when its JSON fits ``limit`` bytes, else with its largest values
    replaced by ``{"_tasuki_dropped_bytes": n}`` until it fits."""
    size = len(json.dumps(payload, ensure_ascii=False, default=str).encode())
    if size <= limit or not isinstance(payload, dict | list):
        return payload
    items = list(payload.items()) if isinstance(payload, dict) else list(enumerate(payload))
    sizes = sorted(
        ((len(json.dumps(v, ensure_ascii=False, default=str).encode()), k) for k, v in items),
        key=lambda t: t[0],
        reverse=True,
    )
    out: Any = dict(payload) if isinstance(payload, dict) else list(payload)
    for n, key in sizes:
        if size <= limit:
            break
        inner = compact(out[key], max(limit // 4, 1024))
        new = len(json.dumps(inner, ensure_ascii=False, default=str).encode())
        if new > max(limit // 4, 1024):
            inner, new = {"_tasuki_dropped_bytes": n}, 40
        out[key] = inner
        size -= n - new
    return out


@dataclass(frozen=True)
class Capture:
    """One recording as a provider described it (no CRM look-up yet)."""

    provider: str
    external_id: str
    kind: Kind
    url: str
    at: datetime | None
    title: str = ""
    phones: tuple[str, ...] = ()
    """As sent by the provider (normalised only when matching)."""
    emails: tuple[str, ...] = ()
    """Participants' emails, lower-cased."""
    host_email: str = ""
    """Zoom host or MiiTel user email, lower-cased."""
    user_id: str = ""
    """The provider's own id of the user (MiiTel user id)."""
    event: str = ""
    missing: tuple[str, ...] = ()
    """Facts the payload did not carry, by their ``recordings.yaml`` name."""
    payload: dict[str, Any] = field(default_factory=dict)
