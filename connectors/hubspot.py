"""The HubSpot connector, on hubspot-api-client (CRM v3).

Object and property names are HubSpot's: ``contacts``, ``companies``, ``deals``, ``owners``.

- :meth:`HubSpotConnector.fetch`: ``batch/read``, 100 ids a call.
- :meth:`HubSpotConnector.changes`: the search API on the last-modified property, one page per
  call, with the window cutting of :mod:`connectors.hubspot_changes`.
- :meth:`HubSpotConnector.history`: ``batch/read`` with ``propertiesWithHistory`` (50 a call, as
  HubSpot allows with history), oldest first.
- :meth:`HubSpotConnector.write`: ``batch/update``, 100 records a call; a 207 keeps the records
  written and gives each rejected one HubSpot's category and message. A 400 that refuses the
  whole batch for one bad record is split in halves until the bad record stands alone, so the
  rest are still written.
- :meth:`HubSpotConnector.upsert_records`: ``batch/upsert`` on a unique-value property, 100 inputs
  a call, each with an ``objectWriteTraceId`` so HubSpot answers 207 with the records it wrote and
  names each refused one by its trace id (without trace ids one bad input refuses the whole
  batch). A custom object is named by its objectTypeId (``2-…``), its fully qualified name
  (``p{portalId}_{name}``) or ``p_{name}``, passed through unchanged.
- :meth:`HubSpotConnector.users`: owners, with their primary team's name as ``team``.

HubSpot sends every property value as text; values are typed back from the account's property
definitions (numbers, booleans), so what tasuki wrote reads back equal and its echo is known.
Deal stages are read as their labels (``closedwon`` → ``Closed Won``) from the pipelines, so one
rule file serves HubSpot and Salesforce alike.

Configuration (environment, resolved once in ``Settings.hubspot``,
:class:`tasuki.providers.HubSpotSettings`), read by :func:`connector_from_settings`:

``TASUKI_HUBSPOT_ACCESS_TOKEN``   private app access token (the first auth flow)
``TASUKI_HUBSPOT_CLIENT_ID`` / ``TASUKI_HUBSPOT_CLIENT_SECRET`` / ``TASUKI_HUBSPOT_REFRESH_TOKEN``
                                  OAuth app (the second flow, used when no access token is set);
                                  the client secret also signs webhooks
``TASUKI_HUBSPOT_APP_ID``         tasuki's app id: its own changes are echoes
``TASUKI_HUBSPOT_HOST``           API host (default https://api.hubapi.com)
``TASUKI_HUBSPOT_TIER``           free | starter | professional | enterprise |
                                  api_limit_increase | oauth (default professional)
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
from hubspot import HubSpot
from pydantic import SecretStr
from urllib3.util.retry import Retry

from connectors.hubspot_api import Answer, HubSpotApi, RateLimits
from connectors.hubspot_changes import (
    SEARCH_PAGE,
    Cursor,
    cut,
    lastmod_property,
    modified_ms,
    to_ms,
)
from tasuki.crm import (
    CallCounter,
    ChangePage,
    FieldChange,
    RawRecord,
    ReadEstimate,
    RecordWrite,
    WriteResult,
    history_reads,
    pages,
)
from tasuki.errors import ConfigError, CrmAuthError, CrmRequestError
from tasuki.queue import connect
from tasuki.ratelimit import DailyBudget, SharedLimiter
from tasuki.settings import Settings

DEFAULT_HOST = "https://api.hubapi.com"
BATCH_SIZE = 100
"""Records per ``batch/read``, ``batch/update`` and ``batch/upsert`` call."""
HISTORY_BATCH_SIZE = 50
"""Records per ``batch/read`` call that asks for property history."""
OWNERS_PAGE = 100
STAGE_PROPERTIES = {"deals": "dealstage"}
"""Properties whose values are pipeline stage ids, read as stage labels."""
CACHE_SECONDS = 600.0
"""How long property definitions and pipelines are reused before being read again."""
READ_ONLY_OBJECTS = frozenset({"owners"})


@dataclass(frozen=True)
class HubSpotOptions:
    """Everything about a HubSpot account except its credentials."""

    host: str = DEFAULT_HOST
    app_id: str | None = None
    """tasuki's own app id; changes it made are echoes."""
    tier: str = "professional"
    limits: RateLimits | None = None
    """Explicit windows; default: those of ``tier``."""
    timeout: float = 30.0
    settle_seconds: float = 30.0
    """Incremental sync stays this far behind now: HubSpot's search index lags writes."""
    day_zone: str = "UTC"
    """The account's time zone: its daily limit resets at midnight there."""
    namespace: str | None = None
    """Limiter key shared by every worker of one account (default: derived from credentials)."""


