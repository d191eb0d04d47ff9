"""An emulator of the HubSpot CRM v3 endpoints tasuki uses, served over HTTP on 127.0.0.1.

The unmodified hubspot-api-client talks to it through its ``host`` setting. What it keeps of
HubSpot's behaviour:

- objects (contacts, companies, deals): ``batch/read`` (100 ids, 50 with ``propertiesWithHistory``;
  by a unique property with ``idProperty``; unknown ids → 207 with an ``OBJECT_NOT_FOUND`` error),
  ``batch/update`` (100 inputs; per-record failures → 207 Multi-Status with HubSpot's
  ``status``/``category``/``message``/``context``),
  ``search`` (filter groups with EQ/NEQ/LT/LTE/GT/GTE/BETWEEN/IN/HAS_PROPERTY, one sort, 200 a
  page, ``after`` paging that stops at the 10,000-result cap with a 400);
- custom objects (:meth:`HubSpotEmulator.define_custom_object`, tasuki's KPI object with
  :meth:`HubSpotEmulator.define_tasuki_kpi`), addressed by objectTypeId (``2-…``), fully qualified
  name (``p{portalId}_{name}``) or ``p_{name}``, never by the bare name;
- ``batch/upsert`` on a unique-value property (see :meth:`HubSpotEmulator._route_batch_upsert`);
- property history (newest first, with ``sourceType``/``sourceId``), owners with teams,
  pipelines with stages, OAuth refresh-token grant;
- rate limits: a burst window per token (429 ``TEN_SECONDLY_ROLLING``), search per second (429
  ``SECONDLY``), a daily allowance (429 ``DAILY``), and the ``X-HubSpot-RateLimit-*`` headers;
- injectable faults: 429 of either policy, 5xx, and timeouts (a reply held past the client's
  timeout), optionally only on one route;
- every call counted by route in :attr:`HubSpotEmulator.calls`, every answer logged with its
  time in :attr:`HubSpotEmulator.log`.

Records sharing one last-modified timestamp are returned in a scrambled order when sorted by
that timestamp, as nothing in HubSpot promises an order among ties.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

OBJECTS = ("contacts", "companies", "deals")
OBJECT_TYPE_IDS = {"contacts": "0-1", "companies": "0-2", "deals": "0-3"}
LASTMOD = {"contacts": "lastmodifieddate", "companies": "hs_lastmodifieddate"}
DATETIME_PROPS = {"createdate", "lastmodifieddate", "hs_lastmodifieddate", "closedate"}
NUMERIC_PROPS = {"hs_object_id", "amount"}
BATCH_LIMIT = 100
HISTORY_BATCH_LIMIT = 50
SEARCH_PAGE_LIMIT = 200
SEARCH_RESULT_CAP = 10_000
TASUKI_KPI_TYPE_ID = "2-7654321"
TASUKI_KPI_PROPERTIES = {
    "tasuki_key": "string",
    "hubspot_owner_id": "string",
    "subject_kind": "string",
    "subject": "string",
    "kpi_id": "string",
    "kpi_label": "string",
    "period": "string",
    "value": "number",
    "target": "number",
    "attainment": "number",
    "numerator": "number",
    "denominator": "number",
}
"""The ``tasuki_kpi`` custom object of docs/hubspot.md; ``tasuki_key`` has unique values."""


def lastmod_property(object_type: str) -> str:
    """The last-modified property HubSpot keeps on ``object_type``."""
    return LASTMOD.get(object_type, "hs_lastmodifieddate")


def iso(ms: int) -> str:
    """HubSpot's datetime format: ISO 8601, milliseconds, ``Z``."""
    return (
        datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
    )


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class HistoryEntry:
    value: str
    timestamp: int
    source_type: str
    source_id: str | None
    user_id: str | None


@dataclass
class Rec:
    id: int
    props: dict[str, str]
    created: int
    lastmod: int
    history: dict[str, list[HistoryEntry]] = field(default_factory=dict)


@dataclass
class Fault:
    kind: str
    """``429`` (burst), ``429-daily``, ``429-secondly``, a 5xx status as text, or ``timeout``."""
    route: str | None
    left: int


