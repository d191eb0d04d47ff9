"""An emulator of the Salesforce endpoints tasuki uses, served over HTTPS on 127.0.0.1.

The unmodified simple-salesforce talks to it: OAuth 2.0 JWT bearer and SOAP password login,
``query``/``queryAll`` with ``nextRecordsUrl`` paging and ``Sforce-Query-Options: batchSize``,
sObject Collections retrieve (2,000 ids), update and upsert on an external-id field (200 records,
per-record errors, ``created`` true/false), the Bulk API 2.0 ingest job lifecycle (``update`` and
``upsert`` with ``externalIdFieldName``) with failed results, field history (``LeadHistory``,
``OpportunityFieldHistory``), the ``Sforce-Limit-Info`` header, and Salesforce's error bodies
(``[{"message", "errorCode", "fields"}]``). Faults are injected by request kind: an expired session,
REQUEST_LIMIT_EXCEEDED, 503, a slow answer. Every request is counted by kind in :attr:`Org.calls`
(``login``, ``query``, ``retrieve``, ``update``, ``upsert``, ``bulk``).

Upsert follows Salesforce's rules: the field in the URL (or ``externalIdFieldName``) must be an
external-id field of the object, else the whole request is refused (404 ``NOT_FOUND`` for sObject
Collections, 400 ``INVALIDJOB`` for a Bulk job); a record without a key value is refused
(``MISSING_ARGUMENT``); records sharing a key within one request are all refused
(``DUPLICATE_VALUE``: "Duplicate external id specified"); a key two live records hold is refused
(``DUPLICATE_EXTERNAL_ID``); otherwise the key's record is updated, or created when none has it.

Records live in memory in :class:`Org`; tests seed them through its Python methods (what people
do in the org) and watch what the connector did through the same object.
"""

from __future__ import annotations

import csv
import io
import json
import secrets
import ssl
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as SafeET
import jwt
import trustme
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from tests.salesforce.sf_soql import Row, SoqlError, parse, sort_key

API_VERSION = "59.0"
ORG_ID = "00D5j00000EMULAAA"
INTEGRATION_USER = "005000000000001AAA"
ID_PREFIX = {"Lead": "00Q", "Opportunity": "006", "Account": "001", "User": "005"}
HISTORY = {
    "Lead": ("LeadHistory", "LeadId"),
    "Opportunity": ("OpportunityFieldHistory", "OpportunityId"),
    "Account": ("AccountHistory", "AccountId"),
}
TRACKED = {"OwnerId": "Owner", "StageName": "StageName", "Status": "Status"}
HISTORY_FIELDS = ["Id", "Field", "DataType", "OldValue", "NewValue", "CreatedDate", "CreatedById"]
SYSTEM_FIELDS = ["Id", "IsDeleted", "SystemModstamp", "CreatedDate", "LastModifiedById"]
MAX_RETRIEVE = 2000
MAX_UPDATE = 200
TOO_MANY_RECORDS = "record limit reached. cannot submit more than 200 records into this call"
NOT_FOUND = "The requested resource does not exist"

ValidationRule = Callable[[str, Row], "tuple[str, list[str]] | None"]
"""(object, record after the change) → (message, fields) when the org rejects the save."""


def sf_datetime(at: datetime) -> str:
    """Salesforce's wire format for datetimes: ``2026-11-02T01:00:00.000+0000``."""
    at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}+0000"


def sf_error(code: str, message: str, fields: Iterable[str] = ()) -> dict[str, Any]:
    """One entry of Salesforce's error body."""
    return {"message": message, "errorCode": code, "fields": list(fields)}


@dataclass
class Fault:
    """A failure to answer ``times`` requests of kind ``on`` with (``any`` matches all)."""

    kind: str
    """``expired_session`` | ``rate_limited`` | ``unavailable`` | ``slow``"""
    on: str = "any"
    times: int = 1
    delay: float = 0.0
    after: int = 0
    """Requests of kind ``on`` to let through before the fault starts."""