@dataclass
class _Cached:
    value: Any
    at: float


@dataclass
class _Auth:
    client_id: str
    client_secret: SecretStr
    refresh_token: SecretStr
    expires_at: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


class HubSpotConnector:
    """tasuki's view of one HubSpot account. Build it with :meth:`with_access_token` or
    :meth:`with_refresh_token`."""

    system = "hubspot"
    read_batch_size = BATCH_SIZE
    write_batch_size = BATCH_SIZE

    def __init__(
        self,
        client: HubSpot,
        conn: redis.Redis,
        options: HubSpotOptions,
        namespace: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        auth: _Auth | None = None,
    ) -> None:
        self.options = options
        self.calls = CallCounter()
        self.clock = clock
        self._auth = auth
        # ``sleep`` paces retries of failed calls; the limiter always waits in real time.
        self.limiter = SharedLimiter(conn, namespace)
        self.api = HubSpotApi(
            self.limiter,
            DailyBudget(conn, namespace),
            options.limits or RateLimits.for_tier(options.tier),
            self.calls,
            timeout=options.timeout,
            day_zone=options.day_zone,
            sleep=sleep,
            refresh_token=self._refresh if auth else None,
        )
        self._client = client
        # Built once: each discovery property of the client makes a new connection pool.
        self._batch = client.crm.objects.batch_api
        self._search = client.crm.objects.search_api
        self._owners = client.crm.owners.owners_api
        self._pipelines = client.crm.pipelines.pipelines_api
        self._properties = client.crm.properties.core_api
        self._tokens = client.oauth.tokens_api
        self._apis = [
            self._batch,
            self._search,
            self._owners,
            self._pipelines,
            self._properties,
            self._tokens,
        ]
        self._cache: dict[str, _Cached] = {}
        self._cache_lock = threading.Lock()

    def close(self) -> None:
        """Close the connection pools of every API object (sockets are not left to the GC)."""
        for api in self._apis:
            api.api_client.close()
            api.api_client.rest_client.pool_manager.clear()

    def api_usage(self) -> tuple[int, int] | None:
        """(calls used today, daily limit) as HubSpot last reported them (shared through Redis
        by every worker); None when no daily limit was reported (OAuth apps have none)."""
        found = self.api.budget.remaining()
        if found is None or not found[1]:
            return None
        remaining, limit = found
        return limit - remaining, limit

    # -- auth flows --------------------------------------------------------------------------

    @staticmethod
    def _build_client(options: HubSpotOptions, access_token: str | None) -> HubSpot:
        # urllib3 retries nothing: HubSpotApi retries every method itself, POST included.
        return HubSpot(
            access_token=access_token,
            host=options.host.rstrip("/"),
            retry=Retry(total=0, read=False, redirect=0, raise_on_status=False),
        )

    @classmethod
    def with_access_token(
        cls,
        token: SecretStr | str,
        conn: redis.Redis,
        options: HubSpotOptions = HubSpotOptions(),
        **kwargs: Any,
    ) -> HubSpotConnector:
        """A private app's connector, authenticated by its access token."""
        secret = token.get_secret_value() if isinstance(token, SecretStr) else token
        namespace = options.namespace or "hubspot:" + _digest(options.host, secret)
        return cls(cls._build_client(options, secret), conn, options, namespace, **kwargs)

    @classmethod
    def with_refresh_token(
        cls,
        client_id: str,
        client_secret: SecretStr | str,
        refresh_token: SecretStr | str,
        conn: redis.Redis,
        options: HubSpotOptions = HubSpotOptions(),
        **kwargs: Any,
    ) -> HubSpotConnector:
        """An OAuth app's connector: access tokens are traded for the refresh token, and traded
        again shortly before they expire (or when HubSpot answers 401)."""
        auth = _Auth(client_id, SecretStr(_plain(client_secret)), SecretStr(_plain(refresh_token)))
        namespace = options.namespace or "hubspot:" + _digest(
            options.host, client_id, _plain(refresh_token)
        )
        return cls(cls._build_client(options, None), conn, options, namespace, auth=auth, **kwargs)

    def _refresh(self) -> None:
        """Trade the refresh token for a new access token and hand it to every API object."""
        auth = self._auth
        assert auth is not None
        tokens = self._tokens
        answer = self.api.send(
            "auth",
            "/oauth/v1/token",
            lambda timeout: tokens.create(
                grant_type="refresh_token",
                client_id=auth.client_id,
                client_secret=auth.client_secret.get_secret_value(),
                refresh_token=auth.refresh_token.get_secret_value(),
                _preload_content=False,
                _request_timeout=timeout,
            ),
        )
        body = answer.body or {}
        token = body.get("access_token")
        if not token:
            raise CrmAuthError("HubSpot gave no access token", url="/oauth/v1/token", status=400)
        auth.expires_at = time.time() + float(body.get("expires_in", 1800)) - 60
        for api in self._apis:
            api.api_client.configuration.access_token = token

    def _ensure_token(self) -> None:
        auth = self._auth
        if auth is None or time.time() < auth.expires_at:
            return
        with auth.lock:
            if time.time() >= auth.expires_at:
                self._refresh()

    # -- reads ---------------------------------------------------------------------------------

    def _batch_read(
        self, object: str, ids: Sequence[str], body: dict[str, Any], kind: str = "read"
    ) -> list[dict[str, Any]]:
        self._ensure_token()
        payload = {**body, "inputs": [{"id": str(i)} for i in ids]}
        answer = self.api.send(
            kind,
            f"/crm/v3/objects/{object}/batch/read",
            lambda timeout: self._batch.read(
                object, payload, _preload_content=False, _request_timeout=timeout
            ),
        )
        results: list[dict[str, Any]] = (answer.body or {}).get("results") or []
        return results

    def fetch(self, object: str, ids: Sequence[str], fields: Sequence[str]) -> list[RawRecord]:
        """Records by id, 100 a call; ids HubSpot does not have (or archived) are left out."""
        if object == "owners":
            wanted = set(ids)
            return [u for u in self.users(fields) if u.id in wanted]
        out: list[RawRecord] = []
        unique = list(dict.fromkeys(str(i) for i in ids))
        for start in range(0, len(unique), BATCH_SIZE):
            chunk = unique[start : start + BATCH_SIZE]
            results = self._batch_read(object, chunk, {"properties": list(fields)})
            out.extend(self._raw(object, r, fields) for r in results)
        return out

    def fetch_by_key(
        self, object: str, key_field: str, keys: Sequence[str], fields: Sequence[str]
    ) -> list[RawRecord]:
        """Records whose unique property ``key_field`` holds one of ``keys``, each with its key
        as id (a write-back reading back KPI rows after a crash); ``batch/read`` with
        ``idProperty``, 100 keys a call."""
        props = list(dict.fromkeys([*fields, key_field]))
        out: list[RawRecord] = []
        unique = list(dict.fromkeys(str(k) for k in keys))
        for start in range(0, len(unique), BATCH_SIZE):
            chunk = unique[start : start + BATCH_SIZE]
            body = {"properties": props, "idProperty": key_field}
            for result in self._batch_read(object, chunk, body):
                found = self._raw(object, result, fields)
                key = (result.get("properties") or {}).get(key_field)
                if key is not None:
                    out.append(RawRecord(str(key), found.fields, found.modstamp))
        return out

    def changes(self, object: str, cursor: str | None, fields: Sequence[str]) -> ChangePage:
        """One search page of records modified since ``cursor``, oldest first.

        HubSpot's search holds no archived records: deletes reach tasuki through the
        ``*.deletion`` webhooks (a sync of a missing id marks it deleted), not through here.
        """
        here = Cursor.parse(cursor)
        horizon = int((self.clock() - self.options.settle_seconds) * 1000)
        if here.after_id is None and here.since > horizon:
            return ChangePage(records=[], cursor=str(here), more=False)
        self._ensure_token()
        query = here.query(object, list(fields), horizon)
        answer = self.api.send(
            "read",
            f"/crm/v3/objects/{object}/search",
            lambda timeout: self._search.do_search(
                object, query, _preload_content=False, _request_timeout=timeout
            ),
            search=True,
        )
        body = answer.body or {}
        results: list[dict[str, Any]] = body.get("results") or []
        full = bool((body.get("paging") or {}).get("next")) or len(results) >= query["limit"]
        step = cut(here, results, full, horizon, lastmod_property(object))
        records = [self._raw(object, r, fields) for r in step.keep]
        return ChangePage(records=records, cursor=str(step.cursor), more=step.more)

    def cursor_since(self, since: datetime) -> str:
        """The change cursor that reads records modified from ``since`` on (``--since``)."""
        return f"R:{int(since.timestamp() * 1000)}"

    def estimate_reads(
        self, object: str, cursor: str | None, history_fields: Sequence[str]
    ) -> ReadEstimate:
        """One search for a single record of the read's window gives HubSpot's ``total``; the
        read takes a page per ``SEARCH_PAGE - 1`` records (each full page hands out all but its
        last timestamp, which the next page starts with), plus a history batch read per
        :data:`HISTORY_BATCH_SIZE` records of each page. Many records sharing one timestamp
        cost a page more each time."""
        here = Cursor.parse(cursor)
        horizon = int((self.clock() - self.options.settle_seconds) * 1000)
        if here.after_id is None and here.since > horizon:
            return ReadEstimate(0, 0, 0, SEARCH_PAGE)
        self._ensure_token()
        query = {**here.query(object, [], horizon), "limit": 1}
        answer = self.api.send(
            "read",
            f"/crm/v3/objects/{object}/search",
            lambda timeout: self._search.do_search(
                object, query, _preload_content=False, _request_timeout=timeout
            ),
            search=True,
        )
        records = int((answer.body or {}).get("total") or 0)
        kept = pages(records, SEARCH_PAGE - 1)
        history = 0
        if history_fields and object != "owners":
            history = history_reads(kept, HISTORY_BATCH_SIZE, 10**9, 0)
        # Reading records types their values: property definitions (and a deal's pipelines),
        # read once and kept for CACHE_SECONDS.
        metadata = 0
        if records:
            wanted = [f"properties:{object}"]
            if object in STAGE_PROPERTIES:
                wanted.append(f"pipelines:{object}")
            now = time.monotonic()
            with self._cache_lock:
                for key in wanted:
                    hit = self._cache.get(key)
                    metadata += hit is None or now - hit.at >= CACHE_SECONDS
        return ReadEstimate(records, max(1, len(kept)) + metadata, history, SEARCH_PAGE, spent=1)

    def history(self, object: str, ids: Sequence[str], fields: Sequence[str]) -> list[FieldChange]:
        """Changes of ``fields`` on records ``ids`` from property history, oldest first.

        Each history entry whose value differs from the one before is one change; its id is
        made of record, property, time and value, so it stays the same on every read.
        """
        if object == "owners" or not fields:
            return []
        out: list[FieldChange] = []
        unique = list(dict.fromkeys(str(i) for i in ids))
        for start in range(0, len(unique), HISTORY_BATCH_SIZE):
            chunk = unique[start : start + HISTORY_BATCH_SIZE]
            body = {"properties": ["hs_object_id"], "propertiesWithHistory": list(fields)}
            for result in self._batch_read(object, chunk, body):
                rid = str(result["id"])
                for prop, entries in (result.get("propertiesWithHistory") or {}).items():
                    out.extend(self._changes_of(object, rid, prop, entries or []))
        out.sort(key=lambda c: (c.at, c.record_id, c.field))
        return out

    def _changes_of(
        self, object: str, rid: str, prop: str, entries: list[dict[str, Any]]
    ) -> list[FieldChange]:
        changes: list[FieldChange] = []
        previous: Any = None
        ordered = sorted(entries, key=lambda e: to_ms(str(e.get("timestamp"))))
        for entry in ordered:
            value = self._typed(object, prop, entry.get("value"))
            if value == previous and changes:
                continue
            at_ms = to_ms(str(entry.get("timestamp")))
            digest = _digest(str(entry.get("value")))[:10]
            by = entry.get("updatedByUserId") or entry.get("sourceId") or entry.get("sourceType")
            changes.append(
                FieldChange(
                    id=f"hubspot:{object}:{rid}:{prop}:{at_ms}:{digest}",
                    record_id=rid,
                    field=prop,
                    old=None if previous is None else str(previous),
                    new=None if value is None else str(value),
                    at=datetime.fromtimestamp(at_ms / 1000, UTC),
                    by=None if by is None else str(by),
                )
            )
            previous = value
        return changes

    def users(self, fields: Sequence[str]) -> list[RawRecord]:
        """Every active owner: ``name``, ``email``, ``team`` (primary team), ``updatedAt``."""
        self._ensure_token()
        out: list[RawRecord] = []
        after: str | None = None
        while True:
            answer = self.api.send("read", "/crm/v3/owners/", self._owners_page(after))
            body = answer.body or {}
            for owner in body.get("results") or []:
                out.append(_owner_record(owner, fields))
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return out

    def check_login(self) -> str:
        """The cheapest authenticated call there is (one owner; an OAuth app first trades its
        refresh token); raises :class:`CrmError` when HubSpot refuses the credentials
        (``tasuki check-config --with-services``)."""
        self._ensure_token()
        self.api.send(
            "read",
            "/crm/v3/owners/",
            lambda timeout: self._owners.get_page(
                limit=1, archived=False, _preload_content=False, _request_timeout=timeout
            ),
        )
        flow = "OAuth app" if self._auth is not None else "access token"
        return f"signed in to {self.options.host} with the {flow}"

    def _owners_page(self, after: str | None) -> Callable[[float], Any]:
        extra = {"after": after} if after else {}

        def call(timeout: float) -> Any:
            return self._owners.get_page(
                limit=OWNERS_PAGE,
                archived=False,
                _preload_content=False,
                _request_timeout=timeout,
                **extra,
            )

        return call

    def pipelines(self, object: str) -> list[dict[str, Any]]:
        """The pipelines of ``object`` with their stages, as HubSpot returns them (cached)."""

        def load() -> list[dict[str, Any]]:
            self._ensure_token()
            answer = self.api.send(
                "read",
                f"/crm/v3/pipelines/{object}",
                lambda timeout: self._pipelines.get_all(
                    object, _preload_content=False, _request_timeout=timeout
                ),
            )
            results: list[dict[str, Any]] = (answer.body or {}).get("results") or []
            return results

        found: list[dict[str, Any]] = self._cached(f"pipelines:{object}", load)
        return found

    def stage_labels(self, object: str) -> dict[str, str]:
        """Stage id → label over every pipeline of ``object``."""
        return {
            str(s["id"]): str(s.get("label") or s["id"])
            for p in self.pipelines(object)
            for s in p.get("stages") or []
        }

    def property_types(self, object: str) -> dict[str, str]:
        """Property name → ``number``/``bool``/``string``/... for ``object`` (cached)."""

        def load() -> dict[str, str]:
            self._ensure_token()
            answer = self.api.send(
                "read",
                f"/crm/v3/properties/{object}",
                lambda timeout: self._properties.get_all(
                    object, archived=False, _preload_content=False, _request_timeout=timeout
                ),
            )
            types: dict[str, str] = {}
            for p in (answer.body or {}).get("results") or []:
                kind = str(p.get("type") or "string")
                if p.get("fieldType") == "booleancheckbox":
                    kind = "bool"
                types[str(p["name"])] = kind
            return types

        found: dict[str, str] = self._cached(f"properties:{object}", load)
        return found

    def _cached(self, key: str, load: Callable[[], Any]) -> Any:
        now = time.monotonic()
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is not None and now - hit.at < CACHE_SECONDS:
                return hit.value
        value = load()
        with self._cache_lock:
            self._cache[key] = _Cached(value, now)
        return value

    def _typed(self, object: str, prop: str, value: Any) -> Any:
        if value is None or value == "":
            return None
        if STAGE_PROPERTIES.get(object) == prop:
            return self.stage_labels(object).get(str(value), value)
        kind = self.property_types(object).get(prop)
        if kind == "number":
            text = str(value)
            try:
                number = float(text)
            except ValueError:
                return value
            return int(number) if number.is_integer() and "." not in text else number
        if kind == "bool":
            return str(value).lower() == "true"
        return value

    def _raw(self, object: str, result: Mapping[str, Any], fields: Sequence[str]) -> RawRecord:
        props = result.get("properties") or {}
        names = list(fields) if fields else list(props)
        values = {name: self._typed(object, name, props.get(name)) for name in names}
        stamp = modified_ms(dict(result), lastmod_property(object))
        return RawRecord(id=str(result["id"]), fields=values, modstamp=f"{stamp:015d}")

    # -- writes --------------------------------------------------------------------------------

    def write(self, object: str, writes: Sequence[RecordWrite]) -> list[WriteResult]:
        """Update at most 100 records in one ``batch/update`` call (more only when HubSpot
        refuses the whole batch for one record: then halves are retried until it stands alone).
        One result per record, in order."""
        return self._write(object, writes, None)

    def upsert_records(
        self, object: str, key_field: str, writes: Sequence[RecordWrite]
    ) -> list[WriteResult]:
        """Create or update at most 100 records in one ``batch/upsert`` call, each matched on the
        unique-value property ``key_field`` (``idProperty``) whose value is ``record_id``; the
        key is also sent among the properties. Writes of one key are merged into one input
        (later values win), since HubSpot refuses a batch that names a key twice. One result per
        write, in order, keyed by the property's value; a refused record carries HubSpot's
        category and message. A ``key_field`` HubSpot refuses for the whole batch (not a unique
        property) is every record's refusal, found in three calls."""
        if any(not w.record_id for w in writes):
            raise ValueError(f"every upsert needs a {key_field} value")
        return self._write(object, writes, key_field)

    def _write(
        self, object: str, writes: Sequence[RecordWrite], key_field: str | None
    ) -> list[WriteResult]:
        if len(writes) > BATCH_SIZE:
            raise ValueError(f"at most {BATCH_SIZE} records per write call")
        if not writes:
            return []
        if object in READ_ONLY_OBJECTS:
            return [
                WriteResult(
                    w.record_id,
                    False,
                    "READ_ONLY_OBJECT",
                    "HubSpot owners hold no custom properties; map these fields elsewhere",
                )
                for w in writes
            ]
        self._ensure_token()
        sent = list(writes) if key_field is None else _merged(writes)
        by_id = {r.record_id: r for r in self._batch_write(object, sent, key_field)}
        return [by_id[w.record_id] for w in writes]

    def _batch_write(
        self, object: str, writes: list[RecordWrite], key_field: str | None
    ) -> list[WriteResult]:
        """One ``batch/update`` (by id) or ``batch/upsert`` (by ``key_field``) call, and more
        only when HubSpot refuses the whole batch (400): see :meth:`_isolate`."""
        return self._settle(object, writes, key_field, self._send_batch(object, writes, key_field))

    def _settle(
        self,
        object: str,
        writes: list[RecordWrite],
        key_field: str | None,
        outcome: Answer | tuple[str, str],
    ) -> list[WriteResult]:
        if isinstance(outcome, Answer):
            return _write_results(writes, outcome.body or {}, key_field)
        return self._isolate(object, writes, key_field, outcome)

    def _isolate(
        self,
        object: str,
        writes: list[RecordWrite],
        key_field: str | None,
        refusal: tuple[str, str],
    ) -> list[WriteResult]:
        """Results for ``writes``, which HubSpot refused whole with ``refusal`` (category,
        message): halves are sent apart, the first settled before the second goes, until the
        offending record stands alone, so the rest are still written. Upserts send trace ids, so
        HubSpot names a bad record in a 207; when both halves of an upsert are refused exactly
        like the whole, the request itself is at fault (say, ``idProperty`` is no unique
        property) and every record takes the refusal."""
        if len(writes) == 1:
            return [WriteResult(writes[0].record_id, False, *refusal)]
        half = len(writes) // 2
        first, second = writes[:half], writes[half:]
        head = self._send_batch(object, first, key_field)
        if key_field is not None and head == refusal:
            tail = self._send_batch(object, second, key_field)
            if tail == refusal:
                return [WriteResult(w.record_id, False, *refusal) for w in writes]
            settled = self._isolate(object, first, key_field, refusal)
            return settled + self._settle(object, second, key_field, tail)
        settled = self._settle(object, first, key_field, head)
        return settled + self._batch_write(object, second, key_field)

    def _send_batch(
        self, object: str, writes: list[RecordWrite], key_field: str | None
    ) -> Answer | tuple[str, str]:
        """HubSpot's answer to one batch call, or its category and message when it refused the
        whole batch (400); any other error raises."""
        if key_field is None:
            verb, call = "update", self._batch.update
            inputs = [{"id": w.record_id, "properties": _properties(w.values)} for w in writes]
        else:
            verb, call = "upsert", self._batch.upsert
            inputs = [
                {
                    "idProperty": key_field,
                    "id": w.record_id,
                    "properties": {**_properties(w.values), key_field: w.record_id},
                    "objectWriteTraceId": str(n),
                }
                for n, w in enumerate(writes)
            ]
        payload = {"inputs": inputs}
        try:
            return self.api.send(
                "write",
                f"/crm/v3/objects/{object}/batch/{verb}",
                lambda timeout: call(
                    object, payload, _preload_content=False, _request_timeout=timeout
                ),
            )
        except CrmRequestError as exc:
            if exc.status != 400:
                raise
            return _category(exc.body)


