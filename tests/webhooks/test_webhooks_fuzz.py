"""Every route of the webhook app, fuzzed with hypothesis on SQLite and PostgreSQL: nothing a
request carries is answered 5xx, every error is JSON, and a well-formed signed request is 200.

Two kinds of request: unauthenticated garbage (any method, path, headers and body), and bodies
each provider would sign, signed correctly, so that the parsing behind the signature check sees
hostile input: nesting 10,000 deep, non-object payloads, ids too long or holding NUL, control
characters or lone surrogates, odd timestamps and non-ASCII signature headers.
"""

from __future__ import annotations

import json
import string
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import TestResponse

from tests.webhooks import senders
from webhooks.local import sign

EXAMPLES = 150
"""Examples per test (each test runs on SQLite and on PostgreSQL)."""
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # one app per test serves every example
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)

ROUTES = {
    ("/webhooks/local", "POST"),
    ("/webhooks/hubspot", "POST"),
    ("/webhooks/salesforce", "POST"),
    ("/webhooks/salesforce/events", "POST"),
    ("/webhooks/zoom", "POST"),
    ("/webhooks/miitel", "POST"),
    ("/healthz", "GET"),
    ("/metrics", "GET"),
    ("/static/<path:filename>", "GET"),
}
"""What the app serves (``OPTIONS`` and ``HEAD`` aside): a new route must be fuzzed here too."""
CONSOLE_ROUTES = {
    ("/", "GET"),
    ("/console/", "GET"),
    ("/console/boundaries", "GET"),
    ("/console/handoffs", "GET"),
    ("/console/handoffs/<int:handoff_id>", "GET"),
    ("/console/people", "GET"),
    ("/console/explain", "GET"),
    ("/console/login", "GET"),
    ("/console/login", "POST"),
    ("/console/logout", "POST"),
    ("/console/login/oidc", "GET"),
    ("/console/auth/callback", "GET"),
    ("/console/login/link/<token>", "GET"),
    ("/console/lang/<code>", "GET"),
    ("/console/ops/compute-kpis", "POST"),
}
"""The Sales Ops console's pages (:mod:`tasuki.console`): behind a session, answered in HTML."""


@dataclass(frozen=True)
class Call:
    """One request; ``ok`` when it is well formed and must be answered 200."""

    path: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    ok: bool = False
    method: str = "POST"

    def __repr__(self) -> str:
        body = self.body if len(self.body) <= 200 else self.body[:200] + b"..."
        return f"Call({self.method} {self.path}, {body!r}, {self.headers!r}, ok={self.ok})"


def _deep(depth: int, opener: bytes = b"[", closer: bytes = b"]") -> bytes:
    return opener * depth + closer * depth


# -- text and JSON ------------------------------------------------------------------------------

SAFE_ID = st.text(string.ascii_letters + string.digits + "-_.:", min_size=1, max_size=40)
SPECIAL_TEXT = [
    "",
    "\x00",
    "id\x00",
    "\ud800",
    "a\udfffb",
    "\x1b[31m",
    "\x7f",
    "\x85",
    "\u202eevil",
    "²³",
    "١٢٣",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "x" * 64,
    "x" * 65,
    "x" * 200,
    "x" * 201,
    "é" * 300,
    "9" * 5000,
]
HOSTILE_TEXT = st.one_of(
    st.text(max_size=12),
    st.text(st.characters(exclude_categories=()), max_size=12),  # lone surrogates too
    st.sampled_from(SPECIAL_TEXT),
    st.builds(str.__add__, SAFE_ID, st.sampled_from(SPECIAL_TEXT)),
)
JSON_SCALAR = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.just(10**300), HOSTILE_TEXT
)
JSON_ANY = st.recursive(
    JSON_SCALAR,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(HOSTILE_TEXT, inner, max_size=3),
    max_leaves=8,
)
DEEP = "__deep__"
"""A string a structure may hold where :data:`DEEP_VALUES` are spliced into its JSON."""
DEEP_VALUES = [
    _deep(10_000),
    b'{"a":' * 10_000 + b"0" + b"}" * 10_000,
    _deep(65),  # one past MAX_JSON_DEPTH
    _deep(900),  # within the parser's recursion limit, far past ours
]
RAW_BODIES = [
    b"",
    b"null",
    b"NaN",
    b'"\\ud800"',
    b"9" * 5000,
    b"\xff\xfe\x00",
    b"\xef\xbb\xbf[]",
    "[]".encode("utf-16"),
    *DEEP_VALUES,
]


