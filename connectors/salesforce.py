"""The Salesforce connector, on simple-salesforce.

Reads: records by id through sObject Collections retrieve (2,000 ids a call); changes since a
cursor through ``queryAll`` on ``SystemModstamp`` (deletes included), paged by
``nextRecordsUrl``; field history from ``<Object>History`` / ``OpportunityFieldHistory``.
Writes: sObject Collections ``PATCH composite/sobjects`` (200 records a call, ``allOrNone=false``,
one SaveResult per record) and, from ``bulk_write_threshold`` records on, one Bulk API 2.0 job.
Rows of tasuki's own objects (``Tasuki_KPI__c``) are upserted on their external-id field: sObject
Collections ``PATCH composite/sobjects/<Object>/<ExternalIdField>`` (200 a call, one UpsertResult
per record, ``created`` true or false) or one Bulk API 2.0 ``upsert`` job with
``externalIdFieldName``.

Every request has a timeout; every response's ``Sforce-Limit-Info`` updates :attr:`quota`; an
expired session (401 ``INVALID_SESSION_ID``) is renewed once and the request retried. Failures
become :mod:`tasuki.errors`: ``REQUEST_LIMIT_EXCEEDED`` → :class:`CrmRateLimited`, 5xx and
timeouts → :class:`CrmUnavailable` (RQ retries the job later), 401 → :class:`CrmAuthError`,
other 4xx → :class:`CrmRequestError`. Values reach SOQL only through ``format_soql``; object and
field names are checked to be API names.

Configuration (environment, resolved once in ``Settings.salesforce``,
:class:`tasuki.providers.SalesforceSettings`, and read by :func:`connector_from_settings`)::

    TASUKI_SALESFORCE_DOMAIN             login (default) | test | <mydomain>.my | https://host:port
    TASUKI_SALESFORCE_CONSUMER_KEY       JWT bearer: connected app consumer key
    TASUKI_SALESFORCE_USERNAME           JWT bearer and password flows: integration user
    TASUKI_SALESFORCE_PRIVATE_KEY_FILE   JWT bearer: PEM private key of the app's certificate
    TASUKI_SALESFORCE_PASSWORD           password flow
    TASUKI_SALESFORCE_SECURITY_TOKEN     password flow (empty when the IP range is trusted)
    TASUKI_SALESFORCE_SESSION_ID         existing session flow, with
    TASUKI_SALESFORCE_INSTANCE_URL       https://<mydomain>.my.salesforce.com
    TASUKI_SALESFORCE_ORG_ID             the org's id (the receiver checks Outbound Messages)
    TASUKI_SALESFORCE_INTEGRATION_USER_ID  tasuki's user: its changes are echoes (receiver)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

import requests
from pydantic import SecretStr
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceError, SalesforceExpiredSession
from simple_salesforce.format import format_soql
from simple_salesforce.util import exception_handler

from connectors.salesforce_auth import (
    Domain,
    ExistingSession,
    JwtBearer,
    PasswordLogin,
    SalesforceAuth,
    http_session,
)
from connectors.salesforce_bulk import Polling, run_update_job, run_upsert_job
from connectors.salesforce_records import (
    HISTORY_FIELD_NAMES,
    ChangeCursor,
    chunks,
    history_change,
    history_object,
    identifier,
    parse_datetime,
    raw_record,
    save_result,
    unique,
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
from tasuki.errors import (
    ConfigError,
    CrmAuthError,
    CrmError,
    CrmRateLimited,
    CrmRequestError,
    CrmUnavailable,
    crm_error_for_status,
)
from tasuki.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

API_VERSION = "59.0"
"""REST API version tasuki speaks (Winter '24; sObject Collections and Bulk 2.0 are older)."""

READ_BATCH_SIZE = 2000
"""Ids per sObject Collections retrieve: Salesforce's maximum."""

WRITE_BATCH_SIZE = 200
"""Records per sObject Collections update: Salesforce's maximum."""

BULK_WRITE_THRESHOLD = 2000
"""From this many records of one object on, one Bulk API 2.0 job replaces the 200-record calls."""

QUOTA_DEFER_SHARE = 0.5
"""Past this share of the org's daily API requests, non-urgent writes wait for the next day."""

REQUEST_TIMEOUT = 30.0
"""Seconds any one request may take (simple-salesforce sets no timeout of its own)."""

QUERY_BATCH_SIZE = 2000
"""Records per query page (``Sforce-Query-Options: batchSize``; Salesforce allows 200-2,000)."""

HISTORY_IDS_PER_QUERY = 300
"""Record ids per history query, keeping the SOQL well inside the URL length limit."""

KEYS_PER_QUERY = 50
"""External ids per read-back query: KPI row keys run to 255 characters, and the SOQL travels
in the URL."""

RATE_LIMIT_RETRY_AFTER = 900.0
"""Seconds to wait after REQUEST_LIMIT_EXCEEDED (the daily allocation is a rolling 24 hours)."""


@dataclass(frozen=True)
class SalesforceOptions:
    """Tunables of one connector; every default is a named constant of this module."""

    domain: Domain = Domain()
    api_version: str = API_VERSION
    timeout: float = REQUEST_TIMEOUT
    bulk_write_threshold: int = BULK_WRITE_THRESHOLD
    quota_defer_share: float = QUOTA_DEFER_SHARE
    query_batch_size: int = QUERY_BATCH_SIZE
    bulk_polling: Polling = Polling()


@dataclass(frozen=True)
class ApiUsage:
    """The org's API requests used today and its daily allocation (``Sforce-Limit-Info``)."""

    used: int
    max: int

    @property
    def share(self) -> float:
        """Used / allocation (0 when the allocation is unknown)."""
        return self.used / self.max if self.max else 0.0


def _errors(content: Any) -> list[Mapping[str, Any]]:
    if isinstance(content, Mapping):
        return [content]
    if isinstance(content, list):
        return [e for e in content if isinstance(e, Mapping)]
    return []


def crm_error(exc: SalesforceError) -> CrmError:
    """The tasuki error for a simple-salesforce error, keeping Salesforce's body verbatim."""
    content = exc.content
    if isinstance(content, bytes):
        body = content.decode("utf-8", "replace")
    elif isinstance(content, str):
        body = content
    else:
        body = json.dumps(content, ensure_ascii=False)
    errors = _errors(content)
    code = str(errors[0].get("errorCode", "")) if errors else ""
    detail = str(errors[0].get("message", "")) if errors else body[:200]
    message = f"Salesforce {exc.status} {code}: {detail}".replace("  ", " ")
    if code == "REQUEST_LIMIT_EXCEEDED":
        return CrmRateLimited(
            message, url=exc.url, status=exc.status, body=body, retry_after=RATE_LIMIT_RETRY_AFTER
        )
    return crm_error_for_status(exc.status)(message, url=exc.url, status=exc.status, body=body)


def _query(
    client: Salesforce, soql: str, include_deleted: bool, headers: dict[str, str]
) -> dict[str, Any]:
    page: dict[str, Any] = client.query(soql, include_deleted=include_deleted, headers=headers)
    return page


def _query_more(client: Salesforce, url: str, headers: dict[str, str]) -> dict[str, Any]:
    page: dict[str, Any] = client.query_more(url, identifier_is_url=True, headers=headers)
    return page


def _key_field(key_field: str, writes: Sequence[RecordWrite]) -> str:
    """``key_field`` checked to be an API name, once every write has a key value."""
    if any(not w.record_id for w in writes):
        raise ValueError(f"every upsert needs a {key_field} value")
    return identifier(key_field)


def _is_expired(exc: SalesforceExpiredSession) -> bool:
    return any(e.get("errorCode") == "INVALID_SESSION_ID" for e in _errors(exc.content))


class SalesforceConnector:
    """tasuki's connector to one Salesforce org (tasuki.crm.Connector, BulkWriter and
    BulkUpserter)."""

    system = "salesforce"
    read_batch_size = READ_BATCH_SIZE
    write_batch_size = WRITE_BATCH_SIZE

    def __init__(
        self,
        auth: SalesforceAuth,
        options: SalesforceOptions = SalesforceOptions(),
        *,
        session: requests.Session | None = None,
    ) -> None:
        self.auth = auth
        self.options = options
        self.bulk_write_threshold = options.bulk_write_threshold
        self.calls = CallCounter()
        self.job_requests = CallCounter()
        """Requests a bulk job made after creating it (upload, close, polls, results): the job
        counts as one write call in :attr:`calls`; its follow-up requests are kept here."""
        self.logins = 0
        """Sign-ins so far (not in :attr:`calls`: they don't use the org's API allocation)."""
        self.quota: ApiUsage | None = None
        """The latest ``Sforce-Limit-Info`` api-usage reading, or ``None`` before any request."""
        self._http = http_session(options.timeout, options.domain, session)
        self._http.hooks["response"].append(self._read_limits)
        self._client: Salesforce | None = None

    # -- the auth flows ------------------------------------------------------------------------

    @classmethod
    def with_jwt(
        cls,
        consumer_key: SecretStr,
        username: str,
        private_key_file: str,
        options: SalesforceOptions = SalesforceOptions(),
        *,
        session: requests.Session | None = None,
    ) -> SalesforceConnector:
        """OAuth 2.0 JWT bearer flow (a connected app with a certificate; no password kept)."""
        return cls(JwtBearer(consumer_key, username, private_key_file), options, session=session)

    @classmethod
    def with_password(
        cls,
        username: str,
        password: SecretStr,
        security_token: SecretStr | None = None,
        options: SalesforceOptions = SalesforceOptions(),
        *,
        session: requests.Session | None = None,
    ) -> SalesforceConnector:
        """Username + password + security token."""
        auth = PasswordLogin(username, password, security_token or SecretStr(""))
        return cls(auth, options, session=session)

    @classmethod
    def with_session(
        cls,
        session_id: SecretStr,
        instance_url: str,
        options: SalesforceOptions = SalesforceOptions(),
        *,
        session: requests.Session | None = None,
    ) -> SalesforceConnector:
        """An existing session id and instance URL (cannot be renewed when it expires)."""
        return cls(ExistingSession(session_id, instance_url), options, session=session)

    def close(self) -> None:
        """Release the HTTP connections."""
        self._http.close()

    # -- plumbing ------------------------------------------------------------------------------

    def _read_limits(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        header = response.headers.get("Sforce-Limit-Info")
        usage = Salesforce.parse_api_usage(header).get("api-usage") if header else None
        if usage is not None:
            self.quota = ApiUsage(usage.used, usage.total)

    def _login(self) -> Salesforce:
        if self.auth.renewable:
            self.logins += 1
        try:
            login = self.auth.login(self._http, self.options.domain, self.options.api_version)
        except SalesforceError as exc:
            raise CrmAuthError(f"Salesforce login refused: {exc}", status=401) from exc
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise CrmUnavailable(f"Salesforce login failed: {type(exc).__name__}") from exc
        self._client = Salesforce(
            session_id=login.session_id.get_secret_value(),
            instance_url=login.instance_url,
            session=self._http,
            version=self.options.api_version,
        )
        return self._client

    def _call(self, kind: str | None, fn: Callable[[Salesforce], T]) -> T:
        """Run one request; renew an expired session once; map every failure to CrmError."""
        for attempt in (1, 2):
            client = self._client or self._login()
            if kind:
                self.calls.add(kind)
            else:
                self.job_requests.add("bulk")
            try:
                return fn(client)
            except SalesforceExpiredSession as exc:
                if attempt == 1 and self.auth.renewable and _is_expired(exc):
                    log.info("Salesforce session expired; signing in again")
                    self._client = None
                    continue
                raise crm_error(exc) from exc
            except SalesforceError as exc:
                raise crm_error(exc) from exc
            except requests.Timeout as exc:
                raise CrmUnavailable(f"Salesforce timed out: {type(exc).__name__}") from exc
            except requests.ConnectionError as exc:
                raise CrmUnavailable(f"Salesforce unreachable: {type(exc).__name__}") from exc
        raise AssertionError("unreachable")

    @staticmethod
    def _request(
        client: Salesforce,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> requests.Response:
        # simple-salesforce has no method for sObject Collections or Bulk 2.0 result files:
        # the same session, headers (token), timeout and limit-header hook, without JSON parsing.
        headers = {**client.headers, "Content-Type": content_type, "Accept": accept}
        response = client.session.request(
            method, client.base_url + path, headers=headers, data=body
        )
        if response.status_code >= 300:
            exception_handler(response, path)
        return response

    def _send(self, kind: str | None) -> Callable[..., requests.Response]:
        def send(method: str, path: str, **kwargs: Any) -> requests.Response:
            return self._call(kind, partial(self._request, method=method, path=path, **kwargs))

        return send

    def _query_pages(self, soql: str, include_deleted: bool = False) -> Iterator[dict[str, Any]]:
        headers = {"Sforce-Query-Options": f"batchSize={self.options.query_batch_size}"}
        page: dict[str, Any] = self._call(
            "read", partial(_query, soql=soql, include_deleted=include_deleted, headers=headers)
        )
        yield page
        while not page.get("done", True):
            url = str(page["nextRecordsUrl"])
            page = self._call("read", partial(_query_more, url=url, headers=headers))
            yield page

    def _query_records(self, soql: str) -> Iterator[dict[str, Any]]:
        for page in self._query_pages(soql):
            yield from page["records"]

    # -- quota ---------------------------------------------------------------------------------

    def api_usage(self) -> tuple[int, int] | None:
        """(API requests used, daily allocation) per the latest ``Sforce-Limit-Info``; None
        before any request (the metrics' ``tasuki_crm_api_calls_used``)."""
        return None if self.quota is None else (self.quota.used, self.quota.max)

    def check_login(self) -> str:
        """Sign in and make the cheapest authenticated call there is (one user id); raises
        :class:`CrmError` when Salesforce refuses. Says where it signed in, and the day's API
        usage when Salesforce reported it (``tasuki check-config --with-services``)."""
        self._call("read", lambda client: _query(client, "SELECT Id FROM User LIMIT 1", False, {}))
        assert self._client is not None
        where = f"signed in to {self._client.base_url.split('/services/')[0]}"
        if self.quota is None:
            return where
        return f"{where}; API requests today: {self.quota.used:,} of {self.quota.max:,}"

    def should_defer_writes(self) -> bool:
        """Whether non-urgent writes should wait: the org has used ``quota_defer_share`` (default
        half) of its daily API requests, per the latest ``Sforce-Limit-Info``. Logs why."""
        if self.quota is None or self.quota.share < self.options.quota_defer_share:
            return False
        log.warning(
            "Salesforce API usage %d/%d (%.0f%%) is past %.0f%% of the daily allocation: "
            "non-urgent writes are deferred",
            self.quota.used,
            self.quota.max,
            100 * self.quota.share,
            100 * self.options.quota_defer_share,
        )
        return True

    # -- the connector interface -----------------------------------------------------------------

    def fetch(self, object: str, ids: Sequence[str], fields: Sequence[str]) -> list[RawRecord]:
        """Records by id, one sObject Collections retrieve per 2,000 ids; missing ids left out."""
        path = f"composite/sobjects/{identifier(object)}"
        wanted = unique(fields)
        select = unique(["Id", "SystemModstamp", *wanted])
        out: list[RawRecord] = []
        for chunk in chunks(ids, self.read_batch_size):
            body = json.dumps({"ids": chunk, "fields": select}).encode()
            rows = self._send("read")("POST", path, body=body).json()
            out.extend(raw_record(r, wanted) for r in rows if r is not None)
        return out

    def fetch_by_key(
        self, object: str, key_field: str, keys: Sequence[str], fields: Sequence[str]
    ) -> list[RawRecord]:
        """Records whose external id ``key_field`` is one of ``keys``, each with its key as id
        (a write-back reading back KPI rows after a crash); one SOQL query per
        :data:`KEYS_PER_QUERY` keys."""
        wanted = unique(fields)
        names = ", ".join(identifier(f) for f in unique(["Id", key_field, *wanted]))
        select = f"SELECT {names} FROM {identifier(object)} WHERE {identifier(key_field)} IN {{}}"
        out: list[RawRecord] = []
        for chunk in chunks(keys, KEYS_PER_QUERY):
            for row in self._query_records(format_soql(select, list(chunk))):
                found = raw_record(row, wanted)
                out.append(RawRecord(str(row[key_field]), found.fields, found.modstamp))
        return out

    def changes(self, object: str, cursor: str | None, fields: Sequence[str]) -> ChangePage:
        """One page of records whose SystemModstamp is past ``cursor`` (deletes included),
        oldest first; records sharing a timestamp are neither lost nor repeated."""
        wanted = unique(fields)
        position = ChangeCursor.decode(cursor)
        page = self._resume(position) if position and position.next else None
        if page is None:
            select = ", ".join(unique(["Id", "IsDeleted", "SystemModstamp", *wanted]))
            soql = f"SELECT {select} FROM {identifier(object)}"
            if position is not None:
                soql = format_soql(soql + " WHERE SystemModstamp >= {}", position.since)
            soql += " ORDER BY SystemModstamp, Id"
            page = next(self._query_pages(soql, include_deleted=True))
        records: list[RawRecord] = []
        last = position or ChangeCursor()
        for row in page["records"]:
            stamp, rid = str(row["SystemModstamp"]), str(row["Id"])
            if position is not None and (parse_datetime(stamp), rid) <= position.key:
                continue
            records.append(raw_record(row, wanted))
            last = ChangeCursor(stamp, rid)
        more = not page.get("done", True)
        nxt = ChangeCursor(last.stamp, last.id, page.get("nextRecordsUrl") if more else None)
        return ChangePage(records, nxt.encode() if nxt.stamp else "", more)

    def _resume(self, position: ChangeCursor) -> dict[str, Any] | None:
        headers = {"Sforce-Query-Options": f"batchSize={self.options.query_batch_size}"}
        try:
            page: dict[str, Any] = self._call(
                "read", partial(_query_more, url=str(position.next), headers=headers)
            )
        except CrmRequestError as exc:
            # Query locators expire (about 15 minutes idle): start again from the position.
            if "INVALID_QUERY_LOCATOR" not in exc.body:
                raise
            return None
        return page

    def _count(self, soql: str) -> int:
        page = self._call("read", partial(_query, soql=soql, include_deleted=True, headers={}))
        return int(page.get("totalSize") or 0)

    def cursor_since(self, since: datetime) -> str:
        """The change cursor that reads records modified from ``since`` on (``--since``)."""
        stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
        return ChangeCursor(stamp, "").encode()

    def estimate_reads(
        self, object: str, cursor: str | None, history_fields: Sequence[str]
    ) -> ReadEstimate:
        """``SELECT COUNT()`` of the records past ``cursor`` (and of their field history):
        one or two calls, whatever the number of records."""
        position = ChangeCursor.decode(cursor)
        size = self.options.query_batch_size
        soql = f"SELECT COUNT() FROM {identifier(object)}"
        if position is not None:
            soql = format_soql(soql + " WHERE SystemModstamp >= {}", position.since)
        records = self._count(soql)
        spent, history = 1, 0
        if history_fields and records:
            hist, _ = history_object(identifier(object))
            names = sorted({HISTORY_FIELD_NAMES.get(f, f) for f in unique(history_fields)})
            count = format_soql(f"SELECT COUNT() FROM {hist} WHERE Field IN {{}}", names)
            if position is not None:
                count += format_soql(" AND CreatedDate >= {}", position.since)
            rows = self._count(count)
            spent += 1
            history = history_reads(
                pages(records, size), HISTORY_IDS_PER_QUERY, size, rows / records
            )
        changes = max(1, len(pages(records, size)))
        return ReadEstimate(records, changes, history, size, spent=spent)

    def history(self, object: str, ids: Sequence[str], fields: Sequence[str]) -> list[FieldChange]:
        """Field history of ``fields`` on records ``ids``, oldest first (owner changes as ids)."""
        hist, parent = history_object(identifier(object))
        names = {HISTORY_FIELD_NAMES.get(f, f): f for f in unique(fields)}
        rename = {logged: f for f, logged in HISTORY_FIELD_NAMES.items()} | names
        select = f"SELECT Id, {parent}, Field, DataType, OldValue, NewValue, CreatedDate, "
        select += f"CreatedById FROM {hist} WHERE {parent} IN {{ids}}"
        if fields:
            select += " AND Field IN {fields}"
        select += " ORDER BY CreatedDate, Id"
        out: list[FieldChange] = []
        for chunk in chunks(ids, HISTORY_IDS_PER_QUERY):
            soql = format_soql(select, ids=chunk, fields=sorted(names))
            for row in self._query_records(soql):
                if row.get("Field") == "Owner" and row.get("DataType") == "Text":
                    continue  # the same change again, with user names instead of ids
                out.append(history_change(row, parent, rename))
        out.sort(key=lambda c: (c.at, c.id))
        return out

    def write(self, object: str, writes: Sequence[RecordWrite]) -> list[WriteResult]:
        """Update at most 200 records in one sObject Collections call, not all-or-none; each
        rejected record carries Salesforce's status code and message."""
        if len(writes) > self.write_batch_size:
            raise ValueError(f"at most {self.write_batch_size} records per write call")
        if not writes:
            return []
        obj = identifier(object)
        records = [
            {
                "attributes": {"type": obj},
                "id": w.record_id,
                **{identifier(k): v for k, v in w.values.items()},
            }
            for w in writes
        ]
        body = json.dumps({"allOrNone": False, "records": records}, default=str).encode()
        results = self._send("write")("PATCH", "composite/sobjects", body=body).json()
        return [save_result(w.record_id, r) for w, r in zip(writes, results, strict=True)]

    def write_bulk(self, object: str, writes: Sequence[RecordWrite]) -> list[WriteResult]:
        """Update any number of records through one Bulk API 2.0 job (one write call)."""
        if not writes:
            return []
        for w in writes:
            for name in w.values:
                identifier(name)
        self.calls.add("write")
        return run_update_job(
            self._send(None), identifier(object), writes, self.options.bulk_polling
        )

    def upsert_records(
        self, object: str, key_field: str, writes: Sequence[RecordWrite]
    ) -> list[WriteResult]:
        """Create or update at most 200 records in one sObject Collections upsert, each matched on
        the external-id field ``key_field`` whose value is ``record_id``; not all-or-none. Each
        result's ``record_id`` is the key; a rejected record carries Salesforce's status code and
        message. An empty key is refused before any call: a row without its key could never be
        matched again."""
        if len(writes) > self.write_batch_size:
            raise ValueError(f"at most {self.write_batch_size} records per upsert call")
        if not writes:
            return []
        obj, key = identifier(object), _key_field(key_field, writes)
        records = [
            {
                "attributes": {"type": obj},
                key: w.record_id,
                **{identifier(k): v for k, v in w.values.items() if k.lower() != key.lower()},
            }
            for w in writes
        ]
        body = json.dumps({"allOrNone": False, "records": records}, default=str).encode()
        path = f"composite/sobjects/{obj}/{key}"
        results = self._send("write")("PATCH", path, body=body).json()
        return [save_result(w.record_id, r) for w, r in zip(writes, results, strict=True)]

    def upsert_bulk(
        self, object: str, key_field: str, writes: Sequence[RecordWrite]
    ) -> list[WriteResult]:
        """Create or update any number of records matched on ``key_field`` through one Bulk API
        2.0 upsert job (one write call); one result per write, in order, keyed by its value."""
        if not writes:
            return []
        key = _key_field(key_field, writes)
        for w in writes:
            for name in w.values:
                identifier(name)
        self.calls.add("write")
        return run_upsert_job(
            self._send(None), identifier(object), key, writes, self.options.bulk_polling
        )

    def users(self, fields: Sequence[str]) -> list[RawRecord]:
        """Every user with ``fields``."""
        wanted = unique(fields)
        select = ", ".join(unique(["Id", *wanted]))
        rows = self._query_records(f"SELECT {select} FROM User ORDER BY Id")
        return [raw_record(r, wanted) for r in rows]


def connector_from_settings(settings: Settings) -> SalesforceConnector:
    """The connector for the sign-in ``settings.salesforce`` completes: JWT bearer if a consumer
    key, username and private key file are set; else password; else an existing session.
    Raises :class:`ConfigError` naming each missing variable when none is complete."""
    sf = settings.salesforce
    problems = sf.login_problems()
    if problems:
        raise ConfigError(problems)
    options = SalesforceOptions(domain=Domain(sf.domain))
    if sf.flow == "JWT bearer":
        assert sf.consumer_key and sf.username and sf.private_key_file
        return SalesforceConnector.with_jwt(
            sf.consumer_key, sf.username, sf.private_key_file, options
        )
    if sf.flow == "password":
        assert sf.username and sf.password
        return SalesforceConnector.with_password(
            sf.username, sf.password, sf.security_token, options
        )
    assert sf.session_id and sf.instance_url
    return SalesforceConnector.with_session(sf.session_id, sf.instance_url, options)