def _write_results(
    writes: list[RecordWrite], body: Mapping[str, Any], key_field: str | None = None
) -> list[WriteResult]:
    """Per-record results of a 200 or 207 answer to :meth:`HubSpotConnector._send_batch`.

    ``batch/update`` results carry their record's id, its errors the ids in ``context.ids``. For
    ``batch/upsert`` an error names its input by ``context.objectWriteTraceId`` (the input's
    place in the call); a result by its trace id where HubSpot echoes it, else by the
    ``key_field`` property (sent with every input), as results come in no promised order. When
    HubSpot gave one result for every input no error names, those inputs were all written, even
    if a result cannot be placed (a value HubSpot stored normalised).
    """
    traced = {str(n): w.record_id for n, w in enumerate(writes)} if key_field is not None else {}
    answered = body.get("results") or []
    done: set[str] = set()
    for r in answered:
        trace = r.get("objectWriteTraceId")
        if key_field is None:
            done.add(str(r.get("id")))
        elif trace is not None and str(trace) in traced:
            done.add(traced[str(trace)])
        else:
            done.add(str((r.get("properties") or {}).get(key_field)))
    failed: dict[str, WriteResult] = {}
    unplaced: list[tuple[str, str]] = []
    for error in body.get("errors") or []:
        category = str(error.get("category") or error.get("status") or "ERROR")
        message = str(error.get("message") or "")
        context = error.get("context") or {}
        traces = [str(t) for t in context.get("objectWriteTraceId") or []]
        ids = [traced[t] for t in traces if t in traced] or [
            str(i) for i in context.get("ids") or []
        ]
        if not ids:
            unplaced.append((category, message))
        for rid in ids:
            failed[rid] = WriteResult(rid, False, category, message)
    all_written = len(answered) == len({w.record_id for w in writes} - set(failed))
    results = []
    for w in writes:
        if w.record_id in failed:
            results.append(failed[w.record_id])
        elif w.record_id in done or all_written:
            results.append(WriteResult(w.record_id, True))
        else:
            category, message = unplaced[0] if unplaced else ("UNKNOWN", "HubSpot gave no result")
            results.append(WriteResult(w.record_id, False, category, message))
    return results


