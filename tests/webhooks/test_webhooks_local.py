"""The generic signed receiver and the shared intake path, on a real Redis queue."""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from rq import Queue
from sqlalchemy import func, select

from tasuki.errors import ConfigError
from tasuki.queue import job_queue
from tasuki.settings import Settings
from tasuki.store.db import Store, open_store
from tasuki.store.models import Delivery
from webhooks import create_app
from webhooks.local import sign

SECRET = "test-webhook-secret"


@pytest.fixture
def live(settings: Settings, redis_url: str) -> Settings:
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
    return app.test_client()


def _body(*notices: dict[str, Any]) -> bytes:
    return json.dumps({"notices": list(notices)}).encode()


def _notice(i: str, obj: str = "Lead", ids: list[str] | None = None) -> dict[str, Any]:
    return {"id": i, "object": obj, "record_ids": ids or [f"00Q{i}"], "changed_by": None}


def _post(client: FlaskClient, body: bytes, signature: str | None = "good") -> Any:
    headers = {"Content-Type": "application/json"}
    if signature == "good":
        headers["X-Tasuki-Signature"] = sign(SECRET, body)
    elif signature is not None:
        headers["X-Tasuki-Signature"] = signature
    return client.post("/webhooks/local", data=body, headers=headers)


def _deliveries(store: Store) -> int:
    with store.session() as s:
        return s.scalar(select(func.count()).select_from(Delivery)) or 0


def test_a_signed_notice_is_enqueued_as_a_sync_job(
    client: FlaskClient, queue: Queue, store: Store
) -> None:
    resp = _post(client, _body(_notice("1"), _notice("2"), _notice("3", "Opportunity")))
    assert resp.status_code == 200
    assert resp.get_json() == {"accepted": 3, "duplicates": 0, "ignored": 0}
    jobs = [queue.fetch_job(j) for j in queue.job_ids]
    assert sorted((j.func_name, j.kwargs["object"], tuple(j.kwargs["ids"])) for j in jobs if j) == [
        ("worker.sync_records", "Lead", ("00Q1", "00Q2")),
        ("worker.sync_records", "Opportunity", ("00Q3",)),
    ]
    assert _deliveries(store) == 3


def test_the_same_notice_again_is_a_duplicate_and_nothing_new_is_enqueued(
    client: FlaskClient, queue: Queue
) -> None:
    _post(client, _body(_notice("1")))
    waiting = queue.count
    again = _post(client, _body(_notice("1"), _notice("1")))
    assert again.get_json() == {"accepted": 0, "duplicates": 2, "ignored": 0}
    assert queue.count == waiting


def test_a_burst_for_one_record_merges_into_one_waiting_job(
    client: FlaskClient, queue: Queue
) -> None:
    for i in range(10):
        assert _post(client, _body(_notice(f"burst-{i}", ids=["00QSAME"]))).status_code == 200
    assert queue.count == 1


@pytest.mark.parametrize("signature", [None, "", "00" * 32, "sha256=deadbeef", "not hex"])
def test_a_bad_or_missing_signature_is_401_and_nothing_is_kept(
    client: FlaskClient, queue: Queue, store: Store, signature: str | None
) -> None:
    resp = _post(client, _body(_notice("1")), signature)
    assert resp.status_code == 401
    assert queue.count == 0 and _deliveries(store) == 0


def test_a_body_signed_then_changed_is_401(client: FlaskClient, queue: Queue) -> None:
    body = _body(_notice("1"))
    resp = client.post(
        "/webhooks/local",
        data=body.replace(b"00Q1", b"00Q9"),
        headers={"X-Tasuki-Signature": sign(SECRET, body)},
    )
    assert resp.status_code == 401 and queue.count == 0


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"notices": {}}',
        b'{"notices": []}',
        b'{"notices": [1]}',
        b'{"notices": [{"object": "Lead", "record_ids": ["a"]}]}',
        b'{"notices": [{"id": "1", "object": "", "record_ids": ["a"]}]}',
        b'{"notices": [{"id": "1", "object": "Lead", "record_ids": []}]}',
        b'{"notices": [{"id": "1", "object": "Lead", "record_ids": [7]}]}',
        b'{"notices": [{"id": "1", "object": "Lead", "record_ids": ["a"], "changed_by": 5}]}',
        json.dumps({"notices": [_notice(str(i)) for i in range(101)]}).encode(),
        b"\xff\xfe",
    ],
)
def test_a_malformed_body_is_400(client: FlaskClient, queue: Queue, body: bytes) -> None:
    resp = _post(client, body)
    assert resp.status_code == 400 and "error" in resp.get_json()
    assert queue.count == 0


def test_a_body_over_one_mebibyte_is_413(client: FlaskClient, queue: Queue) -> None:
    body = b"{" + b" " * (1024 * 1024) + b"}"
    assert _post(client, body).status_code == 413
    assert queue.count == 0


def test_queue_down_is_503_and_the_retry_is_accepted_once_it_is_back(
    live: Settings, store: Store, queue: Queue
) -> None:
    down = dataclasses.replace(live, redis_url="redis://127.0.0.1:1/0")
    broken = create_app(down, store=store, queue=job_queue(down)).test_client()
    body = _body(_notice("1"))
    resp = _post(broken, body)
    assert resp.status_code == 503 and resp.headers["Retry-After"]
    assert _deliveries(store) == 0
    retry = _post(create_app(live, store=store, queue=queue).test_client(), body)
    assert retry.get_json()["accepted"] == 1


def test_store_down_is_503(live: Settings, queue: Queue) -> None:
    gone = open_store("postgresql+psycopg://postgres@127.0.0.1:1/none", migrate=False)
    resp = _post(create_app(live, store=gone, queue=queue).test_client(), _body(_notice("1")))
    assert resp.status_code == 503 and queue.count == 0


def test_healthz_reports_store_and_queue(live: Settings, store: Store, queue: Queue) -> None:
    ok = create_app(live, store=store, queue=queue).test_client().get("/healthz")
    assert (ok.status_code, ok.get_json()) == (200, {"store": "ok", "queue": "ok"})
    down = dataclasses.replace(live, redis_url="redis://127.0.0.1:1/0")
    bad = create_app(down, store=store, queue=job_queue(down)).test_client().get("/healthz")
    assert (bad.status_code, bad.get_json()) == (503, {"store": "ok", "queue": "unreachable"})


def test_the_app_refuses_to_start_without_its_secret(settings: Settings, store: Store) -> None:
    with pytest.raises(ConfigError, match="TASUKI_WEBHOOK_SECRET"):
        create_app(dataclasses.replace(settings, webhook_secret=None), store=store)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_served_by_waitress_over_real_http(
    live: Settings, sqlite_store: Store, queue: Queue
) -> None:
    from waitress.server import create_server

    app = create_app(live, store=sqlite_store, queue=queue)
    server = create_server(app, host="127.0.0.1", port=_free_port(), threads=2)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        port = server.effective_port  # type: ignore[union-attr]
        body = _body(_notice("http-1"))
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/webhooks/local",
            data=body,
            headers={"X-Tasuki-Signature": sign(SECRET, body)},
            method="POST",
        )
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=10) as resp:
            assert resp.status == 200
            assert json.loads(resp.read()) == {"accepted": 1, "duplicates": 0, "ignored": 0}
        assert time.perf_counter() - started < 10
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(
                urllib.request.Request(
                    f"http://127.0.0.1:{port}/webhooks/local", data=body, method="POST"
                ),
                timeout=10,
            )
        assert err.value.code == 401
        err.value.close()
    finally:
        server.close()
        thread.join(timeout=5)