@dataclass
class BulkJob:
    """One Bulk API 2.0 ingest job."""

    id: str
    object: str
    operation: str
    external_id: str = ""
    """``externalIdFieldName`` of an upsert job."""
    state: str = "Open"
    data: str = ""
    failed: list[dict[str, str]] = field(default_factory=list)
    succeeded: list[dict[str, str]] = field(default_factory=list)
    polls: int = 0

    def info(self, base: str) -> dict[str, Any]:
        extra = {"externalIdFieldName": self.external_id} if self.external_id else {}
        return {
            "id": self.id,
            "operation": self.operation,
            "object": self.object,
            **extra,
            "createdById": INTEGRATION_USER,
            "state": self.state,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(API_VERSION),
            "lineEnding": "LF",
            "columnDelimiter": "COMMA",
            "contentUrl": f"{base}/jobs/ingest/{self.id}/batches",
            "numberRecordsProcessed": len(self.failed) + len(self.succeeded),
            "numberRecordsFailed": len(self.failed),
        }


class Org:
    """One emulated org: schema, records, field history, users, logins, quota and faults."""

    def __init__(self, *, org_id: str = ORG_ID, daily_limit: int = 1_000_000) -> None:
        self.org_id = org_id
        self.lock = threading.RLock()
        self.schema: dict[str, dict[str, str]] = {}
        self.external_ids: dict[str, set[str]] = defaultdict(set)
        self.records: dict[str, dict[str, Row]] = defaultdict(dict)
        self.validation_rules: list[ValidationRule] = []
        self.locked: set[str] = set()
        self.read_only: dict[str, set[str]] = defaultdict(set)
        self.calls: Counter[str] = Counter()
        self.api_used = 0
        self.api_max = daily_limit
        self.faults: list[Fault] = []
        self.tokens: dict[str, str] = {}
        self.jwt_apps: dict[str, bytes] = {}
        self.passwords: dict[str, tuple[str, str]] = {}
        self.jobs: dict[str, BulkJob] = {}
        self.cursors: dict[str, tuple[str, list[Row]]] = {}
        self.base_url = "https://127.0.0.1"
        self._seq = Counter[str]()
        self.define("User", {"Name": "string", "Email": "string", "Department": "string"})

    # -- what admins and users do in the org --------------------------------------------------

    def define(
        self, object: str, fields: Mapping[str, str], *, external_ids: Iterable[str] = ()
    ) -> None:
        """Declare ``object`` with ``fields`` (name → string | number | boolean | datetime);
        ``external_ids`` are fields with the External ID attribute (upsert can match on them)."""
        with self.lock:
            known = self.schema.setdefault(object, dict.fromkeys(SYSTEM_FIELDS, "system"))
            known.update(fields)
            self.external_ids[object].update(external_ids)
            if object in HISTORY:
                hist, parent = HISTORY[object]
                self.schema[hist] = dict.fromkeys([*HISTORY_FIELDS, parent, "IsDeleted"], "system")

    def new_id(self, object: str) -> str:
        """A fresh 18-character id with the object's key prefix; ids sort in creation order."""
        self._seq[object] += 1
        return f"{ID_PREFIX.get(object, 'a00')}{self._seq[object]:012d}AAA"

    def add_user(self, name: str, department: str, user_id: str | None = None) -> str:
        """Create a user (an owner) and return its id."""
        return self.upsert("User", user_id, {"Name": name, "Department": department})

    def upsert(
        self,
        object: str,
        record_id: str | None,
        values: Mapping[str, Any],
        *,
        by: str = "005000000000009AAA",
        at: datetime | None = None,
    ) -> str:
        """Create or change a record as user ``by`` would (field history kept); returns its id."""
        with self.lock:
            record_id = record_id or self.new_id(object)
            self._save(object, record_id, dict(values), by=by, at=at or datetime.now(UTC))
            return record_id

    def delete(self, object: str, record_id: str, *, at: datetime | None = None) -> None:
        """Move a record to the recycle bin (``queryAll`` still sees it, with IsDeleted)."""
        with self.lock:
            rec = self.records[object][record_id]
            rec["IsDeleted"] = True
            rec["SystemModstamp"] = sf_datetime(at or datetime.now(UTC))

    def get(self, object: str, record_id: str) -> Row | None:
        """A live record's fields as the org holds them (no API call)."""
        rec = self.records[object].get(record_id)
        return None if rec is None or rec["IsDeleted"] else dict(rec)

    def allow_login(self, username: str, password: str = "", token: str = "") -> None:
        """Let ``username`` log in (SOAP with password + security token, or by JWT)."""
        self.passwords[username] = (password, token)

    def register_app(self, consumer_key: str, public_key_pem: bytes) -> None:
        """A connected app whose JWT assertions are signed by the matching private key."""
        self.jwt_apps[consumer_key] = public_key_pem

    def inject(
        self, kind: str, *, on: str = "any", times: int = 1, delay: float = 0.0, after: int = 0
    ) -> None:
        """Answer ``times`` requests of kind ``on`` with fault ``kind``, after letting ``after``
        of them through."""
        with self.lock:
            self.faults.append(Fault(kind, on, times, delay, after))

    def expire_sessions(self) -> None:
        """Every access token stops working (as after a session timeout)."""
        with self.lock:
            self.tokens.clear()

    def _save(self, object: str, rid: str, values: Row, *, by: str, at: datetime) -> None:
        stamp = sf_datetime(at)
        rec = self.records[object].get(rid)
        existed = rec is not None
        if rec is None:
            rec = {"Id": rid, "IsDeleted": False, "CreatedDate": stamp}
            self.records[object][rid] = rec
        if existed and object in HISTORY:
            hist, parent = HISTORY[object]
            for name, value in values.items():
                if name in TRACKED and rec.get(name) != value:
                    self._history(hist, parent, rid, name, rec.get(name), value, by, stamp)
        rec.update(values)
        rec["SystemModstamp"] = stamp
        rec["LastModifiedById"] = by

    def _history(
        self, hist: str, parent: str, rid: str, name: str, old: Any, new: Any, by: str, stamp: str
    ) -> None:
        rows = [(TRACKED[name], "Text" if name != "OwnerId" else "EntityId", old, new)]
        if name == "OwnerId":
            # Salesforce writes an owner change twice: once as ids, once as the users' names.
            rows.append(("Owner", "Text", self._user_name(old), self._user_name(new)))
        for fld, dtype, o, n in rows:
            hid = f"017{len(self.records[hist]) + 1:012d}AAA"
            self.records[hist][hid] = {
                "Id": hid,
                parent: rid,
                "Field": fld,
                "DataType": dtype,
                "OldValue": o,
                "NewValue": n,
                "CreatedDate": stamp,
                "CreatedById": by,
                "IsDeleted": False,
            }

    def _user_name(self, user_id: Any) -> Any:
        user = self.records["User"].get(str(user_id)) if user_id else None
        return user["Name"] if user else user_id

    # -- the API's behaviour -------------------------------------------------------------------

    def update_record(self, object: str, rid: str, values: Row, by: str, at: datetime) -> list[Row]:
        """Apply one record's update as the API would; the errors (empty when saved)."""
        rec = self.records[object].get(rid)
        if rec is None:
            return [sf_error("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")]
        if rec["IsDeleted"]:
            return [sf_error("ENTITY_IS_DELETED", "entity is deleted")]
        errors = self._refusal(object, rid, values, {**rec, **values})
        if not errors:
            self._save(object, rid, values, by=by, at=at)
        return errors

    def key_index(self, object: str, key_field: str) -> dict[Any, list[str]]:
        """Live records of ``object`` by their ``key_field`` value (what an upsert matches on)."""
        index: dict[Any, list[str]] = defaultdict(list)
        for rid, rec in self.records[object].items():
            if not rec["IsDeleted"] and rec.get(key_field) not in (None, ""):
                index[rec[key_field]].append(rid)
        return index

    def upsert_record(
        self,
        object: str,
        key_field: str,
        values: Row,
        index: dict[Any, list[str]],
        by: str,
        at: datetime,
    ) -> tuple[list[Row], str, bool]:
        """Apply one record's upsert on ``key_field`` (its value in ``values``) as the API would:
        (errors, record id, created). ``index`` is :meth:`key_index`, kept current here."""
        key = values.get(key_field)
        if key is None or key == "":
            return [sf_error("MISSING_ARGUMENT", f"{key_field} not specified")], "", False
        matches = index.get(key, [])
        if len(matches) > 1:
            found = ", ".join(matches)
            message = f"{key_field}: more than one record found for external id field: [{found}]"
            return [sf_error("DUPLICATE_EXTERNAL_ID", message, [key_field])], "", False
        if matches:
            rid = matches[0]
            return self.update_record(object, rid, values, by, at), rid, False
        errors = self._refusal(object, None, values, values)
        if errors:
            return errors, "", False
        rid = self.new_id(object)
        self._save(object, rid, values, by=by, at=at)
        index[key].append(rid)
        return [], rid, True

    def _refusal(self, object: str, rid: str | None, values: Row, after: Row) -> list[Row]:
        """Why the org refuses to save ``values`` (``after``: the record as it would be)."""
        known = self.schema.get(object, {})
        for name in values:
            if name not in known:
                return [
                    sf_error(
                        "INVALID_FIELD", f"No such column '{name}' on sobject of type {object}"
                    )
                ]
        denied = sorted(set(values) & self.read_only[object])
        if denied:
            return [
                sf_error(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {', '.join(denied)}. Please check the "
                    "security settings of this field and verify that it is read/write for your "
                    "profile or permission set.",
                    denied,
                )
            ]
        if rid is not None and rid in self.locked:
            return [
                sf_error(
                    "UNABLE_TO_LOCK_ROW",
                    f"unable to obtain exclusive access to this record or 1 records: {rid}",
                )
            ]
        for rule in self.validation_rules:
            rejected = rule(object, after)
            if rejected is not None:
                return [sf_error("FIELD_CUSTOM_VALIDATION_EXCEPTION", rejected[0], rejected[1])]
        return []

    def select(self, soql: str, include_deleted: bool) -> tuple[str, list[Row]]:
        """Run a query; (object, rows with only the selected fields)."""
        q = parse(soql)
        known = self.schema.get(q.object)
        if known is None:
            raise SoqlError(f"sObject type '{q.object}' is not supported.")
        by_lower = {name.lower(): name for name in known}
        for name in [*q.fields, *q.order_by]:
            if name.lower() not in by_lower:
                raise KeyError(name)
        rows = [
            r
            for r in self.records[q.object].values()
            if (include_deleted or not r["IsDeleted"]) and (q.where is None or q.where(r))
        ]
        rows.sort(key=lambda r: sort_key(r, [by_lower[f.lower()] for f in q.order_by]))
        if q.limit is not None:
            rows = rows[: q.limit]
        picked = [by_lower[f.lower()] for f in q.fields]
        return q.object, [{f: r.get(f) for f in picked} for r in rows]