class ObjectStore:
    """One object type's records with a lazily rebuilt (lastmod, id) index for search."""

    def __init__(self, object_type: str, type_id: str = "") -> None:
        self.type = object_type
        self.type_id = type_id or OBJECT_TYPE_IDS.get(object_type, object_type)
        """The objectTypeId (``0-1`` contacts, ``2-…`` a custom object) HubSpot's errors name."""
        self.records: dict[int, Rec] = {}
        self.properties: set[str] | None = None
        self.types: dict[str, str] = {}
        self.unique: set[str] = set()
        """Properties with unique values (``hasUniqueValue``): what ``batch/upsert`` matches on."""
        self._index: list[Rec] | None = None

    def touched(self) -> None:
        self._index = None

    def by_lastmod(self) -> list[Rec]:
        if self._index is None:
            # Ties in a scrambled order: only the timestamp orders records.
            self._index = sorted(
                self.records.values(),
                key=lambda r: (r.lastmod, hashlib.md5(str(r.id).encode()).hexdigest()),
            )
        return self._index


class HubSpotEmulator:
    """The emulated account. ``serve()`` starts it; ``url`` is the host for the client."""

    def __init__(
        self,
        *,
        token: str = "emulator-token",
        app_id: str = "424242",
        portal_id: int = 62515,
        burst: tuple[int, float] = (190, 10.0),
        search_per_second: tuple[int, float] = (5, 1.0),
        daily: int = 650_000,
        timeout_delay: float = 2.0,
    ) -> None:
        self.tokens = {token: app_id}
        self.app_id = app_id
        self.portal_id = portal_id
        self.burst = burst
        self.search_limit = search_per_second
        self.daily = daily
        self.daily_used = 0
        self.timeout_delay = timeout_delay
        self.stores = {o: ObjectStore(o) for o in OBJECTS}
        self.multi_status = True
        """Whether inputs that all carry an ``objectWriteTraceId`` get a 207 naming the refused
        ones (what HubSpot answers); ``False`` refuses the whole batch for one bad input, as HubSpot
        does for inputs without trace ids."""
        self.owners: list[dict[str, Any]] = []
        self.pipelines: dict[str, list[dict[str, Any]]] = {}
        self.refresh_tokens: dict[str, tuple[str, str, str]] = {}
        """refresh token → (client id, client secret, app id)."""
        self.calls: Counter[str] = Counter()
        self.log: list[tuple[float, str, int, str]] = []
        """(monotonic arrival time, route, status, 429 policy or "") of every answer."""
        self.faults: list[Fault] = []
        self._burst_log: dict[str, deque[float]] = {}
        self._search_log: dict[str, deque[float]] = {}
        self._lock = threading.RLock()
        self._ids = itertools.count(1001)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    # -- serving -------------------------------------------------------------------------------

    def serve(self) -> str:
        """Start serving on a free port of 127.0.0.1; returns the base URL."""
        self._server = make_server(
            "127.0.0.1", 0, self.wsgi, threaded=True, request_handler=_QuietHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return self.url

    @property
    def url(self) -> str:
        assert self._server is not None, "serve() first"
        return f"http://127.0.0.1:{self._server.server_port}"

    def close(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # -- administration (what people do in HubSpot) ------------------------------------------

    def define(self, object_type: str, properties: Mapping[str, str] | Iterable[str]) -> None:
        """Declare properties of an object (name → type, ``string`` when only names are given);
        once declared, writes to other properties are rejected."""
        store = self.stores[object_type]
        types = dict(properties) if isinstance(properties, Mapping) else {}
        for name in properties:
            store.types[name] = types.get(name) or _default_type(name)
        store.properties = set(store.types)

    def define_custom_object(
        self,
        name: str,
        type_id: str,
        properties: Mapping[str, str] | Iterable[str],
        *,
        unique: Iterable[str] = (),
    ) -> ObjectStore:
        """A custom object schema (what ``POST /crm/v3/schemas`` makes), addressable by its
        objectTypeId (``2-…``), its fully qualified name (``p{portalId}_{name}``) and ``p_{name}``
        but not by ``name`` alone; ``unique`` properties have ``hasUniqueValue`` (``batch/upsert``
        and ``batch/read`` may match on them)."""
        store = ObjectStore(type_id, type_id)
        for alias in (type_id, f"p{self.portal_id}_{name}", f"p_{name}"):
            self.stores[alias] = store
        self.define(type_id, properties)
        store.unique = set(unique)
        return store

    def define_tasuki_kpi(self) -> ObjectStore:
        """tasuki's KPI object (:data:`TASUKI_KPI_PROPERTIES`), upserted on ``tasuki_key``."""
        return self.define_custom_object(
            "tasuki_kpi", TASUKI_KPI_TYPE_ID, TASUKI_KPI_PROPERTIES, unique=["tasuki_key"]
        )

    def add_owner(
        self, owner_id: str, first: str, last: str, email: str, team: str | None, *, at: int = 0
    ) -> None:
        """An owner (a HubSpot user) whose primary team is ``team``."""
        stamp = iso(at or now_ms())
        teams = (
            [{"id": str(abs(hash(team)) % 10**6), "name": team, "primary": True}] if team else []
        )
        self.owners.append(
            {
                "id": owner_id,
                "email": email,
                "type": "PERSON",
                "firstName": first,
                "lastName": last,
                "userId": int(owner_id) + 1,
                "userIdIncludingInactive": int(owner_id) + 1,
                "createdAt": stamp,
                "updatedAt": stamp,
                "archived": False,
                "teams": teams,
            }
        )

    def add_pipeline(self, object_type: str, pipeline_id: str, stages: Mapping[str, str]) -> None:
        """A pipeline with stages ``{stage id: label}`` in order."""
        self.pipelines.setdefault(object_type, []).append(
            {
                "id": pipeline_id,
                "label": pipeline_id.title(),
                "displayOrder": 0,
                "archived": False,
                "createdAt": iso(0),
                "updatedAt": iso(0),
                "stages": [
                    {
                        "id": sid,
                        "label": label,
                        "displayOrder": n,
                        "archived": False,
                        "metadata": {"isClosed": str("closed" in sid).lower()},
                        "createdAt": iso(0),
                        "updatedAt": iso(0),
                    }
                    for n, (sid, label) in enumerate(stages.items())
                ],
            }
        )

    def add_oauth_app(self, client_id: str, client_secret: str, refresh_token: str) -> None:
        """An OAuth app installed on the account, with a refresh token to trade."""
        self.refresh_tokens[refresh_token] = (client_id, client_secret, str(next(self._ids)))

    def create(
        self,
        object_type: str,
        props: Mapping[str, Any],
        *,
        at: int | None = None,
        record_id: int | None = None,
        source: tuple[str, str | None, str | None] = ("CRM_UI", None, None),
    ) -> str:
        """Create a record as a person would at ``at`` (ms); returns its id."""
        with self._lock:
            rid = record_id if record_id is not None else next(self._ids)
            stamp = now_ms() if at is None else at
            rec = Rec(rid, {"hs_object_id": str(rid)}, stamp, stamp)
            rec.props["createdate"] = iso(stamp)
            self.stores[object_type].records[rid] = rec
            self._apply(object_type, rec, props, stamp, source)
            return str(rid)

    def bulk_create(self, object_type: str, rows: Iterable[tuple[Mapping[str, Any], int]]) -> None:
        """Create many records quickly: (properties, created-and-modified ms) each."""
        with self._lock:
            store = self.stores[object_type]
            lm = lastmod_property(object_type)
            for props, stamp in rows:
                rid = next(self._ids)
                rec = Rec(rid, {k: _text(v) for k, v in props.items()}, stamp, stamp)
                rec.props.update(hs_object_id=str(rid), createdate=iso(stamp))
                rec.props[lm] = iso(stamp)
                store.records[rid] = rec
            store.touched()

    def update(
        self,
        object_type: str,
        record_id: str,
        props: Mapping[str, Any],
        *,
        at: int | None = None,
        source: tuple[str, str | None, str | None] = ("CRM_UI", None, None),
    ) -> None:
        """Change a record as ``source`` (sourceType, sourceId, userId) would at ``at`` (ms)."""
        with self._lock:
            rec = self.stores[object_type].records[int(record_id)]
            self._apply(object_type, rec, props, now_ms() if at is None else at, source)

    def archive(self, object_type: str, record_id: str) -> None:
        """Delete (archive) a record: it drops out of reads and search."""
        with self._lock:
            self.stores[object_type].records.pop(int(record_id), None)
            self.stores[object_type].touched()

    def get(self, object_type: str, record_id: str) -> dict[str, str] | None:
        """A record's properties as held now (no call counted)."""
        rec = self.stores[object_type].records.get(int(record_id))
        return None if rec is None else dict(rec.props)

    def _apply(
        self,
        object_type: str,
        rec: Rec,
        props: Mapping[str, Any],
        at: int,
        source: tuple[str, str | None, str | None],
    ) -> None:
        for name, value in props.items():
            text = _text(value)
            if rec.props.get(name) != text or name not in rec.history:
                rec.history.setdefault(name, []).insert(0, HistoryEntry(text, at, *source))
            rec.props[name] = text
        rec.lastmod = max(rec.lastmod, at)
        rec.props[lastmod_property(object_type)] = iso(rec.lastmod)
        self.stores[object_type].touched()

    # -- faults ----------------------------------------------------------------------------------

    def inject(self, kind: str, count: int = 1, *, route: str | None = None) -> None:
        """The next ``count`` calls (to ``route`` only, when given) fail with ``kind``."""
        with self._lock:
            self.faults.append(Fault(kind, route, count))

    def _take_fault(self, route: str) -> str | None:
        with self._lock:
            for f in self.faults:
                if f.left > 0 and (f.route is None or f.route == route):
                    f.left -= 1
                    return f.kind
        return None

    def max_in_window(self, seconds: float, routes: Iterable[str] | None = None) -> int:
        """The most answered (non-429) calls in any ``seconds``-long span."""
        wanted = set(routes) if routes is not None else None
        times = [t for t, r, s, _ in self.log if s != 429 and (wanted is None or r in wanted)]
        best, lo = 0, 0
        for hi, t in enumerate(times):
            while t - times[lo] >= seconds:
                lo += 1
            best = max(best, hi - lo + 1)
        return best

    def own_429s(self) -> int:
        """429s the emulator's own limits gave (injected faults excluded)."""
        return sum(1 for _, _, s, p in self.log if s == 429 and not p.startswith("injected"))

    # -- HTTP ------------------------------------------------------------------------------------

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        response = self._dispatch(request)
        result: Iterable[bytes] = response(environ, start_response)
        return result

    def _dispatch(self, request: Request) -> Response:
        response = self._answer(request)
        with self._lock:
            self.log.append(
                (
                    request.environ["hs.arrived"],
                    request.environ["hs.route"],
                    response.status_code,
                    request.environ.get("hs.policy", ""),
                )
            )
        return response

    def _answer(self, request: Request) -> Response:
        request.environ["hs.arrived"] = time.monotonic()
        request.environ["hs.route"] = "?"
        path = request.path.rstrip("/")
        parts = path.strip("/").split("/")
        route, args = _route(request.method, parts)
        request.environ["hs.route"] = route or "?"
        if route is None:
            return _error(404, "Not found", "OBJECT_NOT_FOUND")
        with self._lock:
            self.calls[route] += 1
        if route == "token":
            return self._log(request, self._token(request))
        app_id = self._auth(request)
        if app_id is None:
            return self._log(
                request,
                _error(
                    401,
                    "Authentication credentials not found. This API supports OAuth 2.0 "
                    "authentication and you can find more details at "
                    "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                    "INVALID_AUTHENTICATION",
                ),
            )
        fault = self._take_fault(route)
        if fault is not None:
            injected = self._fault_response(fault)
            if injected is not None:
                return self._log(request, injected, "injected")
        limited = self._rate_limit(route, request.headers.get("Authorization", ""))
        if limited is not None:
            return self._log(request, limited)
        try:
            body = json.loads(request.get_data() or b"null") if request.method == "POST" else None
        except ValueError:
            return self._log(request, _error(400, "Invalid input JSON", "VALIDATION_ERROR"))
        handler = getattr(self, f"_route_{route.replace('/', '_')}")
        with self._lock:
            response: Response = handler(request, body, app_id, *args)
        if route != "search":
            self._rate_headers(response, request.headers.get("Authorization", ""))
        return self._log(request, response)

    @staticmethod
    def _log(request: Request, response: Response, tag: str = "") -> Response:
        if response.status_code == 429:
            policy = json.loads(response.get_data()).get("policyName")
            request.environ["hs.policy"] = f"{tag}:{policy}" if tag else "own"
        return response

    def _auth(self, request: Request) -> str | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return None
        return self.tokens.get(header.removeprefix("Bearer "))

    def _fault_response(self, kind: str) -> Response | None:
        if kind == "timeout":
            time.sleep(self.timeout_delay)
            return None  # the client gave up long ago; the work is done as if it arrived late
        if kind.startswith("429"):
            policy = {"429": "TEN_SECONDLY_ROLLING", "429-daily": "DAILY"}.get(kind, "SECONDLY")
            return _rate_limited(policy, interval_ms=round(self.burst[1] * 1000))
        status = int(kind)
        return Response(
            json.dumps({"status": "error", "message": "internal error", "category": "UNKNOWN"}),
            status=status,
            content_type="application/json",
        )

    def _rate_limit(self, route: str, token: str) -> Response | None:
        now = time.monotonic()
        with self._lock:
            if self.daily_used >= self.daily:
                return _rate_limited("DAILY", interval_ms=round(self.burst[1] * 1000))
            if route == "search":
                limit, window = self.search_limit
                log = self._search_log.setdefault(token, deque())
                policy = "SECONDLY"
            else:
                limit, window = self.burst
                log = self._burst_log.setdefault(token, deque())
                policy = "TEN_SECONDLY_ROLLING"
            while log and now - log[0] >= window:
                log.popleft()
            if len(log) >= limit:
                return _rate_limited(policy, interval_ms=round(window * 1000))
            log.append(now)
            self.daily_used += 1
        return None

    def _rate_headers(self, response: Response, token: str) -> None:
        limit, window = self.burst
        used = len(self._burst_log.get(token, ()))
        response.headers["X-HubSpot-RateLimit-Daily"] = str(self.daily)
        response.headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(
            max(0, self.daily - self.daily_used)
        )
        response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] = str(round(window * 1000))
        response.headers["X-HubSpot-RateLimit-Max"] = str(limit)
        response.headers["X-HubSpot-RateLimit-Remaining"] = str(max(0, limit - used))

    # -- routes ----------------------------------------------------------------------------------

    def _token(self, request: Request) -> Response:
        form = parse_qs(request.get_data(as_text=True))
        grant = form.get("grant_type", [""])[0]
        refresh = form.get("refresh_token", [""])[0]
        known = self.refresh_tokens.get(refresh)
        client = (form.get("client_id", [""])[0], form.get("client_secret", [""])[0])
        if grant != "refresh_token" or known is None or known[:2] != client:
            return Response(
                json.dumps(
                    {
                        "status": "BAD_REFRESH_TOKEN",
                        "message": "missing or unknown refresh token",
                        "correlationId": str(uuid.uuid4()),
                    }
                ),
                status=400,
                content_type="application/json",
            )
        access = f"oauth-{uuid.uuid4().hex}"
        with self._lock:
            self.tokens[access] = known[2]
        return _json(
            {
                "token_type": "bearer",
                "refresh_token": refresh,
                "access_token": access,
                "expires_in": 1800,
            }
        )

    def _record_json(
        self, object_type: str, rec: Rec, properties: list[str] | None, history: list[str]
    ) -> dict[str, Any]:
        wanted = (
            properties
            if properties
            else ["hs_object_id", "createdate", lastmod_property(object_type)]
        )
        out: dict[str, Any] = {
            "id": str(rec.id),
            "properties": {p: rec.props.get(p) for p in wanted},
            "createdAt": iso(rec.created),
            "updatedAt": iso(rec.lastmod),
            "archived": False,
        }
        if history:
            out["propertiesWithHistory"] = {
                p: [
                    {
                        "value": h.value,
                        "timestamp": iso(h.timestamp),
                        "sourceType": h.source_type,
                        **({"sourceId": h.source_id} if h.source_id else {}),
                        **({"updatedByUserId": int(h.user_id)} if h.user_id else {}),
                    }
                    for h in rec.history.get(p, [])
                ]
                for p in history
            }
        return out

    def _store_of(self, object_type: str) -> ObjectStore | Response:
        """The records of ``object_type``, or HubSpot's answer to a type it cannot name."""
        store = self.stores.get(object_type)
        if store is None:
            return _error(
                400, f"Unable to infer object type from: {object_type}", "VALIDATION_ERROR"
            )
        return store

    def _route_batch_read(
        self, request: Request, body: Any, app_id: str, object_type: str
    ) -> Response:
        store = self._store_of(object_type)
        if isinstance(store, Response):
            return store
        inputs = (body or {}).get("inputs") or []
        history = list((body or {}).get("propertiesWithHistory") or [])
        if history and len(inputs) > HISTORY_BATCH_LIMIT:
            return _error(
                400,
                "The maximum number of inputs supported in a batch request for property "
                "histories is 50. Please reduce the number of items and try again",
                "VALIDATION_ERROR",
            )
        if len(inputs) > BATCH_LIMIT:
            return _too_many(inputs)
        props = list((body or {}).get("properties") or [])
        id_property = (body or {}).get("idProperty")
        by_value = (
            {r.props.get(id_property): r for r in store.records.values()} if id_property else {}
        )
        results, missing = [], []
        for item in inputs:
            key = str(item.get("id", ""))
            if id_property:
                rec = by_value.get(key)
            else:
                rec = store.records.get(int(key)) if key.isdigit() else None
            if rec is None:
                missing.append(str(item.get("id")))
            else:
                results.append(self._record_json(object_type, rec, props, history))
        return _batch_answer(results, _not_found(object_type, missing))

    def _route_batch_update(
        self, request: Request, body: Any, app_id: str, object_type: str
    ) -> Response:
        store = self._store_of(object_type)
        if isinstance(store, Response):
            return store
        inputs = (body or {}).get("inputs") or []
        if len(inputs) > BATCH_LIMIT:
            return _too_many(inputs)
        ids = [str(i.get("id")) for i in inputs]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            return _error(
                400,
                f"Duplicate IDs found in batch input: {dupes}. IDs must be unique",
                "VALIDATION_ERROR",
            )
        results, missing, errors = [], [], []
        stamp = now_ms()
        for item in inputs:
            rid = str(item.get("id"))
            rec = store.records.get(int(rid)) if rid.isdigit() else None
            if rec is None:
                missing.append(rid)
                continue
            props = item.get("properties") or {}
            unknown = sorted(set(props) - store.properties) if store.properties is not None else []
            if unknown:
                errors.append(
                    {
                        "status": "error",
                        "category": "VALIDATION_ERROR",
                        "message": f'Property "{unknown[0]}" does not exist',
                        "context": {"ids": [rid], "propertyName": unknown},
                    }
                )
                continue
            self._apply(object_type, rec, props, stamp, ("INTEGRATION", app_id, None))
            results.append(self._record_json(object_type, rec, sorted(props), []))
        return _batch_answer(results, _not_found(object_type, missing) + errors)

    def _route_batch_upsert(
        self, request: Request, body: Any, app_id: str, object_type: str
    ) -> Response:
        """Create or update each input matched on its ``idProperty`` (a property with unique
        values; HubSpot refuses any other for the whole batch), ``new`` saying which.

        The whole batch is refused (400) for more than 100 inputs or an id given twice. An input
        with a property the object lacks is refused alone in a 207 naming its
        ``objectWriteTraceId`` when every input carries one; without trace ids it refuses the
        whole batch and nothing is written (HubSpot's error-handling guide on multi-status
        errors; a live probe of ``batch/upsert`` reported the same).
        """
        store = self._store_of(object_type)
        if isinstance(store, Response):
            return store
        inputs = (body or {}).get("inputs") or []
        if len(inputs) > BATCH_LIMIT:
            return _too_many(inputs)
        for item in inputs:
            prop = str(item.get("idProperty") or "")
            if prop not in store.unique:
                return _error(
                    400,
                    f"Unable to perform update/upsert by non-unique {store.type_id} property "
                    f"{prop} in portal ID {self.portal_id}",
                    "VALIDATION_ERROR",
                )
        keys = [str(i.get("id")) for i in inputs]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            return _error(
                400,
                f"Duplicate IDs found in batch input: [{', '.join(dupes)}]. IDs must be unique",
                "VALIDATION_ERROR",
                context={"ids": dupes},
            )
        traced = self.multi_status and all(i.get("objectWriteTraceId") for i in inputs)
        writes, errors = [], []
        for item in inputs:
            key, prop = str(item.get("id")), str(item.get("idProperty"))
            props = {**(item.get("properties") or {}), prop: key}
            unknown = sorted(set(props) - store.properties) if store.properties is not None else []
            if not unknown:
                writes.append((key, prop, props))
            elif traced:
                errors.append(
                    {
                        "status": "error",
                        "category": "VALIDATION_ERROR",
                        "message": _invalid_properties(unknown, self.portal_id),
                        "context": {"objectWriteTraceId": [str(item["objectWriteTraceId"])]},
                    }
                )
            else:
                return _error(
                    400,
                    _invalid_properties(unknown, self.portal_id),
                    "VALIDATION_ERROR",
                    errors=[
                        {
                            "message": f'Property "{name}" does not exist',
                            "code": "PROPERTY_DOESNT_EXIST",
                            "context": {"propertyName": [name]},
                        }
                        for name in unknown
                    ],
                )
        results = []
        stamp = now_ms()
        by_value = {(p, r.props.get(p)): r for p in store.unique for r in store.records.values()}
        for key, prop, props in writes:
            rec = by_value.get((prop, key))
            new = rec is None
            if rec is None:
                rid = next(self._ids)
                rec = Rec(rid, {"hs_object_id": str(rid), "createdate": iso(stamp)}, stamp, stamp)
                store.records[rid] = rec
            self._apply(store.type, rec, props, stamp, ("INTEGRATION", app_id, None))
            results.append({**self._record_json(store.type, rec, sorted(props), []), "new": new})
        return _batch_answer(results, errors)

    def _route_search(self, request: Request, body: Any, app_id: str, object_type: str) -> Response:
        store = self._store_of(object_type)
        if isinstance(store, Response):
            return store
        body = body or {}
        limit = int(body.get("limit") or 10)
        after = int(body.get("after") or 0)
        groups = body.get("filterGroups") or []
        if limit > SEARCH_PAGE_LIMIT:
            return _error(400, "limit must be at most 200", "VALIDATION_ERROR")
        if len(groups) > 5 or any(len(g.get("filters") or []) > 6 for g in groups):
            return _error(400, "Too many filter groups or filters", "VALIDATION_ERROR")
        if after + limit > SEARCH_RESULT_CAP:
            return _error(
                400,
                "The maximum number of results returned by the search API is 10,000",
                "VALIDATION_ERROR",
            )
        sorts = body.get("sorts") or []
        rows = self._sorted(store, sorts)
        matched = [r for r in rows if _matches(r, groups)] if groups else rows
        page = matched[after : after + limit]
        out: dict[str, Any] = {
            "total": len(matched),
            "results": [
                self._record_json(object_type, r, list(body.get("properties") or []), [])
                for r in page
            ],
        }
        if after + limit < len(matched):
            out["paging"] = {"next": {"after": str(after + limit)}}
        return _json(out)

    def _sorted(self, store: ObjectStore, sorts: list[Any]) -> list[Rec]:
        if not sorts:
            return sorted(store.records.values(), key=lambda r: r.id)
        first = sorts[0]
        name = first if isinstance(first, str) else first.get("propertyName")
        descending = (not isinstance(first, str)) and first.get("direction") == "DESCENDING"
        if name == lastmod_property(store.type):
            rows = store.by_lastmod()
            return rows[::-1] if descending else rows
        rows = sorted(store.records.values(), key=lambda r: _sort_key(name, r))
        return rows[::-1] if descending else rows

    def _route_owners(self, request: Request, body: Any, app_id: str) -> Response:
        limit = int(request.args.get("limit", "100"))
        after = int(request.args.get("after", "0") or 0)
        page = self.owners[after : after + limit]
        out: dict[str, Any] = {"results": page}
        if after + limit < len(self.owners):
            out["paging"] = {"next": {"after": str(after + limit)}}
        return _json(out)

    def _route_properties(
        self, request: Request, body: Any, app_id: str, object_type: str
    ) -> Response:
        store = self._store_of(object_type)
        if isinstance(store, Response):
            return store
        standard = {
            p: _default_type(p)
            for p in ("hs_object_id", "createdate", lastmod_property(object_type))
        }
        types = {**standard, **store.types}
        return _json(
            {
                "results": [
                    {
                        "name": name,
                        "label": name,
                        "type": kind,
                        "fieldType": {"number": "number", "bool": "booleancheckbox"}.get(
                            kind, "text"
                        ),
                        "groupName": "tasuki",
                    }
                    for name, kind in sorted(types.items())
                ]
            }
        )

    def _route_pipelines(
        self, request: Request, body: Any, app_id: str, object_type: str
    ) -> Response:
        return _json({"results": self.pipelines.get(object_type, [])})


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def _route(method: str, parts: list[str]) -> tuple[str | None, tuple[str, ...]]:
    if method == "POST" and parts == ["oauth", "v1", "token"]:
        return "token", ()
    if parts[:3] == ["crm", "v3", "objects"] and len(parts) >= 5 and method == "POST":
        if parts[4:] == ["batch", "read"]:
            return "batch/read", (parts[3],)
        if parts[4:] == ["batch", "update"]:
            return "batch/update", (parts[3],)
        if parts[4:] == ["batch", "upsert"]:
            return "batch/upsert", (parts[3],)
        if parts[4:] == ["search"]:
            return "search", (parts[3],)
    if method == "GET" and parts == ["crm", "v3", "owners"]:
        return "owners", ()
    if method == "GET" and parts[:3] == ["crm", "v3", "pipelines"] and len(parts) == 4:
        return "pipelines", (parts[3],)
    if method == "GET" and parts[:3] == ["crm", "v3", "properties"] and len(parts) == 4:
        return "properties", (parts[3],)
    return None, ()


def _default_type(name: str) -> str:
    if name in DATETIME_PROPS:
        return "datetime"
    if name in NUMERIC_PROPS:
        return "number"
    return "string"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _value_of(name: str, rec: Rec) -> Any:
    raw = rec.props.get(name)
    if name in ("lastmodifieddate", "hs_lastmodifieddate"):
        return rec.lastmod
    if name in DATETIME_PROPS:
        return _ms(raw) if raw else None
    if name in NUMERIC_PROPS:
        return float(raw) if raw not in (None, "") else None
    return raw


def _ms(text: str) -> int:
    if text.isdigit():
        return int(text)
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def _filter_value(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in DATETIME_PROPS:
        return _ms(str(value))
    if name in NUMERIC_PROPS:
        return float(value)
    return str(value)


def _sort_key(name: str, rec: Rec) -> tuple[int, Any]:
    v = _value_of(name, rec)
    return (0, v) if v is not None else (1, 0)


def _matches(rec: Rec, groups: list[dict[str, Any]]) -> bool:
    return any(all(_test(rec, f) for f in g.get("filters") or []) for g in groups)


def _test(rec: Rec, f: Mapping[str, Any]) -> bool:
    name = f["propertyName"]
    op = f["operator"]
    have = _value_of(name, rec)
    if op == "HAS_PROPERTY":
        return have not in (None, "")
    if op == "NOT_HAS_PROPERTY":
        return have in (None, "")
    if op in ("IN", "NOT_IN"):
        values = {_filter_value(name, v) for v in f.get("values") or []}
        return bool((have in values) == (op == "IN"))
    want = _filter_value(name, f.get("value"))
    if have in (None, "") or want is None:
        return bool(op == "NEQ")
    if op == "EQ":
        return bool(have == want)
    if op == "NEQ":
        return bool(have != want)
    if op == "LT":
        return bool(have < want)
    if op == "LTE":
        return bool(have <= want)
    if op == "GT":
        return bool(have > want)
    if op == "GTE":
        return bool(have >= want)
    if op == "BETWEEN":
        return bool(want <= have <= _filter_value(name, f.get("highValue")))
    return False


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data), status=status, content_type="application/json")


