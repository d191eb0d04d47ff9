"""What no receiver answers with a 5xx (issue 11), one case per failure the fuzzer found, through
the whole app on SQLite and PostgreSQL; and the checks of ``webhooks/limits.py`` themselves."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from flask import Flask, request
from sqlalchemy import String, func, select
from werkzeug.test import TestResponse

from tasuki.recordings.zoom import signature, signature_problem
from tasuki.store.db import Store
from tasuki.store.models import Delivery, Record
from tests.notices import taking_client
from tests.webhooks import senders
from webhooks.limits import (
    MAX_DELIVERY_ID,
    MAX_JSON_DEPTH,
    MAX_RECORD_ID,
    Refused,
    id_problem,
    load_json,
    same_secret,
    timestamp,
)

DEEP = b"[" * 10_000 + b"]" * 10_000
JUST_TOO_DEEP = b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1)


def _post(app: Flask, path: str, body: bytes, headers: dict[str, str]) -> TestResponse:
    return taking_client(app).post(path, data=body, headers=headers)


def _error(response: TestResponse) -> str:
    answer = response.get_json()
    assert isinstance(answer, dict)
    return str(answer["error"])


def _deliveries(store: Store) -> int:
    with store.session() as s:
        return s.scalar(select(func.count()).select_from(Delivery)) or 0


def _signed(route: str, body: bytes) -> tuple[str, dict[str, str]]:
    """Path and correct authentication of ``body`` for each JSON receiver."""
    return {
        "local": ("/webhooks/local", senders.local(body)),
        "hubspot": ("/webhooks/hubspot", senders.hubspot_v3(body)),
        "salesforce events": ("/webhooks/salesforce/events", senders.salesforce_events(body)),
        "zoom": ("/webhooks/zoom", senders.zoom(body)),
        "miitel": ("/webhooks/miitel", senders.miitel()),
    }[route]


JSON_ROUTES = ["local", "hubspot", "salesforce events", "zoom", "miitel"]


# -- the checks ---------------------------------------------------------------------------------


def test_the_limits_are_the_stores_columns() -> None:
    for column, limit in [
        (Delivery.__table__.c.delivery_id, MAX_DELIVERY_ID),
        (Record.__table__.c.record_id, MAX_RECORD_ID),
    ]:
        assert isinstance(column.type, String) and column.type.length == limit


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("x" * 200, None),
        ("商談:é/+=", None),
        ("", "non-empty string of at most 200"),
        ("x" * 201, "non-empty string of at most 200"),
        (7, "non-empty string of at most 200"),
        (None, "non-empty string of at most 200"),
        ("a\x00b", "control character"),
        ("a\nb", "control character"),
        ("a\x85b", "control character"),
        ("a\ud800b", "lone surrogate"),
    ],
)
def test_an_id_is_a_short_string_without_control_characters(value: Any, complaint: str) -> None:
    problem = id_problem(value, "the id", 200)
    assert (problem is None) if complaint is None else (complaint in str(problem))


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (DEEP, "not JSON"),  # past the parser's own recursion limit
        (JUST_TOO_DEEP, f"deeper than {MAX_JSON_DEPTH}"),
        (b'{"a": ' * 900 + b"1" + b"}" * 900, f"deeper than {MAX_JSON_DEPTH}"),
        (b'["\\ud800"]', "lone UTF-16 surrogate"),
        (b'{"\\udfff": 1}', "lone UTF-16 surrogate"),
        (b"[NaN]", "NaN"),
        (b'{"a": -Infinity}', "-Infinity"),
        (b"[1e400]", "beyond a double"),
        (b"9" * 5000, "not JSON"),  # more digits than int() converts
        (b"\xff\xfe\x00", "not JSON"),
        (b"", "not JSON"),
    ],
)
def test_load_json_refuses_what_no_store_takes(body: bytes, complaint: str) -> None:
    with pytest.raises(Refused, match=complaint):
        load_json(body)


def test_load_json_takes_json_at_the_depth_limit_and_nul_escapes() -> None:
    at_limit = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    assert load_json(at_limit) is not None
    assert load_json(b'{"a": "\\u0000", "b": [1.5, 1e300]}') == {"a": "\x00", "b": [1.5, 1e300]}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1790000000", 1790000000),
        ("1790000000000", 1790000000000),
        ("²³", None),
        ("١٧٩٠٠٠٠٠٠٠", None),
        ("9" * 5000, None),
        (" 1790000000", None),
        ("1_790", None),
        ("-1", None),
        ("", None),
        (None, None),
    ],
)
def test_a_timestamp_is_ascii_digits_only(text: str | None, value: int | None) -> None:
    assert timestamp(text) == value


@pytest.mark.parametrize("given", ["é" * 44, "\xff", "secret\x00", "", None])
def test_same_secret_takes_any_header_value(given: str | None) -> None:
    assert same_secret(given, "secret") is False
    assert same_secret("secret", "secret") is True


@pytest.mark.parametrize(
    ("stamp", "given", "problem"),
    [
        ("1790000000", "v0=" + "é" * 64, "bad signature"),
        ("١٧٩٠٠٠٠٠٠٠", "v0=00", "bad x-zm-request-timestamp"),
        ("9" * 5000, "v0=00", "bad x-zm-request-timestamp"),
        (" 1790000000", "v0=00", "bad x-zm-request-timestamp"),
    ],
)
def test_zoom_signature_problems_for_odd_headers(stamp: str, given: str, problem: str) -> None:
    assert signature_problem("s", stamp, given, b"{}", 1790000000.0) == problem
    good = signature("s", "1790000000", b"{}")
    assert signature_problem("s", "1790000000", good, b"{}", 1790000000.0) is None


# -- through the app ----------------------------------------------------------------------------


def _non_ascii_signatures() -> dict[str, tuple[str, dict[str, str]]]:
    """Per receiver, a current request whose signature (or token) is latin-1 text."""
    now = int(time.time())
    return {
        "local": (
            "/webhooks/local",
            {"X-Tasuki-Timestamp": str(now), "X-Tasuki-Signature": "é" * 64},
        ),
        "hubspot v3": (
            "/webhooks/hubspot",
            {"X-HubSpot-Signature-v3": "é" * 44, "X-HubSpot-Request-Timestamp": f"{now}000"},
        ),
        "hubspot v1": ("/webhooks/hubspot", {"X-HubSpot-Signature": "é" * 64}),
        "salesforce events": (
            "/webhooks/salesforce/events",
            {"X-Tasuki-Signature": "sha256=" + "é" * 64},
        ),
        "zoom": (
            "/webhooks/zoom",
            {"x-zm-request-timestamp": str(now), "x-zm-signature": "v0=" + "é" * 64},
        ),
        "miitel": ("/webhooks/miitel", {"Authorization": "Bearer é"}),
    }


def test_a_non_ascii_signature_header_is_401(sqlite_app: Flask) -> None:
    for receiver, (path, headers) in _non_ascii_signatures().items():
        response = _post(sqlite_app, path, b"[]", headers)
        assert (response.status_code, response.is_json) == (401, True), receiver


def test_a_hubspot_timestamp_that_is_not_ascii_digits_is_401(sqlite_app: Flask) -> None:
    for stamp in ["²³", "9" * 5000, "١٧٩٠", "1_0", " 1"]:
        headers = senders.hubspot_v3(b"[]", stamp=stamp)
        response = _post(sqlite_app, "/webhooks/hubspot", b"[]", headers)
        assert response.status_code == 401, stamp
        assert _error(response) == "missing or malformed X-HubSpot-Request-Timestamp"


@pytest.mark.parametrize("route", JSON_ROUTES)
def test_a_signed_body_no_store_takes_is_400(sqlite_app: Flask, route: str) -> None:
    for body in [DEEP, JUST_TOO_DEEP, b'{"a": [NaN]}', b"[1e999]", b'["\\ud800"]']:
        path, headers = _signed(route, body)
        response = _post(sqlite_app, path, body, headers)
        assert response.status_code == 400 and "error" in response.get_json(), body[:20]


def test_a_zoom_payload_that_is_not_an_object_is_400(sqlite_app: Flask) -> None:
    for event in ["endpoint.url_validation", "recording.completed"]:
        for payload in [["plainToken"], "plainToken", 7, True]:
            body = json.dumps({"event": event, "payload": payload}).encode()
            response = _post(sqlite_app, "/webhooks/zoom", body, senders.zoom(body))
            assert response.status_code == 400, (event, payload)
            assert _error(response) == "payload is not a JSON object"


def test_a_zoom_plain_token_that_cannot_be_answered_is_400(sqlite_app: Flask) -> None:
    for token in ["x" * 201, "a\x00b", "", None, ["t"]]:
        body = json.dumps({"event": "endpoint.url_validation", "payload": {"plainToken": token}})
        response = _post(sqlite_app, "/webhooks/zoom", body.encode(), senders.zoom(body.encode()))
        assert response.status_code == 400 and "plainToken" in _error(response), token


BAD_IDS = ["x" * (MAX_DELIVERY_ID + 50), "id\x00", "id\x1b[0m"]


def _bodies(bad: str) -> dict[str, tuple[str, bytes]]:
    """Per receiver, a body whose delivery id holds ``bad``."""
    local = {"notices": [{"id": bad, "object": "Lead", "record_ids": ["00Q1"]}]}
    hubspot = [{"eventId": 1, "subscriptionType": "contact.creation", "objectId": 1}]
    hubspot[0]["propertyName"] = bad
    header = {"entityName": "Lead", "recordIds": ["00Q000000000001AAA"], "transactionKey": bad}
    zoom = {"event": "recording.completed", "payload": {"object": {"uuid": bad}}}
    miitel = {"event": "call.end", "call": {"id": bad}}
    return {
        "local": ("/webhooks/local", json.dumps(local).encode()),
        "hubspot": ("/webhooks/hubspot", json.dumps(hubspot).encode()),
        "salesforce events": (
            "/webhooks/salesforce/events",
            json.dumps({"ChangeEventHeader": header}).encode(),
        ),
        "zoom": ("/webhooks/zoom", json.dumps(zoom).encode()),
        "miitel": ("/webhooks/miitel", json.dumps(miitel).encode()),
    }


@pytest.mark.parametrize("route", JSON_ROUTES)
def test_a_delivery_id_the_store_cannot_take_is_400_before_the_store_sees_it(
    full_app: Flask, store: Store, route: str
) -> None:
    for bad in BAD_IDS:
        path, body = _bodies(bad)[route]
        response = _post(full_app, path, body, _signed(route, body)[1])
        assert response.status_code == 400 and "id" in _error(response), bad[:20]
    assert _deliveries(store) == 0


def test_an_unauthenticated_outbound_message_with_such_an_id_is_400(
    full_app: Flask, store: Store
) -> None:
    for bad in BAD_IDS:
        # XML cannot hold NUL or ESC: those the parser refuses; the long id the receiver does.
        body = senders.outbound_message([(bad, "00Q000000000001AAA")])
        response = _post(full_app, "/webhooks/salesforce", body, {"Content-Type": "text/xml"})
        assert response.status_code == 400 and response.is_json, bad[:20]
    assert _deliveries(store) == 0


@pytest.mark.parametrize("bad", ["x" * (MAX_RECORD_ID + 1), "00\x00", "\ud800"])
def test_a_record_id_the_store_cannot_take_is_400(full_app: Flask, store: Store, bad: str) -> None:
    local = json.dumps({"notices": [{"id": "n1", "object": "Lead", "record_ids": [bad]}]})
    hubspot = json.dumps(
        [
            {
                "eventId": 1,
                "subscriptionType": "contact.merge",
                "objectId": 1,
                "mergedObjectIds": [bad],
            }
        ]
    )
    for route, body in [("local", local.encode()), ("hubspot", hubspot.encode())]:
        path, headers = _signed(route, body)
        response = _post(full_app, path, body, headers)
        assert response.status_code == 400, response.get_data()
    assert _deliveries(store) == 0


def test_ids_of_the_longest_storable_length_are_taken(full_app: Flask, store: Store) -> None:
    notice = {"id": "d" * MAX_DELIVERY_ID, "object": "Lead", "record_ids": ["r" * MAX_RECORD_ID]}
    body = json.dumps({"notices": [notice]}).encode()
    response = _post(full_app, "/webhooks/local", body, senders.local(body))
    assert response.get_json() == {"accepted": 1, "duplicates": 0, "ignored": 0}
    assert _deliveries(store) == 1


def test_hubspot_fields_of_the_wrong_type_count_as_absent(sqlite_app: Flask) -> None:
    odd_fields: list[dict[str, Any]] = [
        {"mergedObjectIds": 7},
        {"mergedObjectIds": "abc"},
        {"changeSource": ["INTEGRATION"]},
        {"propertyName": {"a": 1}},
        {"objectId": [1, 2]},
        {"objectId": True},
    ]
    for odd in odd_fields:
        event = {"eventId": 1, "subscriptionType": "contact.merge", "objectId": 5, **odd}
        body = json.dumps([event]).encode()
        response = _post(sqlite_app, "/webhooks/hubspot", body, senders.hubspot_v3(body))
        assert response.status_code == 200, odd


def test_an_outbound_message_in_an_encoding_expat_cannot_read_is_400(sqlite_app: Flask) -> None:
    for encoding in ["x-unknown", "shift_jis"]:
        body = f'<?xml version="1.0" encoding="{encoding}"?><a/>'.encode()
        response = _post(sqlite_app, "/webhooks/salesforce", body, {"Content-Type": "text/xml"})
        assert response.status_code == 400 and "not acceptable XML" in _error(response)


def test_a_body_over_the_limit_is_413_as_json_on_every_receiver(sqlite_app: Flask) -> None:
    # MiiTel's token is checked before the body is read; every other receiver reads it first.
    auth = senders.miitel()
    for rule in sqlite_app.url_map.iter_rules():
        if "POST" in (rule.methods or ()) and rule.rule.startswith("/webhooks/"):
            response = _post(sqlite_app, rule.rule, b"[" + b" " * (1024 * 1024) + b"]", auth)
            assert response.status_code == 413 and "error" in response.get_json(), rule.rule


def test_what_only_a_request_can_cause_is_a_json_400_even_where_a_receiver_misses_it(
    sqlite_app: Flask,
) -> None:
    # Views that read the body carelessly, as a receiver might.
    sqlite_app.add_url_rule(
        "/careless/json", "careless_json", lambda: json.loads(request.get_data()), methods=["POST"]
    )
    sqlite_app.add_url_rule(
        "/careless/text", "careless_text", lambda: request.get_data().decode(), methods=["POST"]
    )
    client = sqlite_app.test_client()
    deep = client.post("/careless/json", data=DEEP)
    assert deep.status_code == 400
    assert deep.get_json() == {"error": "the request could not be read (RecursionError)"}
    undecodable = client.post("/careless/text", data=b"\xff\xfe")
    assert undecodable.status_code == 400
    assert undecodable.get_json() == {"error": "the request could not be read (UnicodeDecodeError)"}