class Emulator:
    """The WSGI application in front of an :class:`Org`."""

    def __init__(self, org: Org) -> None:
        self.org = org

    def __call__(self, environ: Any, start_response: Any) -> Any:
        return self.handle(Request(environ))(environ, start_response)

    # -- plumbing ------------------------------------------------------------------------------

    @property
    def base(self) -> str:
        return f"/services/data/v{API_VERSION}"

    @staticmethod
    def kind(request: Request) -> str:
        path, method = request.path, request.method
        if path.startswith("/services/oauth2/") or path.startswith("/services/Soap/"):
            return "login"
        if "/query" in path:
            return "query"
        if "/jobs/ingest" in path:
            return "bulk"
        if "/composite/sobjects" in path:
            # composite/sobjects/<Object>/<ExternalIdField> is the upsert resource.
            if path.partition("/composite/sobjects")[2].strip("/").count("/") == 1:
                return "upsert"
            return "update" if method == "PATCH" else "retrieve"
        return "other"

    def _fault(self, kind: str) -> Fault | None:
        with self.org.lock:
            for fault in self.org.faults:
                if fault.on in (kind, "any") and fault.after > 0:
                    fault.after -= 1
                elif fault.on in (kind, "any") and fault.times > 0:
                    fault.times -= 1
                    if fault.times == 0:
                        self.org.faults.remove(fault)
                    return fault
        return None

    def _json(self, body: Any, status: int = 200) -> Response:
        return Response(json.dumps(body), status=status, content_type="application/json")

    def handle(self, request: Request) -> Response:
        kind = self.kind(request)
        with self.org.lock:
            self.org.calls[kind] += 1
        fault = self._fault(kind)
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.delay)
            fault = None
        if kind == "login":
            return self.login(request)
        if fault is not None and fault.kind == "expired_session":
            self.org.expire_sessions()
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.org.tokens:
            body = [sf_error("INVALID_SESSION_ID", "Session expired or invalid")]
            return self._json(body, 401)
        with self.org.lock:
            self.org.api_used += 1
        if fault is not None and fault.kind == "rate_limited":
            response = self._json(
                [sf_error("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")], 403
            )
        elif fault is not None and fault.kind == "unavailable":
            response = self._json(
                [sf_error("SERVER_UNAVAILABLE", "Server temporarily unavailable.")], 503
            )
        else:
            response = self.route(request, kind, self.org.tokens[token])
        response.headers["Sforce-Limit-Info"] = f"api-usage={self.org.api_used}/{self.org.api_max}"
        return response

    def route(self, request: Request, kind: str, user: str) -> Response:
        rest = request.path.removeprefix(self.base).strip("/")
        try:
            if kind == "query":
                return self.query(request, rest)
            if kind == "retrieve" and request.method == "POST":
                return self.retrieve(rest.removeprefix("composite/sobjects/"), request.get_json())
            if kind == "update":
                return self.update(request.args, request.get_json(), user)
            if kind == "upsert":
                if request.method != "PATCH":
                    message = f"HTTP Method '{request.method}' not allowed. Allowed are PATCH"
                    return self._json([sf_error("METHOD_NOT_ALLOWED", message)], 405)
                object, _, key_field = rest.removeprefix("composite/sobjects/").partition("/")
                return self.upsert(object, key_field, request.get_json(), user)
            if kind == "bulk":
                return self.bulk(request, rest.removeprefix("jobs/ingest").strip("/"), user)
        except SoqlError as exc:
            return self._json([sf_error("MALFORMED_QUERY", str(exc))], 400)
        except KeyError as exc:
            message = (
                f"No such column '{exc.args[0]}' on entity. If you are attempting to use a "
                "custom field, be sure to append the '__c' after the custom field name."
            )
            return self._json([sf_error("INVALID_FIELD", message)], 400)
        return self._json([sf_error("NOT_FOUND", NOT_FOUND)], 404)

    # -- login -----------------------------------------------------------------------------------

    def _issue(self, user: str) -> str:
        token = f"{self.org.org_id}!{secrets.token_urlsafe(24)}"
        self.org.tokens[token] = user
        return token

    def login(self, request: Request) -> Response:
        if request.path == "/services/oauth2/token":
            return self.oauth_token(request)
        return self.soap_login(request)

    def oauth_token(self, request: Request) -> Response:
        form = request.form
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return self._json(
                {
                    "error": "unsupported_grant_type",
                    "error_description": "grant type not supported",
                },
                400,
            )
        try:
            claims = jwt.decode(form.get("assertion", ""), options={"verify_signature": False})
            key = self.org.jwt_apps[claims["iss"]]
            jwt.decode(
                form["assertion"],
                key,
                algorithms=["RS256"],
                audience=["https://login.salesforce.com", "https://test.salesforce.com"],
            )
            user = claims["sub"]
            if user not in self.org.passwords:
                raise KeyError(user)
        except (jwt.PyJWTError, KeyError):
            return self._json(
                {"error": "invalid_grant", "error_description": "invalid assertion"}, 400
            )
        token = self._issue(INTEGRATION_USER)
        return self._json(
            {
                "access_token": token,
                "scope": "api",
                "instance_url": self.org.base_url,
                "id": f"{self.org.base_url}/id/{self.org.org_id}/{INTEGRATION_USER}",
                "token_type": "Bearer",
            }
        )

    def soap_login(self, request: Request) -> Response:
        root = SafeET.fromstring(request.get_data())
        found = {el.tag.rsplit("}", 1)[-1]: (el.text or "") for el in root.iter()}
        expected = self.org.passwords.get(found.get("username", ""))
        if expected is None or found.get("password") != expected[0] + expected[1]:
            fault = (
                '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
                'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
                'xmlns:sf="urn:fault.partner.soap.sforce.com"><soapenv:Body><soapenv:Fault>'
                "<faultcode>sf:INVALID_LOGIN</faultcode><faultstring>INVALID_LOGIN</faultstring>"
                "<detail><sf:LoginFault><sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode>"
                "<sf:exceptionMessage>Invalid username, password, security token; or user "
                "locked out.</sf:exceptionMessage></sf:LoginFault></detail></soapenv:Fault>"
                "</soapenv:Body></soapenv:Envelope>"
            )
            return Response(fault, status=500, content_type="text/xml")
        token = self._issue(INTEGRATION_USER)
        server = f"{self.org.base_url}/services/Soap/u/{API_VERSION}/{self.org.org_id}"
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
            'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
            '<loginResponse xmlns="urn:partner.soap.sforce.com"><result>'
            f"<passwordExpired>false</passwordExpired><serverUrl>{server}</serverUrl>"
            f"<sessionId>{token}</sessionId><userId>{INTEGRATION_USER}</userId>"
            "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
        )
        return Response(body, content_type="text/xml")

    # -- query -----------------------------------------------------------------------------------

    def _attributes(self, object: str, row: Row) -> Row:
        url = f"{self.base}/sobjects/{object}/{row.get('Id')}"
        return {"attributes": {"type": object, "url": url}, **row}

    def query(self, request: Request, rest: str) -> Response:
        endpoint, _, locator = rest.partition("/")
        if locator:
            key, _, offset = locator.rpartition("-")
            if key not in self.org.cursors:
                return self._json([sf_error("INVALID_QUERY_LOCATOR", "invalid query locator")], 400)
            object, rows = self.org.cursors[key]
            start, size = int(offset), self._batch_size(request)
        else:
            object, rows = self.org.select(request.args["q"], endpoint == "queryAll")
            if parse(request.args["q"]).count:
                return self._json({"totalSize": len(rows), "done": True, "records": []})
            start, size, key = 0, self._batch_size(request), secrets.token_hex(8)
        page = rows[start : start + size]
        done = start + size >= len(rows)
        body: Row = {
            "totalSize": len(rows),
            "done": done,
            "records": [self._attributes(object, r) for r in page],
        }
        if not done:
            self.org.cursors[key] = (object, rows)
            body["nextRecordsUrl"] = f"{self.base}/{endpoint}/{key}-{start + size}"
        return self._json(body)

    @staticmethod
    def _batch_size(request: Request) -> int:
        options = request.headers.get("Sforce-Query-Options", "")
        size = 2000
        for part in options.split(","):
            name, _, value = part.strip().partition("=")
            if name == "batchSize" and value.isdigit():
                size = int(value)
        return max(200, min(2000, size))

    # -- sObject Collections -------------------------------------------------------------------

    def retrieve(self, object: str, body: Row) -> Response:
        ids, fields = list(body.get("ids", [])), list(body.get("fields", []))
        if len(ids) > MAX_RETRIEVE:
            msg = f"Maximum number of ids is {MAX_RETRIEVE}"
            return self._json([sf_error("EXCEEDED_ID_LIMIT", msg)], 400)
        known = self.org.schema.get(object, {})
        for name in fields:
            if name not in known:
                raise KeyError(name)
        out: list[Row | None] = []
        for rid in ids:
            rec = self.org.records[object].get(rid)
            if rec is None or rec["IsDeleted"]:
                out.append(None)
            else:
                out.append(self._attributes(object, {f: rec.get(f) for f in ["Id", *fields]}))
        return self._json(out)

    def _refuse_collection(self, records: list[Row], body: Row) -> Response | None:
        """Salesforce's answer to a collections save it will not start, else ``None``."""
        if len(records) > MAX_UPDATE:
            return self._json([sf_error("EXCEEDED_ID_LIMIT", TOO_MANY_RECORDS)], 400)
        if body.get("allOrNone"):
            return self._json(
                [sf_error("NOT_SUPPORTED", "the emulator needs allOrNone=false")], 400
            )
        return None

    def update(self, args: Mapping[str, str], body: Row, user: str) -> Response:
        records = list(body.get("records", []))
        refused = self._refuse_collection(records, body)
        if refused is not None:
            return refused
        now = datetime.now(UTC)
        results: list[Row] = []
        with self.org.lock:
            for rec in records:
                object = rec.get("attributes", {}).get("type", "")
                rid = str(rec.get("id", ""))
                values = {k: v for k, v in rec.items() if k not in ("attributes", "id")}
                errors = self.org.update_record(object, rid, values, user, now)
                if errors:
                    results.append({"success": False, "errors": _save_errors(errors)})
                else:
                    results.append({"id": rid, "success": True, "errors": []})
        return self._json(results)

    def upsert(self, object: str, key_field: str, body: Row, user: str) -> Response:
        records = list(body.get("records", []))
        refused = self._refuse_collection(records, body)
        if refused is not None:
            return refused
        if object not in self.org.schema:
            return self._json([sf_error("NOT_FOUND", NOT_FOUND)], 404)
        if key_field not in self.org.external_ids[object]:
            message = f"Provided external ID field does not exist or is not accessible: {key_field}"
            return self._json([sf_error("NOT_FOUND", message)], 404)
        rows = [{k: v for k, v in rec.items() if k != "attributes"} for rec in records]
        now = datetime.now(UTC)
        results: list[Row] = []
        with self.org.lock:
            index = self.org.key_index(object, key_field)
            repeated = _repeated_keys(rows, key_field)
            for values in rows:
                key = values.get(key_field)
                if key in repeated:
                    errors = [_duplicate_key(key_field, key)]
                    rid, created = "", False
                else:
                    errors, rid, created = self.org.upsert_record(
                        object, key_field, values, index, user, now
                    )
                if errors:
                    results.append({"success": False, "errors": _save_errors(errors)})
                else:
                    results.append({"id": rid, "success": True, "errors": [], "created": created})
        return self._json(results)

    # -- Bulk API 2.0 ingest -------------------------------------------------------------------

    def bulk(self, request: Request, rest: str, user: str) -> Response:
        job_id, _, tail = rest.partition("/")
        if not job_id and request.method == "POST":
            spec = request.get_json()
            refused = self._refuse_job(spec)
            if refused is not None:
                return self._json([sf_error("INVALIDJOB", refused)], 400)
            job = BulkJob(
                f"750{secrets.token_hex(6).upper()}AAA",
                spec["object"],
                spec["operation"],
                spec.get("externalIdFieldName", ""),
            )
            self.org.jobs[job.id] = job
            return self._json(job.info(self.base))
        job_or_none = self.org.jobs.get(job_id)
        if job_or_none is None:
            return self._json([sf_error("NOT_FOUND", NOT_FOUND)], 404)
        job = job_or_none
        if tail == "batches" and request.method == "PUT":
            if job.state != "Open":
                return self._json([sf_error("INVALIDJOBSTATE", "Job is not open")], 409)
            job.data += request.get_data(as_text=True)
            return Response(status=201)
        if not tail and request.method == "PATCH":
            state = request.get_json().get("state")
            if state == "UploadComplete" and job.state == "Open":
                job.state = "UploadComplete"
                self._run(job, user)
            elif state == "Aborted":
                job.state = "Aborted"
            return self._json(job.info(self.base))
        if not tail and request.method == "GET":
            job.polls += 1
            if job.state == "UploadComplete":
                job.state = "InProgress"
            elif job.state == "InProgress":
                job.state = "JobComplete"
            return self._json(job.info(self.base))
        if tail in ("failedResults", "successfulResults") and request.method == "GET":
            return self._results(job, tail)
        return self._json([sf_error("NOT_FOUND", NOT_FOUND)], 404)

    def _refuse_job(self, spec: Row) -> str | None:
        """Why Salesforce would refuse to create this ingest job (None: it is accepted)."""
        object, field = spec.get("object", ""), spec.get("externalIdFieldName")
        if object not in self.org.schema:
            return f"InvalidJob : Unable to find object: {object}"
        if spec.get("operation") != "upsert":
            return None
        if not field:
            return (
                f"InvalidJob : External ID was blank for {object}. "
                "An External ID must be specified for upsert."
            )
        if field not in self.org.external_ids[object]:
            return (
                f"InvalidJob : Field name provided, {field} does not match an External ID, "
                f"Salesforce Id, or indexed field for {object}"
            )
        return None

    def _run(self, job: BulkJob, user: str) -> None:
        if job.operation == "upsert":
            self._run_upsert(job, user)
            return
        types = self.org.schema.get(job.object, {})
        now = datetime.now(UTC)
        with self.org.lock:
            for row in csv.DictReader(io.StringIO(job.data)):
                rid = row.get("Id", "")
                values = {
                    k: _from_csv(v, types.get(k, "string"))
                    for k, v in row.items()
                    if k != "Id" and v != ""
                }
                errors = self.org.update_record(job.object, rid, values, user, now)
                if errors:
                    job.failed.append({"sf__Id": rid, "sf__Error": _bulk_error(errors), **row})
                else:
                    job.succeeded.append({"sf__Id": rid, "sf__Created": "false", **row})

    def _run_upsert(self, job: BulkJob, user: str) -> None:
        types = self.org.schema.get(job.object, {})
        key_field = job.external_id
        now = datetime.now(UTC)
        rows = list(csv.DictReader(io.StringIO(job.data)))
        with self.org.lock:
            index = self.org.key_index(job.object, key_field)
            repeated = _repeated_keys(rows, key_field)
            for row in rows:
                values = {
                    k: _from_csv(v, types.get(k, "string")) for k, v in row.items() if v != ""
                }
                key = values.get(key_field)
                if key in repeated:
                    errors, rid, created = [_duplicate_key(key_field, key)], "", False
                else:
                    errors, rid, created = self.org.upsert_record(
                        job.object, key_field, values, index, user, now
                    )
                if errors:
                    job.failed.append({"sf__Id": rid, "sf__Error": _bulk_error(errors), **row})
                else:
                    created_cell = "true" if created else "false"
                    job.succeeded.append({"sf__Id": rid, "sf__Created": created_cell, **row})

    def _results(self, job: BulkJob, tail: str) -> Response:
        rows = job.failed if tail == "failedResults" else job.succeeded
        first = "sf__Error" if tail == "failedResults" else "sf__Created"
        header = ["sf__Id", first, *next(csv.reader(io.StringIO(job.data)), [])]
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=header, quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return Response(out.getvalue(), content_type="text/csv")


