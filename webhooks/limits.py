"""What a webhook request may carry: the checks every receiver makes before the store sees a value.

The store bounds what it can take: ``deliveries.delivery_id`` holds 200 characters and a record
id 64, PostgreSQL refuses NUL in text, neither database takes a lone UTF-16 surrogate (JSON's
``"\\ud800"``), and PostgreSQL's ``json`` takes no NaN or infinity. A receiver parses a JSON
body with :func:`load_json` (nesting bounded, every value storable), checks each id it hands to
:class:`~webhooks.intake.Intake` with :func:`id_problem`, reads a timestamp header with
:func:`timestamp` and compares a signature or token with :func:`same_secret`, which takes any
header value. What is refused is answered 400 (401 for a signature), never a 500 from deeper
down; :data:`REQUEST_FAULTS` names what the app still answers 400 should a receiver miss it.
"""

from __future__ import annotations

import hmac
import json
import math
import re
from typing import Any

MAX_DELIVERY_ID = 200
"""Longest delivery id (``deliveries.delivery_id``)."""
MAX_RECORD_ID = 64
"""Longest CRM record id (``records.record_id``, where a queued sync puts it)."""
MAX_JSON_DEPTH = 64
"""Deepest nesting of a JSON body. Providers send a handful of levels; deeper bodies would
exhaust the recursion of the encoders and pickling a job goes through."""
MAX_TIMESTAMP_DIGITS = 15
"""Digits of a timestamp header: epoch milliseconds need 13."""

_UNSTORABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
"""Control characters (NUL among them) and lone surrogates: never part of an id."""
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_DIGITS = re.compile(rf"[0-9]{{1,{MAX_TIMESTAMP_DIGITS}}}")


class Refused(ValueError):
    """A request carries something tasuki does not take; the message says what (answered 400)."""


REQUEST_FAULTS: tuple[type[Exception], ...] = (Refused, RecursionError, UnicodeError)
"""Exceptions that can only come from what a request carries (nesting past the recursion limit,
text that does not decode or encode): the app answers them 400, not 500."""


def id_problem(value: object, where: str, longest: int) -> str | None:
    """Why ``value`` cannot be an id of at most ``longest`` characters, or ``None`` when it can:
    a non-empty string without control characters or lone surrogates."""
    if not isinstance(value, str) or not value or len(value) > longest:
        return f"{where} must be a non-empty string of at most {longest} characters"
    if _UNSTORABLE.search(value):
        return f"{where} holds a control character or a lone surrogate"
    return None


def _no_constant(name: str) -> Any:
    raise Refused(f"body holds {name}, which JSON does not have")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400
        raise Refused(f"body holds {text[:20]}, a number beyond a double")
    return value


def load_json(body: bytes) -> Any:
    """The JSON document in ``body``; :class:`Refused` when it is not JSON (Python's parser
    also takes ``NaN`` and ``Infinity``, which no store's JSON does), nests deeper than
    :data:`MAX_JSON_DEPTH` or holds a lone surrogate."""
    try:
        data = json.loads(body, parse_constant=_no_constant, parse_float=_finite)
    except Refused:
        raise
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise Refused("body is not JSON") from exc
    if (
        b"\x00" not in body  # UTF-8 (JSON in UTF-16 or UTF-32 holds NULs)
        and b"\\u" not in body
        and body.count(b"[") + body.count(b"{") < MAX_JSON_DEPTH
    ):
        # No \u escape to spell a surrogate with (UTF-8 itself cannot carry one), and too few
        # brackets to nest that deep: nothing to walk. Most webhooks end here.
        return data
    # Iterative, so a body just under the parser's own limit cannot exhaust the stack here.
    pending: list[tuple[Any, int]] = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                raise Refused("body holds a lone UTF-16 surrogate")
        elif isinstance(value, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise Refused(f"body nests deeper than {MAX_JSON_DEPTH} levels")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            pending.extend((v, depth + 1) for pair in items for v in pair)
    return data


def timestamp(text: str | None) -> int | None:
    """The integer in a timestamp header of ASCII digits only, else ``None`` (``"²³"`` passes
    ``str.isdigit``, and ``int()`` refuses more than 4,300 digits)."""
    if text is None or not _DIGITS.fullmatch(text):
        return None
    return int(text)


def same_secret(given: str | None, expected: str) -> bool:
    """Whether a header value equals ``expected``, compared in constant time; any header value
    (missing, empty, non-ASCII) that is not it is simply False."""
    if not given:
        return False
    # Bytes: compare_digest refuses non-ASCII str. surrogatepass keeps the encoding one-to-one.
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )
