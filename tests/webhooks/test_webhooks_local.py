"""``POST /webhooks/local`` and ``GET /healthz`` through the Flask test client, on SQLite and
PostgreSQL (the ``store`` fixture) and a real Redis queue."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pydantic import SecretStr
from rq import Queue
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from tasuki.errors import ConfigError
from tasuki.queue import job_queue
from tasuki.settings import Settings
from tasuki.store.db import Store, open_store
from tasuki.store.models import Delivery
from tests.notices import taking_client
from webhooks import create_app, services
from webhooks import local as local_hook
from webhooks.intake import Intake
from webhooks.local import sign, signed_headers

SECRET = "test-webhook-secret"  # the conftest settings' TASUKI_WEBHOOK_SECRET
REDIS_DOWN = "redis://127.0.0.1:1/0"
STORE_DOWN = "postgresql+psycopg://postgres@127.0.0.1:1/none"


@pytest.fixture
def live(settings: Settings, redis_url: str) -> Settings:
    """The test settings pointing at the real Redis (own queue name per test)."""
    return dataclasses.replace(settings, redis_url=redis_url)


@pytest.fixture
def queue(live: Settings) -> Iterator[Queue]:
    q = job_queue(live)
    yield q
    q.empty()  # type: ignore[no-untyped-call]


@pytest.fixture
def app(live: Settings, store: Store, queue: Queue) -> Flask:
    return create_app(live, store=store, queue=queue)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return taking_client(app)


def _body(*notices: dict[str, Any]) -> bytes:
    return json.dumps({"notices": list(notices)}).encode()


def _notice(i: str, obj: str = "Lead", ids: list[str] | None = None) -> dict[str, Any]:
    return {"id": i, "object": obj, "record_ids": ids or [f"00Q{i}"], "changed_by": None}


def _post(client: FlaskClient, body: bytes, signature: str | None = "good") -> TestResponse:
    """POST ``body`` with a current timestamp and its signature, or ``signature`` instead."""
    headers = signed_headers(SECRET, body)
    if signature is None:
        del headers["X-Tasuki-Signature"]
    elif signature != "good":
        headers["X-Tasuki-Signature"] = signature
    return client.post("/webhooks/local", data=body, headers=headers)


def _deliveries(store: Store) -> int:
    with store.session() as s:
        return s.scalar(select(func.count()).select_from(Delivery)) or 0


def _jobs(queue: Queue) -> list[tuple[str, str, tuple[str, ...]]]:
    jobs = [queue.fetch_job(j) for j in queue.job_ids]
    return sorted((str(j.func_name), j.kwargs["object"], tuple(j.kwargs["ids"])) for j in jobs if j)


def test_a_signed_notice_is_enqueued_as_one_sync_job_per_object(
    client: FlaskClient, queue: Queue, store: Store
) -> None:
    resp = _post(client, _body(_notice("1"), _notice("2"), _notice("3", "Opportunity")))
    assert resp.status_code == 200
    assert resp.get_json() == {"accepted": 3, "duplicates": 0, "ignored": 0}
    assert _jobs(queue) == [
        ("worker.sync_records", "Lead", ("00Q1", "00Q2")),
        ("worker.sync_records", "Opportunity", ("00Q3",)),
    ]
    assert _deliveries(store) == 3


def test_the_signature_may_carry_a_sha256_prefix_and_upper_case(
    client: FlaskClient, queue: Queue
) -> None:
    body = _body(_notice("1"))
    stamp = str(int(time.time()))
    signature = "sha256=" + sign(SECRET, body, stamp).upper()
    headers = {"X-Tasuki-Timestamp": stamp, "X-Tasuki-Signature": signature}
    assert client.post("/webhooks/local", data=body, headers=headers).status_code == 200
    assert queue.count == 1


def test_the_same_notice_again_is_a_duplicate_and_nothing_new_is_enqueued(
    client: FlaskClient, queue: Queue, store: Store
) -> None:
    assert _post(client, _body(_notice("1"))).get_json()["accepted"] == 1
    queue.empty()  # type: ignore[no-untyped-call]  # as if a worker had taken the job
    again = _post(client, _body(_notice("1"), _notice("1")))
    assert again.get_json() == {"accepted": 0, "duplicates": 2, "ignored": 0}
    assert queue.count == 0 and _deliveries(store) == 1


def test_new_and_seen_notices_in_one_request_queue_only_the_new(
    client: FlaskClient, queue: Queue
) -> None:
    _post(client, _body(_notice("1")))
    queue.empty()  # type: ignore[no-untyped-call]
    resp = _post(client, _body(_notice("1"), _notice("2"), _notice("2")))
    assert resp.get_json() == {"accepted": 1, "duplicates": 2, "ignored": 0}
    assert _jobs(queue) == [("worker.sync_records", "Lead", ("00Q2",))]


def test_a_burst_for_one_record_merges_into_one_waiting_job(
    client: FlaskClient, queue: Queue
) -> None:
    for i in range(10):
        resp = _post(client, _body(_notice(f"burst-{i}", ids=["00QSAME"])))
        assert resp.get_json()["accepted"] == 1
    many = _body(*(_notice(f"one-request-{i}", ids=["00QSAME"]) for i in range(20)))
    assert _post(client, many).get_json()["accepted"] == 20
    assert _jobs(queue) == [("worker.sync_records", "Lead", ("00QSAME",))]


def test_racing_deliveries_of_one_notice_are_accepted_once(
    app: Flask, queue: Queue, store: Store
) -> None:
    body = _body(_notice("race"))
    start = threading.Barrier(8)
    answers: list[dict[str, int]] = []

    def deliver() -> None:
        client = taking_client(app)
        start.wait()
        answers.append(_post(client, body).get_json())

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(a["accepted"] for a in answers) == [0] * 7 + [1]
    assert _deliveries(store) == 1 and queue.count == 1


@pytest.mark.parametrize(
    "signature",
    [None, "", "00" * 32, "sha256=", "sha256=deadbeef", "not hex", "é" * 64, "sig\x00nature"],
)
def test_a_bad_or_missing_signature_is_401_and_nothing_is_kept(
    client: FlaskClient, queue: Queue, store: Store, signature: str | None
) -> None:
    resp = _post(client, _body(_notice("1")), signature)
    assert resp.status_code == 401 and "X-Tasuki-Signature" in resp.get_json()["error"]
    assert queue.count == 0 and _deliveries(store) == 0


def test_a_body_signed_then_changed_is_401(client: FlaskClient, queue: Queue) -> None:
    body = _body(_notice("1"))
    tampered = body.replace(b"00Q1", b"00Q9")
    resp = client.post("/webhooks/local", data=tampered, headers=signed_headers(SECRET, body))
    assert resp.status_code == 401 and queue.count == 0


def test_a_body_signed_with_another_secret_is_401(client: FlaskClient, queue: Queue) -> None:
    body = _body(_notice("1"))
    resp = client.post("/webhooks/local", data=body, headers=signed_headers("another", body))
    assert resp.status_code == 401 and queue.count == 0


NOW = 1_790_000_000


@pytest.fixture
def at_now(live: Settings, store: Store, queue: Queue) -> FlaskClient:
    """The local receiver alone, its clock stopped at :data:`NOW`."""
    app = Flask(__name__)
    intake = Intake(store, queue)
    app.register_blueprint(local_hook.blueprint(intake, SecretStr(SECRET), clock=lambda: NOW))
    return taking_client(app, intake)


@pytest.mark.parametrize("skew", [-300, 0, 300])
def test_a_timestamp_within_five_minutes_either_way_is_accepted(
    at_now: FlaskClient, queue: Queue, skew: int
) -> None:
    body = _body(_notice(f"skew{skew}"))
    resp = at_now.post(
        "/webhooks/local", data=body, headers=signed_headers(SECRET, body, NOW + skew)
    )
    assert resp.status_code == 200 and queue.count == 1


@pytest.mark.parametrize("skew", [-301, 301, -7 * 86400])
def test_a_request_signed_more_than_five_minutes_away_is_401_and_nothing_is_kept(
    at_now: FlaskClient, queue: Queue, store: Store, skew: int
) -> None:
    body = _body(_notice("1"))
    resp = at_now.post(
        "/webhooks/local", data=body, headers=signed_headers(SECRET, body, NOW + skew)
    )
    assert resp.status_code == 401
    assert resp.get_json() == {"error": "X-Tasuki-Timestamp is more than 300 seconds from now"}
    assert queue.count == 0 and _deliveries(store) == 0


@pytest.mark.parametrize(
    "stamp",
    [
        None,
        "",
        " ",
        "abc",
        "1790000000.5",
        "-1790000000",
        " 1790000000",
        "1_790_000_000",
        "²³",
        "١٧٩٠٠٠٠٠٠٠",
        "9" * 5000,
    ],
)
def test_a_missing_or_malformed_timestamp_is_401_naming_the_header(
    at_now: FlaskClient, queue: Queue, stamp: str | None
) -> None:
    body = _body(_notice("1"))
    headers = signed_headers(SECRET, body, NOW)
    if stamp is None:
        del headers["X-Tasuki-Timestamp"]
    else:
        # Signed over the very text sent, so only the timestamp's form is wrong.
        headers["X-Tasuki-Timestamp"] = stamp
        headers["X-Tasuki-Signature"] = sign(SECRET, body, stamp)
    resp = at_now.post("/webhooks/local", data=body, headers=headers)
    assert resp.status_code == 401
    assert resp.get_json() == {"error": "missing or malformed X-Tasuki-Timestamp (Unix seconds)"}
    assert queue.count == 0


def test_a_captured_request_cannot_be_replayed_under_a_fresh_timestamp(
    at_now: FlaskClient, queue: Queue
) -> None:
    body = _body(_notice("1"))
    captured = signed_headers(SECRET, body, NOW - 3600)
    replay = {**captured, "X-Tasuki-Timestamp": str(NOW)}
    resp = at_now.post("/webhooks/local", data=body, headers=replay)
    assert resp.status_code == 401 and "X-Tasuki-Signature" in resp.get_json()["error"]
    assert queue.count == 0


def test_the_signature_covers_the_timestamp_then_a_dot_then_the_body() -> None:
    body = b'{"notices": []}'
    mac = hmac.new(SECRET.encode(), b"1790000000." + body, hashlib.sha256).hexdigest()
    assert sign(SECRET, body, 1790000000) == mac
    assert signed_headers(SECRET, body, 1790000000.9) == {
        "Content-Type": "application/json",
        "X-Tasuki-Timestamp": "1790000000",
        "X-Tasuki-Signature": mac,
    }


_OK = {"id": "1", "object": "Lead", "record_ids": ["00Q1"]}


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (b"", "not JSON"),
        (b"not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
        (b"[]", '"notices" list'),
        (b'{"notices": {}}', '"notices" list'),
        (b'{"notices": null}', '"notices" list'),
        (json.dumps({"notices": [_OK], "extra": 1}).encode(), "unknown key(s): extra"),
        (b'{"notices": []}', "between 1 and 100"),
        (json.dumps({"notices": [_notice(str(i)) for i in range(101)]}).encode(), "not 101"),
        (b'{"notices": [1]}', "notices[0] must be an object"),
        (json.dumps({"notices": [{**_OK, "colour": "red"}]}).encode(), "unknown key(s): colour"),
        (json.dumps({"notices": [{k: v for k, v in _OK.items() if k != "id"}]}).encode(), ".id"),
        (json.dumps({"notices": [{**_OK, "id": ""}]}).encode(), "notices[0].id"),
        (json.dumps({"notices": [{**_OK, "id": 7}]}).encode(), "notices[0].id"),
        (json.dumps({"notices": [{**_OK, "id": "x" * 201}]}).encode(), "at most 200"),
        (json.dumps({"notices": [_OK, {**_OK, "object": ""}]}).encode(), "notices[1].object"),
        (json.dumps({"notices": [{**_OK, "object": None}]}).encode(), ".object"),
        (json.dumps({"notices": [{**_OK, "object": "Le ad"}]}).encode(), ".object"),
        (json.dumps({"notices": [{**_OK, "object": "L" * 41}]}).encode(), ".object"),
        (json.dumps({"notices": [{**_OK, "record_ids": []}]}).encode(), ".record_ids must"),
        (json.dumps({"notices": [{**_OK, "record_ids": "00Q1"}]}).encode(), ".record_ids must"),
        (json.dumps({"notices": [{**_OK, "record_ids": ["a", 7]}]}).encode(), "record_ids[1]"),
        (json.dumps({"notices": [{**_OK, "record_ids": [""]}]}).encode(), "record_ids[0]"),
        (json.dumps({"notices": [{**_OK, "record_ids": ["x" * 65]}]}).encode(), "at most 64"),
        (json.dumps({"notices": [{**_OK, "changed_by": 5}]}).encode(), ".changed_by"),
    ],
)
def test_a_malformed_body_is_400_naming_what_is_wrong(
    client: FlaskClient, queue: Queue, store: Store, body: bytes, complaint: str
) -> None:
    resp = _post(client, body)
    assert resp.status_code == 400
    assert complaint in resp.get_json()["error"]
    assert queue.count == 0 and _deliveries(store) == 0


def test_optional_changed_by_may_be_absent_null_or_a_user(
    client: FlaskClient, queue: Queue
) -> None:
    body = _body(_OK, {**_OK, "id": "2", "changed_by": None}, {**_OK, "id": "3", "changed_by": "u"})
    assert _post(client, body).get_json()["accepted"] == 3


def test_a_body_over_one_mebibyte_is_413_as_json(client: FlaskClient, queue: Queue) -> None:
    body = b'{"notices": [], "pad": "' + b" " * (1024 * 1024) + b'"}'
    resp = _post(client, body)
    assert resp.status_code == 413 and resp.is_json and "error" in resp.get_json()
    assert queue.count == 0


def test_a_body_of_exactly_one_mebibyte_is_read(client: FlaskClient) -> None:
    head = _body(_notice("1"))
    body = head + b" " * (1024 * 1024 - len(head))  # trailing whitespace is valid JSON
    assert _post(client, body).status_code == 200


def test_other_errors_are_json_and_keep_their_headers(client: FlaskClient) -> None:
    missing = client.get("/webhooks/nowhere")
    assert missing.status_code == 404 and missing.is_json
    wrong = client.get("/webhooks/local")
    assert wrong.status_code == 405 and wrong.is_json and "POST" in wrong.headers["Allow"]


def test_queue_down_is_503_with_nothing_recorded_and_the_retry_is_accepted(
    live: Settings, store: Store, queue: Queue
) -> None:
    down = dataclasses.replace(live, redis_url=REDIS_DOWN)
    broken = taking_client(create_app(down, store=store, queue=job_queue(down)))
    body = _body(_notice("1"), _notice("2", "Opportunity"))
    resp = _post(broken, body)
    assert resp.status_code == 503
    assert int(resp.headers["Retry-After"]) > 0 and "queue" in resp.get_json()["error"]
    assert _deliveries(store) == 0
    retry = _post(taking_client(create_app(live, store=store, queue=queue)), body)
    assert retry.get_json() == {"accepted": 2, "duplicates": 0, "ignored": 0}
    assert queue.count == 2 and _deliveries(store) == 2


def test_store_down_is_still_200_and_the_notice_waits_in_redis_for_it(
    live: Settings, store: Store, queue: Queue
) -> None:
    gone = create_app(live, store=open_store(STORE_DOWN, migrate=False), queue=queue)
    body = _body(_notice("1"))
    with pytest.raises(Exception, match="127.0.0.1"):
        _post(taking_client(gone), body)  # answered 200, then the taker fails on the store
    intake = services(gone).intake
    assert intake.journal.backlog() == 1 and queue.count == 0
    # The store answers again: the same server's taker stores it, and a retry is a duplicate.
    intake.store = store
    assert intake.store_waiting().new == 1
    assert _deliveries(store) == 1 and queue.count == 1
    retry = _post(taking_client(gone), body)
    assert retry.get_json() == {"accepted": 0, "duplicates": 1, "ignored": 0}


def test_healthz_is_200_when_store_and_queue_answer(client: FlaskClient) -> None:
    ok = client.get("/healthz")
    assert (ok.status_code, ok.get_json()) == (200, {"store": "ok", "queue": "ok"})


def test_healthz_is_503_naming_the_queue_when_redis_is_down(live: Settings, store: Store) -> None:
    down = dataclasses.replace(live, redis_url=REDIS_DOWN)
    bad = create_app(down, store=store, queue=job_queue(down)).test_client().get("/healthz")
    assert (bad.status_code, bad.get_json()) == (503, {"store": "ok", "queue": "unreachable"})


def test_healthz_is_503_naming_the_store_when_it_is_down(live: Settings, queue: Queue) -> None:
    gone = open_store(STORE_DOWN, migrate=False)
    bad = create_app(live, store=gone, queue=queue).test_client().get("/healthz")
    assert (bad.status_code, bad.get_json()) == (503, {"store": "unreachable", "queue": "ok"})


def test_the_app_refuses_to_start_without_its_secret(
    settings: Settings, sqlite_store: Store
) -> None:
    with pytest.raises(ConfigError, match="TASUKI_WEBHOOK_SECRET"):
        create_app(dataclasses.replace(settings, webhook_secret=None), store=sqlite_store)


def test_the_app_keeps_its_settings_store_and_queue(app: Flask, live: Settings) -> None:
    found = services(app)
    assert found.settings is live and found.intake.store is found.store
    assert found.queue.name == live.config.queue_name
    assert app.config["MAX_CONTENT_LENGTH"] == 1024 * 1024


def test_the_secret_never_appears_in_answers_or_settings(client: FlaskClient, app: Flask) -> None:
    answers = [_post(client, _body(_notice("1")), sig) for sig in ("good", "bad", None)]
    answers.append(_post(client, b"{}"))
    assert all(SECRET not in a.get_data(as_text=True) for a in answers)
    assert SECRET not in repr(services(app).settings)