def _merged(writes: Sequence[RecordWrite]) -> list[RecordWrite]:
    """One write per record id, in first-seen order, holding the values of all its writes (later
    values win): the state writing them one after another would leave."""
    values: dict[str, dict[str, Any]] = {}
    for w in writes:
        values.setdefault(w.record_id, {}).update(w.values)
    return [RecordWrite(rid, v) for rid, v in values.items()]


def _properties(values: Mapping[str, Any]) -> dict[str, str]:
    return {k: _text(v) for k, v in values.items()}


def _owner_record(owner: Mapping[str, Any], fields: Sequence[str]) -> RawRecord:
    teams = owner.get("teams") or []
    primary = next((t for t in teams if t.get("primary")), teams[0] if teams else None)
    name = " ".join(p for p in (owner.get("firstName"), owner.get("lastName")) if p)
    known: dict[str, Any] = {
        "id": str(owner.get("id")),
        "name": name or owner.get("email"),
        "email": owner.get("email"),
        "team": primary.get("name") if primary else None,
        "updatedAt": owner.get("updatedAt"),
        "userId": owner.get("userId"),
    }
    values = {f: known.get(f) for f in fields} if fields else known
    return RawRecord(
        id=str(owner.get("id")),
        fields=values,
        modstamp=str(owner.get("updatedAt") or ""),
        deleted=bool(owner.get("archived")),
    )


