"""``POST /webhooks/hubspot``: signatures as HubSpot documents them, dedupe, bursts, failures."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from pydantic import SecretStr
from redis.backoff import NoBackoff
from redis.retry import Retry
from rq import Queue

from tasuki.queue import job_queue
from tasuki.settings import Settings
from tasuki.store.db import Store
from tasuki.store.models import LedgerEntry
from tests.notices import taking_client
from webhooks.hubspot import blueprint, signature_problem, signed_uri
from webhooks.intake import Intake

SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
PUBLIC = "https://tasuki.example.com/hooks"
NOW = 1_790_000_000.0
APP = "424242"


def sign_v3(method: str, uri: str, body: str, stamp: str, secret: str = SECRET) -> str:
    """HubSpot's v3 recipe, written out independently of the code under test."""
    mac = hmac.new(secret.encode(), f"{method}{uri}{body}{stamp}".encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def test_hubspots_documented_v1_and_v2_examples() -> None:
    body = (
        '[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,'
        '"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,'
        '"changeSource":"CRM","changeFlag":"NEW","appId":54321}]'
    )
    v1 = {
        "X-HubSpot-Signature": "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de",
        "X-HubSpot-Signature-Version": "v1",
    }
    assert signature_problem(SECRET, "POST", "https://x", "/", body, v1, 0) is None
    v2 = {
        "X-HubSpot-Signature": "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e",
        "X-HubSpot-Signature-Version": "v2",
    }
    assert (
        signature_problem(SECRET, "GET", "https://www.example.com", "/webhook_uri", "", v2, 0)
        is None
    )
    assert signature_problem(SECRET, "GET", "https://www.example.com", "/other", "", v2, 0)


def test_the_v3_uri_decodes_exactly_the_characters_hubspot_lists() -> None:
    raw = "/webhooks/hubspot?a=%3A%2F%3F%40%21%24%27%28%29%2A%2C%3B&b=%20%26%3D%2B%23%25"
    assert signed_uri(PUBLIC, raw) == (
        "https://tasuki.example.com/hooks/webhooks/hubspot?a=:/?@!$'()*,;&b=%20%26%3D%2B%23%25"
    )
    assert signed_uri(PUBLIC, "/x?q=%3a") == f"{PUBLIC}/x?q=:"  # lower-case hex too


@pytest.fixture
def hook_settings(settings: Settings) -> Settings:
    hubspot = replace(settings.hubspot, client_secret=SecretStr(SECRET))
    return replace(settings, public_url=PUBLIC, hubspot=hubspot)


@pytest.fixture
def queue_conn(redis_url: str) -> Iterator[redis.Redis]:
    conn = redis.Redis.from_url(redis_url)
    yield conn
    conn.close()


def _client(settings: Settings, store: Store, conn: redis.Redis) -> FlaskClient:
    app = Flask(__name__)
    intake = Intake(store, job_queue(settings, conn))
    app.register_blueprint(
        blueprint(settings, store, conn, clock=lambda: NOW, app_id=APP, intake=intake)
    )
    return taking_client(app, intake)


@pytest.fixture
def client(hook_settings: Settings, sqlite_store: Store, queue_conn: redis.Redis) -> FlaskClient:
    return _client(hook_settings, sqlite_store, queue_conn)


@pytest.fixture
def queue(hook_settings: Settings, queue_conn: redis.Redis) -> Iterator[Queue]:
    q = Queue(hook_settings.config.queue_name, connection=queue_conn)
    yield q
    q.empty()  # type: ignore[no-untyped-call]


def event(n: int, object_id: int = 101, **extra: Any) -> dict[str, Any]:
    return {
        "eventId": n,
        "subscriptionId": 7,
        "portalId": 62515,
        "appId": int(APP),
        "occurredAt": int(NOW * 1000),
        "subscriptionType": "contact.propertyChange",
        "attemptNumber": 0,
        "objectId": object_id,
        "propertyName": "lifecyclestage",
        "propertyValue": "salesqualifiedlead",
        "changeSource": "CRM_UI",
        "sourceId": "userId:7",
        **extra,
    }


def post(
    client: FlaskClient,
    events: Any,
    *,
    path: str = "/webhooks/hubspot",
    stamp: int | None = None,
    signature: str | None = None,
) -> tuple[int, Any]:
    body = events if isinstance(events, str) else json.dumps(events)
    ts = str(int(NOW * 1000) if stamp is None else stamp)
    sig = signature or sign_v3("POST", signed_uri(PUBLIC, path), body, ts)
    response = client.post(
        path,
        data=body,
        content_type="application/json",
        headers={"X-HubSpot-Signature-v3": sig, "X-HubSpot-Request-Timestamp": ts},
    )
    return response.status_code, response.get_json()


def test_a_signed_delivery_is_accepted_and_queued_as_one_sync_per_object(
    client: FlaskClient, queue: Queue
) -> None:
    status, answer = post(
        client,
        [event(1), event(2, 102), event(3, 900, subscriptionType="deal.creation")],
    )
    assert (status, answer) == (200, {"accepted": 3, "duplicates": 0, "ignored": 0})
    jobs = sorted((j.kwargs["object"], j.kwargs["ids"]) for j in queue.get_jobs())
    assert jobs == [("contacts", ["101", "102"]), ("deals", ["900"])]


def test_retries_and_repeated_deliveries_are_duplicates(client: FlaskClient, queue: Queue) -> None:
    assert post(client, [event(1), event(2, 102)])[1]["accepted"] == 2
    retry = [event(1, attemptNumber=1), event(2, 102, attemptNumber=3), event(3, 103)]
    assert post(client, retry)[1] == {"accepted": 1, "duplicates": 2, "ignored": 0}
    assert post(client, [event(4), event(4)])[1] == {"accepted": 1, "duplicates": 1, "ignored": 0}


def test_a_burst_for_one_record_becomes_one_sync(client: FlaskClient, queue: Queue) -> None:
    for n in range(10):
        status, _ = post(client, [event(n, propertyName=f"p{n}", propertyValue=str(n))])
        assert status == 200
    assert [(j.kwargs["object"], j.kwargs["ids"]) for j in queue.get_jobs()] == [
        ("contacts", ["101"])
    ]


@pytest.mark.parametrize(
    ("path", "signed_as"),
    [
        (
            "/webhooks/hubspot?portal=62515&tag=%3Anew%2Cvip",
            "/webhooks/hubspot?portal=62515&tag=:new,vip",
        ),
        ("/webhooks/hubspot?q=a%20b%26c", "/webhooks/hubspot?q=a%20b%26c"),
    ],
)
def test_uris_with_encoded_characters_are_checked_as_hubspot_signed_them(
    client: FlaskClient, queue: Queue, path: str, signed_as: str
) -> None:
    body = json.dumps([event(1)])
    stamp = str(int(NOW * 1000))
    good = sign_v3("POST", PUBLIC + signed_as, body, stamp)
    assert post(client, body, path=path, signature=good)[0] == 200
    undecoded = sign_v3("POST", PUBLIC + path.replace("%20", " "), body, stamp)
    if undecoded != good:
        assert post(client, body, path=path, signature=undecoded)[0] == 401


@pytest.mark.parametrize("age_ms", [5 * 60 * 1000 + 1, -(5 * 60 * 1000 + 1)])
def test_stale_timestamps_are_refused(client: FlaskClient, queue: Queue, age_ms: int) -> None:
    status, answer = post(client, [event(1)], stamp=int(NOW * 1000) - age_ms)
    assert status == 401 and "5 minutes" in answer["error"]
    assert queue.count == 0


def test_forged_missing_and_local_address_signatures_are_refused(
    client: FlaskClient, queue: Queue
) -> None:
    body = json.dumps([event(1)])
    stamp = str(int(NOW * 1000))
    forged = sign_v3("POST", PUBLIC + "/webhooks/hubspot", body, stamp, secret="not-the-secret")
    assert post(client, body, signature=forged)[0] == 401
    local = sign_v3("POST", "http://localhost/webhooks/hubspot", body, stamp)
    assert post(client, body, signature=local)[0] == 401
    tampered = sign_v3("POST", PUBLIC + "/webhooks/hubspot", body, stamp)
    assert post(client, body.replace("101", "666"), signature=tampered)[0] == 401
    assert client.post("/webhooks/hubspot", data=body).status_code == 401
    assert queue.count == 0


@pytest.mark.parametrize("body", ['{"eventId": 1}', "[]", "not json", '[{"objectId": 1}]', "[1]"])
def test_a_body_that_is_not_an_array_of_events_is_a_400(
    client: FlaskClient, queue: Queue, body: str
) -> None:
    assert post(client, body)[0] == 400
    assert queue.count == 0


def test_our_own_changes_and_ledger_echoes_make_no_work(
    client: FlaskClient, queue: Queue, sqlite_store: Store
) -> None:
    with sqlite_store.session() as s:
        s.add(
            LedgerEntry(
                system="hubspot",
                object="contacts",
                record_id="105",
                field="tasuki_score",
                value="80",
            )
        )
    own = event(1, changeSource="INTEGRATION", sourceId=APP)
    echo = event(2, 105, propertyName="tasuki_score", propertyValue="80")
    person = event(3, 105, propertyName="tasuki_score", propertyValue="12")
    assert post(client, [own, echo])[1] == {"accepted": 0, "duplicates": 0, "ignored": 2}
    assert queue.count == 0
    assert post(client, [person])[1]["accepted"] == 1


def test_merge_and_association_events_sync_every_record_they_touch(
    client: FlaskClient, queue: Queue
) -> None:
    merge = {**event(1, 300), "subscriptionType": "contact.merge", "primaryObjectId": 300}
    merge.update(mergedObjectIds=[301, 302], newObjectId=300)
    assoc = {
        **{k: v for k, v in event(2).items() if k != "objectId"},
        "subscriptionType": "contact.associationChange",
        "associationType": "CONTACT_TO_COMPANY",
        "fromObjectId": 400,
        "toObjectId": 500,
    }
    legacy = {k: v for k, v in event(3, 600).items() if k != "subscriptionType"}
    legacy["eventType"] = "deal.propertyChange"
    assert post(client, [merge, assoc, legacy])[1]["accepted"] == 3
    jobs = sorted((j.kwargs["object"], j.kwargs["ids"]) for j in queue.get_jobs())
    assert jobs == [
        ("companies", ["500"]),
        ("contacts", ["300", "301", "302", "400"]),
        ("deals", ["600"]),
    ]


def test_queue_down_is_a_503_and_the_retry_is_taken(
    hook_settings: Settings, sqlite_store: Store, queue_conn: redis.Redis, queue: Queue
) -> None:
    down = redis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)
    )
    try:
        status, _ = post(_client(hook_settings, sqlite_store, down), [event(1)])
    finally:
        down.close()
    assert status == 503
    up = _client(hook_settings, sqlite_store, queue_conn)
    assert post(up, [event(1, attemptNumber=1)])[1]["accepted"] == 1


def test_the_real_clock_is_the_default(
    hook_settings: Settings, sqlite_store: Store, queue_conn: redis.Redis, queue: Queue
) -> None:
    app = Flask(__name__)
    app.register_blueprint(blueprint(hook_settings, sqlite_store, queue_conn))
    assert post(app.test_client(), [event(1)], stamp=int(time.time() * 1000))[0] == 200