@st.composite
def json_body(draw: st.DrawFn, shape: st.SearchStrategy[Any]) -> bytes:
    """``shape`` as JSON (lone surrogates escaped, NaN allowed), a deep nest spliced in where
    it holds :data:`DEEP`; or a raw body that is hardly JSON."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from(RAW_BODIES))
    text = json.dumps(draw(shape)).encode()
    return text.replace(f'"{DEEP}"'.encode(), draw(st.sampled_from(DEEP_VALUES)))


# -- odd headers --------------------------------------------------------------------------------

HEADER_TEXT = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=80
)
"""What can arrive in a header: WSGI hands the app latin-1 text."""
ODD_SIGNATURE = st.one_of(
    HEADER_TEXT,
    st.sampled_from(["é" * 44, "sha256=" + "ü" * 64, "v0=" + "\xff" * 64, "Bearer ñ", " ", "=="]),
)
ODD_STAMP = st.one_of(
    HEADER_TEXT,
    st.sampled_from(["", "²³", "9" * 5000, "-1", "1e9", " 1790000000", "0x10", "1_0", "0"]),
    st.integers(-(10**20), 10**20).map(str),
)


AUTH = st.sampled_from(["signed", "signed", "signed", "signed", "odd stamp", "stale", "odd"])
"""How a hostile body is sent: mostly signed correctly (so the parsing behind the check sees
it), sometimes with an odd or stale timestamp signed as sent, sometimes with odd headers."""


@st.composite
def tampered(draw: st.DrawFn, headers: dict[str, str], names: list[str]) -> dict[str, str]:
    """``headers`` with some of ``names`` dropped or replaced by odd text."""
    out = dict(headers)
    for name in names:
        choice = draw(st.integers(0, 2))
        if choice == 1:
            out.pop(name, None)
        elif choice == 2:
            out[name] = draw(ODD_SIGNATURE)
    return out


@st.composite
def spoiled(draw: st.DrawFn, valid: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    """A valid object with some of its keys dropped or holding hostile values instead."""
    out = dict(draw(valid))
    for key in draw(st.lists(st.sampled_from(sorted(out)), max_size=3, unique=True)):
        if draw(st.booleans()):
            out[key] = draw(st.one_of(JSON_ANY, st.sampled_from(SPECIAL_TEXT), st.just(DEEP)))
        else:
            del out[key]
    return out


def hostile(valid: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[bytes]:
    """JSON bodies near ``valid``: lists of spoiled objects, a spoiled object, anything."""
    objects = st.lists(spoiled(valid) | valid, min_size=1, max_size=3)
    return json_body(st.one_of(objects, objects, objects, spoiled(valid), JSON_ANY))


# -- per route: well-formed and hostile requests ------------------------------------------------

LOCAL_NOTICE = st.fixed_dictionaries(
    {
        "id": SAFE_ID,
        "object": st.sampled_from(["Lead", "Opportunity", "Account"]),
        "record_ids": st.lists(SAFE_ID, min_size=1, max_size=3),
        "changed_by": st.none() | SAFE_ID,
    }
)


@st.composite
def local_calls(draw: st.DrawFn) -> Call:
    path = "/webhooks/local"
    if draw(st.booleans()):
        good = json.dumps({"notices": draw(st.lists(LOCAL_NOTICE, min_size=1, max_size=4))})
        return Call(path, good.encode(), senders.local(good.encode()), ok=True)
    notices = hostile(LOCAL_NOTICE).map(lambda b: b'{"notices": ' + b + b"}")
    body = draw(notices | hostile(LOCAL_NOTICE))
    how = draw(AUTH)
    if how == "odd stamp":
        stamp = draw(ODD_STAMP)  # signed as sent: only the timestamp's form is wrong
        signature = sign(senders.WEBHOOK_SECRET, body, stamp)
        return Call(path, body, {"X-Tasuki-Timestamp": stamp, "X-Tasuki-Signature": signature})
    if how == "stale":
        skew = draw(st.sampled_from([-301, 301, -(10**9)]))
        return Call(path, body, senders.local(body, time.time() + skew))
    headers = senders.local(body)
    if how == "odd":
        headers = draw(tampered(headers, ["X-Tasuki-Signature", "X-Tasuki-Timestamp"]))
    return Call(path, body, headers)


HUBSPOT_ID = st.integers(1, 10**12)
HUBSPOT_EVENT = st.fixed_dictionaries(
    {
        "eventId": HUBSPOT_ID,
        "subscriptionId": HUBSPOT_ID,
        "portalId": HUBSPOT_ID,
        "occurredAt": st.just(int(time.time() * 1000)),
        "attemptNumber": st.integers(0, 5),
        "subscriptionType": st.sampled_from(
            [
                "contact.propertyChange",
                "contact.creation",
                "company.deletion",
                "deal.propertyChange",
                "contact.merge",
                "contact.associationChange",
                "object.propertyChange",
                "ticket.creation",
            ]
        ),
        "objectId": HUBSPOT_ID,
        "changeSource": st.sampled_from(["CRM_UI", "INTEGRATION", "API", "IMPORT"]),
    },
    optional={
        "propertyName": SAFE_ID,
        "propertyValue": st.text(max_size=20),
        "sourceId": SAFE_ID,
        "objectTypeId": st.sampled_from(["0-1", "0-2", "0-3", "2-99"]),
        "mergedObjectIds": st.lists(HUBSPOT_ID, max_size=3),
        "primaryObjectId": HUBSPOT_ID,
        "newObjectId": HUBSPOT_ID,
        "associationType": st.sampled_from(["CONTACT_TO_COMPANY", "DEAL_TO_CONTACT"]),
        "fromObjectId": HUBSPOT_ID,
        "toObjectId": HUBSPOT_ID,
    },
)


@st.composite
def hubspot_calls(draw: st.DrawFn) -> Call:
    path = "/webhooks/hubspot" + draw(st.sampled_from(["", "?portal=1", "?a=b&c=:d"]))
    if draw(st.booleans()):
        body = json.dumps(draw(st.lists(HUBSPOT_EVENT, min_size=1, max_size=4))).encode()
        return Call(path, body, senders.hubspot_v3(body, path), ok=True)
    body = draw(hostile(HUBSPOT_EVENT))
    how = draw(AUTH)
    if how == "odd stamp":
        return Call(path, body, senders.hubspot_v3(body, path, draw(ODD_STAMP)))
    if how == "stale":
        stale = int(time.time() * 1000) + draw(st.sampled_from([-300_001, 300_001]))
        return Call(path, body, senders.hubspot_v3(body, path, str(stale)))
    headers = draw(st.sampled_from([senders.hubspot_v3(body, path), senders.hubspot_v1(body)]))
    if how == "odd":
        names = ["X-HubSpot-Signature-v3", "X-HubSpot-Request-Timestamp", "X-HubSpot-Signature"]
        headers = draw(tampered({**headers, "X-HubSpot-Signature-Version": "v2"}, names))
    return Call(path, body, headers)


SF_ID = st.builds(
    str.__add__,
    st.sampled_from(["00Q", "006", "001"]),
    st.text(string.ascii_letters + string.digits, min_size=15, max_size=15),
)
CHANGE_HEADER = st.fixed_dictionaries(
    {
        "entityName": st.sampled_from(["Lead", "Opportunity", "Account", "Case"]),
        "recordIds": st.lists(SF_ID, min_size=1, max_size=3),
        "changeType": st.sampled_from(["CREATE", "UPDATE", "DELETE"]),
        "changedFields": st.lists(st.sampled_from(["Status", "OwnerId"]), max_size=2),
        "commitUser": SF_ID,
        "transactionKey": SAFE_ID,
        "sequenceNumber": st.integers(0, 10**6),
    }
)


@st.composite
def salesforce_event_calls(draw: st.DrawFn) -> Call:
    path = "/webhooks/salesforce/events"
    if draw(st.booleans()):
        good = [{"ChangeEventHeader": h} for h in draw(st.lists(CHANGE_HEADER, min_size=1))]
        wrapped = draw(st.sampled_from([good, {"events": good}, good[0]]))
        body = json.dumps(wrapped).encode()
        return Call(path, body, senders.salesforce_events(body), ok=True)
    spoilt = hostile(CHANGE_HEADER).map(lambda b: b'{"ChangeEventHeader": ' + b + b"}")
    events = st.lists(spoilt, max_size=3).map(lambda bs: b"[" + b", ".join(bs) + b"]")
    body = draw(st.one_of(spoilt, events, events.map(lambda b: b'{"events": ' + b + b"}")))
    headers = senders.salesforce_events(body)
    if draw(AUTH) != "signed":
        headers = draw(tampered(headers, ["X-Tasuki-Signature"]))
    return Call(path, body, headers)


XML_BODIES = [
    b'<?xml version="1.0" encoding="x-unknown"?><a/>',
    b'<?xml version="1.0" encoding="shift_jis"?><a/>',
    b'<?xml version="1.0" encoding="utf-16"?><a/>',
    _deep(20_000, b"<a>", b"</a>"),
    b"<a>&#0;</a>",
    b'<!DOCTYPE a [<!ENTITY e "e">]><a>&e;</a>',
    b"<notifications xmlns='http://soap.sforce.com/2005/09/outbound'>"
    + _deep(5_000, b"<Notification>", b"</Notification>")
    + b"</notifications>",
]


@st.composite
def outbound_message_calls(draw: st.DrawFn) -> Call:
    """Outbound Messages are not signed: only the org id says whose they are."""
    path = "/webhooks/salesforce"
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}
    if draw(st.booleans()):
        items = draw(st.lists(st.tuples(SAFE_ID, SF_ID), min_size=1, max_size=4))
        sobject = draw(st.sampled_from(["Lead", "Opportunity", "Case"]))
        return Call(path, senders.outbound_message(items, sobject=sobject), headers, ok=True)
    if draw(st.integers(0, 3)) == 0:
        return Call(path, draw(st.sampled_from(XML_BODIES) | st.binary(max_size=200)), headers)
    text = st.one_of(SAFE_ID, HOSTILE_TEXT)
    items = draw(st.lists(st.tuples(text, SF_ID | text), max_size=4))
    org = draw(st.sampled_from([senders.ORG_ID, senders.ORG_ID[:15]]) | text)
    return Call(path, senders.outbound_message(items, org_id=org, sobject=draw(text)), headers)


ZOOM_OBJECT = st.fixed_dictionaries(
    {"uuid": SAFE_ID, "topic": st.text(max_size=9), "participant": st.just({"email": "a@b.jp"})}
)
ZOOM_EVENT_NAMES = st.sampled_from(
    [
        "recording.completed",
        "meeting.participant_joined",
        "meeting.started",
        "endpoint.url_validation",
    ]
)


def zoom_event(payload: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"event": ZOOM_EVENT_NAMES, "event_ts": st.integers(0, 10**13), "payload": payload}
    )


ZOOM_EVENT = zoom_event(st.fixed_dictionaries({"plainToken": SAFE_ID, "object": ZOOM_OBJECT}))
ZOOM_SPOILT = zoom_event(
    spoiled(st.fixed_dictionaries({"plainToken": SAFE_ID, "object": spoiled(ZOOM_OBJECT)}))
)
"""Events whose payload (and its object) may be spoilt too: a list, a string, NUL in the uuid."""


@st.composite
def zoom_calls(draw: st.DrawFn) -> Call:
    path = "/webhooks/zoom"
    if draw(st.booleans()):
        body = json.dumps(draw(ZOOM_EVENT)).encode()
        return Call(path, body, senders.zoom(body), ok=True)
    body = draw(hostile(ZOOM_SPOILT))
    how = draw(AUTH)
    if how == "odd stamp":
        return Call(path, body, senders.zoom(body, draw(ODD_STAMP)))
    if how == "stale":
        stale = int(time.time()) + draw(st.sampled_from([-301, 301]))
        return Call(path, body, senders.zoom(body, str(stale)))
    headers = senders.zoom(body)
    if how == "odd":
        headers = draw(tampered(headers, ["x-zm-signature", "x-zm-request-timestamp"]))
    return Call(path, body, headers)


MIITEL_EVENT = st.one_of(
    st.fixed_dictionaries({"challenge": SAFE_ID}),
    st.fixed_dictionaries(
        {
            "event": st.sampled_from(["call.end", "call.analyzed"]),
            "call": st.fixed_dictionaries(
                {"id": SAFE_ID, "details": st.just([{"from_number": "0312345678"}])}
            ),
        }
    ),
)
MIITEL_SHAPE = st.fixed_dictionaries(
    {
        "challenge": SAFE_ID,
        "event": SAFE_ID,
        "call": st.fixed_dictionaries({"id": SAFE_ID}),
        "call_id": SAFE_ID,
        "id": SAFE_ID,
    }
)


@st.composite
def miitel_calls(draw: st.DrawFn) -> Call:
    if draw(st.booleans()):
        body = json.dumps(draw(MIITEL_EVENT)).encode()
        return Call("/webhooks/miitel", body, senders.miitel(), ok=True)
    body = draw(hostile(MIITEL_SHAPE))
    headers = senders.miitel()
    if draw(AUTH) != "signed":
        headers = draw(tampered(headers, ["Authorization"]))
    return Call("/webhooks/miitel", body, headers)


@st.composite
def other_calls(draw: st.DrawFn) -> Call:
    """``/healthz`` (200 while the store and Redis answer) and the static route."""
    if draw(st.booleans()):
        return Call("/healthz", b"", ok=True, method=draw(st.sampled_from(["GET", "HEAD"])))
    name = draw(st.text(string.ascii_letters + string.digits + "./%~-_", max_size=30))
    return Call("/static/" + name, b"", method="GET")


SIGNED = {
    "local": local_calls(),
    "hubspot": hubspot_calls(),
    "salesforce outbound message": outbound_message_calls(),
    "salesforce change events": salesforce_event_calls(),
    "zoom": zoom_calls(),
    "miitel": miitel_calls(),
    "healthz and static": other_calls(),
}


# -- garbage ------------------------------------------------------------------------------------

PATHS = sorted({rule.split("<")[0] for rule, _ in ROUTES | CONSOLE_ROUTES})
HEADER_NAMES = [
    "Content-Type",
    "Content-Encoding",
    "Authorization",
    "X-Tasuki-Signature",
    "X-Tasuki-Timestamp",
    "X-HubSpot-Signature",
    "X-HubSpot-Signature-v3",
    "X-HubSpot-Signature-Version",
    "X-HubSpot-Request-Timestamp",
    "x-zm-signature",
    "x-zm-request-timestamp",
    "SOAPAction",
]


@st.composite
def garbage_calls(draw: st.DrawFn) -> Call:
    tail = draw(st.text(string.ascii_letters + string.digits + "/%._-~!$&'()*+,;=:@?", max_size=20))
    path = draw(st.sampled_from(PATHS)) + draw(st.sampled_from(["", tail]))
    method = draw(st.sampled_from(["POST", "GET", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]))
    headers = draw(st.dictionaries(st.sampled_from(HEADER_NAMES), ODD_SIGNATURE, max_size=5))
    body = draw(st.binary(max_size=300) | st.sampled_from(RAW_BODIES + XML_BODIES))
    return Call(path, body, headers, method=method)


# -- the tests ----------------------------------------------------------------------------------


def _answered(app: Flask, call: Call) -> TestResponse:
    """Send ``call`` and check what holds for every answer: below 500, errors as JSON."""
    response = app.test_client().open(
        call.path, method=call.method, data=call.body, headers=call.headers
    )
    shown = (call, response.status_code, response.get_data()[:300])
    assert response.status_code < 500, shown
    console = call.path == "/" or call.path.startswith("/console")
    if response.status_code >= 400 and call.method != "HEAD" and not console:
        assert response.is_json and "error" in response.get_json(), shown
    if call.ok:
        assert response.status_code == 200, shown
    return response


def test_every_route_of_the_app_is_fuzzed(full_app: Flask) -> None:
    served = {
        (rule.rule, method)
        for rule in full_app.url_map.iter_rules()
        for method in rule.methods or ()
        if method not in ("OPTIONS", "HEAD")
    }
    assert served == ROUTES | CONSOLE_ROUTES


@FUZZ
@given(call=garbage_calls())
def test_unauthenticated_garbage_is_never_a_5xx(full_app: Flask, call: Call) -> None:
    _answered(full_app, call)


@pytest.mark.parametrize("route", sorted(SIGNED))
@FUZZ
@given(data=st.data())
def test_signed_hostile_bodies_are_never_a_5xx_and_well_formed_ones_are_taken(
    full_app: Flask, route: str, data: st.DataObject
) -> None:
    _answered(full_app, data.draw(SIGNED[route], label=route))