def _category(body: str) -> tuple[str, str]:
    try:
        data = json.loads(body)
    except ValueError:
        return "ERROR", body[:300]
    if not isinstance(data, dict):
        return "ERROR", body[:300]
    return str(data.get("category") or "ERROR"), str(data.get("message") or "")


def _text(value: Any) -> str:
    """A value as HubSpot takes it: text, ``true``/``false``, empty for none."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _plain(value: SecretStr | str) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def connector_from_settings(settings: Settings) -> HubSpotConnector:
    """The connector for the account ``settings.hubspot`` describes (see the module docstring):
    the access token if set, else the OAuth app. Raises :class:`ConfigError` naming each
    missing variable when neither is complete."""
    hs = settings.hubspot
    problems = hs.login_problems()
    if problems:
        raise ConfigError(problems)
    options = HubSpotOptions(
        host=hs.host or DEFAULT_HOST,
        app_id=hs.app_id,
        tier=hs.tier,
        day_zone=settings.config.calendar.timezone,
    )
    conn = connect(settings)
    if hs.access_token is not None:
        return HubSpotConnector.with_access_token(hs.access_token, conn, options)
    assert hs.client_id and hs.client_secret and hs.refresh_token
    return HubSpotConnector.with_refresh_token(
        hs.client_id, hs.client_secret, hs.refresh_token, conn, options
    )