def _error(status: int, message: str, category: str, **extra: Any) -> Response:
    return _json(
        {
            "status": "error",
            "message": message,
            "correlationId": str(uuid.uuid4()),
            "category": category,
            **extra,
        },
        status,
    )


def _rate_limited(policy: str, *, interval_ms: int) -> Response:
    response = _json(
        {
            "status": "error",
            "message": f"You have reached your {policy.lower()} limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": str(uuid.uuid4()),
            "policyName": policy,
        },
        429,
    )
    response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] = str(interval_ms)
    response.headers["X-HubSpot-RateLimit-Remaining"] = "0"
    return response


def _invalid_properties(names: list[str], portal_id: int) -> str:
    """HubSpot's message for properties an object lacks (a JSON list inside the text)."""
    problems = [
        {
            "isValid": False,
            "message": f'Property "{name}" does not exist',
            "error": "PROPERTY_DOESNT_EXIST",
            "name": name,
            "localizedErrorMessage": f'Property "{name}" does not exist',
            "portalId": portal_id,
        }
        for name in names
    ]
    return "Property values were not valid: " + json.dumps(problems, separators=(",", ":"))


def _not_found(object_type: str, ids: list[str]) -> list[dict[str, Any]]:
    if not ids:
        return []
    kind = object_type.rstrip("s").upper().replace("COMPANIE", "COMPANY")
    return [
        {
            "status": "error",
            "category": "OBJECT_NOT_FOUND",
            "message": f"Could not get some {kind} objects, they may be deleted or not exist. "
            "Check that ids are valid.",
            "context": {"ids": ids},
        }
    ]


def _too_many(inputs: list[Any]) -> Response:
    """HubSpot's refusal of a batch over :data:`BATCH_LIMIT` inputs."""
    return _error(
        400, f"Batch input of {len(inputs)} exceeds the limit of 100.", "VALIDATION_ERROR"
    )


def _batch_answer(results: list[dict[str, Any]], errors: list[dict[str, Any]]) -> Response:
    stamp = iso(now_ms())
    body: dict[str, Any] = {
        "status": "COMPLETE",
        "results": results,
        "startedAt": stamp,
        "completedAt": stamp,
    }
    if errors:
        body["numErrors"] = len(errors)
        body["errors"] = errors
        return _json(body, 207)
    return _json(body)


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    """``items`` in lists of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