def _save_errors(errors: list[Row]) -> list[Row]:
    # A SaveResult/UpsertResult names the code statusCode (error bodies say errorCode).
    return [
        {"statusCode": e["errorCode"], "message": e["message"], "fields": e["fields"]}
        for e in errors
    ]


def _bulk_error(errors: list[Row]) -> str:
    """A Bulk result's ``sf__Error`` cell: ``CODE:message:Field1,Field2 --``."""
    e = errors[0]
    return f"{e['errorCode']}:{e['message']}:{','.join(e['fields'])} --"


def _repeated_keys(rows: Iterable[Mapping[str, Any]], key_field: str) -> set[Any]:
    """Key values more than one record of one request carries (Salesforce refuses them all)."""
    seen: Counter[Any] = Counter(
        row.get(key_field) for row in rows if row.get(key_field) not in (None, "")
    )
    return {key for key, n in seen.items() if n > 1}


def _duplicate_key(key_field: str, key: Any) -> Row:
    return sf_error("DUPLICATE_VALUE", f"Duplicate external id specified: {key}", [key_field])


def _from_csv(text: str, kind: str) -> Any:
    if text == "#N/A":
        return None
    if kind == "number":
        return float(text) if "." in text else int(text)
    if kind == "boolean":
        return text.lower() == "true"
    return text


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@dataclass
class RunningEmulator:
    """An emulator listening on ``url`` with a certificate signed by the CA at ``ca_path``."""

    org: Org
    url: str
    ca_path: Path
    server: BaseWSGIServer
    thread: threading.Thread

    def stop(self) -> None:
        """Stop serving and free the port."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve(org: Org, folder: Path) -> RunningEmulator:
    """Serve ``org`` over HTTPS on 127.0.0.1 (a free port); the test CA is written to ``folder``."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    server = make_server(
        "127.0.0.1",
        0,
        Emulator(org),
        threaded=True,
        request_handler=_QuietHandler,
        ssl_context=context,
    )
    url = f"https://127.0.0.1:{server.server_port}"
    org.base_url = url
    ca_path = folder / "emulator-ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    # A short poll: shutdown() waits up to one poll interval (0.5 s by default) per emulator.
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="sf-emulator", daemon=True
    )
    thread.start()
    return RunningEmulator(org, url, ca_path, server, thread)
