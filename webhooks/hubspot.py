"""``POST /webhooks/hubspot``: HubSpot's webhook deliveries (a JSON array of up to 100 events).

Every request must carry a valid signature under ``TASUKI_HUBSPOT_CLIENT_SECRET``:

- v3 (``X-HubSpot-Signature-v3``, checked whenever present): base64 HMAC-SHA256 of method + URI +
  raw body + ``X-HubSpot-Request-Timestamp``. The URI is the one HubSpot called, built from
  ``TASUKI_PUBLIC_URL`` and the raw request path (tasuki runs behind a proxy), with the
  characters HubSpot lists decoded (``%3A %2F %3F %40 %21 %24 %27 %28 %29 %2A %2C %3B``, and no
  others). A timestamp more than 5 minutes away from now is refused.
- v1/v2 (``X-HubSpot-Signature`` with ``X-HubSpot-Signature-Version``) for older apps: hex
  SHA-256 of secret + body (v1) or secret + method + URI + body (v2), the client library's helper.

Bad, missing or stale signature: 401, nothing queued. Not a JSON array of events, or an event
whose delivery id or record ids the store cannot take (too long, control characters): 400. Queue
down: 503 (HubSpot retries). Otherwise 200 ``{"accepted": n, "duplicates": n, "ignored": n}``.

An event's delivery id is portal + eventId + subscription type + object + property (HubSpot
does not promise eventIds unique on their own); it is recorded in the ``deliveries`` table in the
same transaction as the enqueue, so a retry (``attemptNumber`` > 0) or repeated delivery of an
accepted event is a duplicate, and an event whose first delivery failed is taken on its retry.
Events of one request are queued as one sync per object type (``enqueue_sync`` also merges them
into a sync still waiting), so a burst of changes to one record makes one sync. Changes tasuki's
own app made (``changeSource`` INTEGRATION/API from ``TASUKI_HUBSPOT_APP_ID``) or that hold what
the write ledger says tasuki wrote are ignored. No CRM is called here.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from flask import Blueprint, Response, jsonify, request
from hubspot.utils.signature import Signature
from sqlalchemy import select, tuple_

from tasuki.deliveries import Notice
from tasuki.errors import QueueUnavailable
from tasuki.mapping import ledger_value
from tasuki.queue import job_queue
from tasuki.settings import Settings
from tasuki.store.db import Store
from tasuki.store.models import LedgerEntry
from webhooks.intake import Intake
from webhooks.limits import (
    MAX_DELIVERY_ID,
    MAX_RECORD_ID,
    Refused,
    id_problem,
    load_json,
    same_secret,
    timestamp,
)

PROVIDER = "hubspot"
SECRET_NAME = "TASUKI_HUBSPOT_CLIENT_SECRET"
MAX_AGE_MS = 5 * 60 * 1000
"""HubSpot: reject a v3 request whose timestamp is older than 5 minutes."""
MAX_EVENTS = 100
DECODED = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}
"""The percent-encodings HubSpot decodes in the URI it signs for v3; every other one stays."""
_DECODED_RE = re.compile("|".join(DECODED), re.IGNORECASE)

OBJECTS = {"contact": "contacts", "company": "companies", "deal": "deals"}
OBJECT_TYPE_IDS = {"0-1": "contacts", "0-2": "companies", "0-3": "deals"}
"""``object.*`` (generic) events name the object by its type id."""
OWN_SOURCES = frozenset({"INTEGRATION", "API"})


def signed_uri(public_url: str, raw_path: str) -> str:
    """The URI HubSpot signs for v3: public base + raw path and query, listed characters decoded."""
    return _DECODED_RE.sub(lambda m: DECODED[m.group(0).upper()], public_url.rstrip("/") + raw_path)


def signature_v3(secret: str, method: str, uri: str, body: str, timestamp: str) -> str:
    """The v3 signature HubSpot sends for this request (the client library's helper)."""
    signed: str = Signature.get_signature(
        secret, body, "v3", http_uri=uri, http_method=method, timestamp=timestamp
    )
    return signed


def signature_problem(
    secret: str,
    method: str,
    public_url: str,
    raw_path: str,
    body: str,
    headers: Mapping[str, str],
    now_ms: int,
) -> str | None:
    """Why this request is not HubSpot's, or ``None`` when its signature holds.

    ``raw_path`` is the path and query as sent (still percent-encoded); ``headers`` are looked up
    case-insensitively.
    """
    headers = _case_insensitive(headers)
    v3 = headers.get("X-HubSpot-Signature-v3")
    if v3:
        stamp = headers.get("X-HubSpot-Request-Timestamp")
        sent = timestamp(stamp)
        if sent is None:
            return "missing or malformed X-HubSpot-Request-Timestamp"
        # The library checks only the past, with its own clock; a future stamp is stale too.
        if abs(now_ms - sent) > MAX_AGE_MS:
            return "request timestamp is more than 5 minutes old"
        uri = signed_uri(public_url, raw_path)
        expected = signature_v3(secret, method, uri, body, stamp)
        return None if same_secret(v3, expected) else "bad v3 signature"
    old = headers.get("X-HubSpot-Signature")
    version = headers.get("X-HubSpot-Signature-Version") or "v1"
    if not old:
        return "no HubSpot signature"
    if version not in ("v1", "v2"):
        return f"unknown signature version {version!r}"
    # v2 signs the URI exactly as called: nothing decoded. The library's own is_valid compares
    # str, which raises on a non-ASCII header, so only its recipe is used.
    expected = Signature.get_signature(
        secret, body, version, http_uri=public_url.rstrip("/") + raw_path, http_method=method
    )
    return None if same_secret(old, expected) else f"bad {version} signature"


@dataclass(frozen=True)
class Event:
    """One HubSpot webhook event, reduced to what tasuki acts on."""

    delivery_id: str
    kind: str
    """``creation``, ``deletion``, ``propertyChange``, ``merge``, ``associationChange`` ..."""
    records: tuple[tuple[str, str], ...]
    """(object type, record id) pairs this event asks tasuki to sync."""
    property_name: str | None = None
    property_value: str | None = None
    change_source: str | None = None
    source_id: str | None = None


class BadDelivery(ValueError):
    """The body is not a delivery of HubSpot events (answered 400)."""


def parse_events(body: bytes) -> list[Event]:
    """The events of a delivery body, in order; raises :class:`BadDelivery`, also for an event
    whose delivery id or record ids the store cannot take."""
    try:
        data = load_json(body)
    except Refused as exc:
        raise BadDelivery(str(exc)) from exc
    if not isinstance(data, list) or not data:
        raise BadDelivery("body is not a JSON array of events")
    if len(data) > MAX_EVENTS:
        raise BadDelivery(f"more than {MAX_EVENTS} events")
    events = []
    for item in data:
        if not isinstance(item, dict):
            raise BadDelivery("an event is not a JSON object")
        kind_text = item.get("subscriptionType") or item.get("eventType")
        if not isinstance(kind_text, str) or "eventId" not in item or "." not in kind_text:
            raise BadDelivery("an event has no subscriptionType/eventType or eventId")
        events.append(_checked(_event(item, kind_text)))
    return events


def _checked(event: Event) -> Event:
    """``event``, when the store can take its delivery id and record ids."""
    problems = [id_problem(event.delivery_id, "an event's delivery id", MAX_DELIVERY_ID)]
    problems += [id_problem(rid, "an event's object id", MAX_RECORD_ID) for _, rid in event.records]
    problem = next(filter(None, problems), None)
    if problem:
        raise BadDelivery(problem)
    return event


def _text(value: Any) -> str | None:
    """A field HubSpot sends as text; anything else (a list, an object) counts as absent."""
    return value if isinstance(value, str) else None


def _object_id(value: Any) -> str | None:
    """An object id as text: HubSpot sends numbers (or their text); nothing else is an id."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    return str(value)


def _event(item: Mapping[str, Any], kind_text: str) -> Event:
    prefix, _, kind = kind_text.partition(".")
    obj = OBJECTS.get(prefix)
    if prefix == "object":
        obj = OBJECT_TYPE_IDS.get(str(item.get("objectTypeId")))
    records: list[tuple[str, str]] = []
    if obj is not None:
        ids = [item.get("objectId")]
        if kind == "merge":
            merged = item.get("mergedObjectIds")
            ids += [item.get("primaryObjectId"), item.get("newObjectId")]
            ids += merged if isinstance(merged, list) else []
        records += [(obj, i) for i in map(_object_id, ids) if i is not None]
    if kind == "associationChange":
        sides = str(item.get("associationType") or "").split("_TO_")
        ends = (_object_id(item.get("fromObjectId")), _object_id(item.get("toObjectId")))
        for side, rid in zip(sides, ends, strict=False):
            side_obj = OBJECTS.get(side.lower())
            if side_obj is not None and rid is not None:
                records.append((side_obj, rid))
    key = ":".join(
        str(item.get(k, ""))
        for k in ("portalId", "eventId", "objectId", "propertyName", "associationType")
    )
    value = item.get("propertyValue")
    return Event(
        delivery_id=f"{kind_text}:{key}",
        kind=kind,
        records=tuple(dict.fromkeys(records)),
        property_name=_text(item.get("propertyName")),
        property_value=None if value is None else str(value),
        change_source=_text(item.get("changeSource")),
        source_id=None if item.get("sourceId") is None else str(item.get("sourceId")),
    )


def is_own_change(event: Event, app_id: str | None) -> bool:
    """The change came from tasuki's own app (its changeSource and source id say so)."""
    if app_id is None or event.change_source not in OWN_SOURCES or not event.source_id:
        return False
    return event.source_id.rpartition(":")[2] == app_id


def _hubspot_text(ledger: str | None) -> str | None:
    """How HubSpot shows (in ``propertyValue``) a value the ledger holds."""
    if ledger is None:
        return None
    value = json.loads(ledger)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def ledger_echoes(store: Store, events: Sequence[Event]) -> set[str]:
    """Delivery ids of property changes that set exactly what the ledger says tasuki wrote."""
    wanted = {
        (obj, rid, e.property_name): e
        for e in events
        if e.kind == "propertyChange" and e.property_name and len(e.records) == 1
        for obj, rid in e.records
    }
    if not wanted:
        return set()
    echoes: set[str] = set()
    with store.session() as session:
        rows = session.execute(
            select(LedgerEntry.object, LedgerEntry.record_id, LedgerEntry.field, LedgerEntry.value)
            .where(LedgerEntry.system == PROVIDER)
            .where(
                tuple_(LedgerEntry.object, LedgerEntry.record_id, LedgerEntry.field).in_(
                    list(wanted)
                )
            )
        )
        for obj, rid, fld, value in rows:
            event = wanted[(obj, rid, fld)]
            if event.property_value in (_hubspot_text(value), value, ledger_value(value)):
                echoes.add(event.delivery_id)
    return echoes


def _raw_path() -> str:
    env = request.environ
    raw = env.get("RAW_URI") or env.get("REQUEST_URI")
    if raw:
        return str(raw)
    query = env.get("QUERY_STRING", "")
    return request.script_root + request.path + (f"?{query}" if query else "")


def blueprint(
    settings: Settings,
    store: Store,
    connection: redis.Redis | None = None,
    *,
    clock: Callable[[], float] = time.time,
    app_id: str | None = None,
    intake: Intake | None = None,
) -> Blueprint:
    """The HubSpot receiver, bound to settings, the store (deliveries, ledger) and the queue.

    ``app_id`` is tasuki's own HubSpot app (default ``settings.hubspot.app_id``,
    ``TASUKI_HUBSPOT_APP_ID``)."""
    bp = Blueprint("hubspot", __name__)
    intake = intake or Intake(store, job_queue(settings, connection))
    secret = settings.hubspot.client_secret
    own_app = app_id if app_id is not None else settings.hubspot.app_id

    @bp.post("/webhooks/hubspot")
    def receive() -> tuple[Response, int]:
        if secret is None or not settings.public_url:
            return jsonify(error=f"{SECRET_NAME} and TASUKI_PUBLIC_URL must be set"), 503
        raw = request.get_data(cache=True)
        body = raw.decode("utf-8", "replace")
        problem = signature_problem(
            secret.get_secret_value(),
            request.method,
            settings.public_url,
            _raw_path(),
            body,
            dict(request.headers.items()),
            int(clock() * 1000),
        )
        if problem:
            return jsonify(error=problem), 401
        try:
            events = parse_events(raw)
        except BadDelivery as exc:
            return jsonify(error=str(exc)), 400
        try:
            accepted, duplicates, ignored = _take(events, store, intake, own_app)
        except QueueUnavailable as exc:
            return jsonify(error=str(exc)), 503
        return jsonify(accepted=accepted, duplicates=duplicates, ignored=ignored), 200

    return bp


def _take(
    events: list[Event],
    store: Store,
    intake: Intake,
    app_id: str | None,
) -> tuple[int, int, int]:
    """Record new deliveries and queue their syncs through the shared intake path; echoes of
    our own writes are recorded (so retries stay duplicates) but queue nothing.

    Returns (accepted, duplicates, ignored)."""
    echoes = ledger_echoes(store, events)
    work = [
        Notice(
            e.delivery_id,
            [] if e.delivery_id in echoes or is_own_change(e, app_id) else list(e.records),
        )
        for e in events
    ]
    taken = intake.take(PROVIDER, work)
    return taken.accepted, taken.duplicates, taken.ignored


class _case_insensitive(dict[str, str]):
    """Header look-ups regardless of case (HubSpot writes ``-v3``, proxies may lower it)."""

    def __init__(self, items: Mapping[str, str]) -> None:
        super().__init__({k.lower(): v for k, v in items.items()})

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)
