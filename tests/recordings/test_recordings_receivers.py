"""The Zoom and MiiTel receivers: signature / token on every request, the providers' challenges,
dedupe, and a queued job that keeps the recording; on a real Redis.

The shared intake of ``webhooks/intake.py`` is stood in for by :func:`_intake` (record the
delivery id, queue the job) until the app factory registers these blueprints itself."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pydantic import SecretStr
from rq import Queue, SimpleWorker
from sqlalchemy import select

from connectors.local import LocalCrm
from tasuki import runtime, startup
from tasuki.queue import job_queue
from tasuki.recordings.zoom import signature
from tasuki.settings import Settings
from tasuki.store.db import Store
from tasuki.store.models import Delivery, Recording
from tasuki.store.upsert import insert_ignore
from tests.notices import taking_client
from webhooks import miitel as miitel_hook
from webhooks import zoom as zoom_hook

ZOOM_SECRET = "zoom-test-secret"
MIITEL_TOKEN = "miitel-test-token"


@pytest.fixture
def queue(settings: Settings, redis_url: str) -> Iterator[Queue]:
    q = job_queue(dataclasses.replace(settings, redis_url=redis_url))
    yield q
    q.empty()  # type: ignore[no-untyped-call]


def _app(settings: Settings, store: Store, queue: Queue, clock: float | None = None) -> Flask:
    def _intake(
        provider: str, delivery: str, func: Callable[..., Any], kwargs: dict[str, Any]
    ) -> bool:
        with store.session() as s:
            rows = [{"provider": provider, "delivery_id": delivery}]
            if not insert_ignore(s, Delivery, rows, ["provider", "delivery_id"]):
                return False
            queue.enqueue(func, kwargs=kwargs)
        return True

    app = Flask(__name__)
    app.register_blueprint(
        zoom_hook.blueprint(settings, _intake, **({"clock": lambda: clock} if clock else {}))
    )
    app.register_blueprint(miitel_hook.blueprint(settings, _intake))
    return app


@pytest.fixture
def secured(settings: Settings) -> Settings:
    secrets = {
        **settings.secrets,
        "TASUKI_ZOOM_SECRET_TOKEN": SecretStr(ZOOM_SECRET),
        "TASUKI_MIITEL_TOKEN": SecretStr(MIITEL_TOKEN),
    }
    return dataclasses.replace(settings, secrets=secrets)


@pytest.fixture
def client(secured: Settings, sqlite_store: Store, queue: Queue) -> Iterator[FlaskClient]:
    with taking_client(_app(secured, sqlite_store, queue)) as c:
        yield c


def _zoom(
    client: FlaskClient,
    body: dict[str, Any],
    *,
    secret: str = ZOOM_SECRET,
    ts: int | None = None,
    raw: bytes | None = None,
) -> Any:
    data = raw if raw is not None else json.dumps(body).encode()
    stamp = str(ts if ts is not None else int(time.time()))
    return client.post(
        "/webhooks/zoom",
        data=data,
        headers={
            "Content-Type": "application/json",
            "x-zm-request-timestamp": stamp,
            "x-zm-signature": signature(secret, stamp, json.dumps(body).encode()),
        },
    )


RECORDING = {
    "event": "recording.completed",
    "event_ts": 1763612345000,
    "payload": {
        "account_id": "acc",
        "object": {
            "uuid": "abc==",
            "topic": "商談",
            "start_time": "2026-11-20T05:00:00Z",
            "host_email": "noah@example.co.jp",
            "share_url": "https://zoom.us/rec/share/xyz",
            "recording_files": [],
        },
    },
}


def test_zoom_url_validation_is_answered_with_the_hmac_of_the_plain_token(
    client: FlaskClient, queue: Queue
) -> None:
    body = {"event": "endpoint.url_validation", "payload": {"plainToken": "qgg8vlvZRS6UYooatFL8Aw"}}
    resp = _zoom(client, body)
    assert resp.status_code == 200
    expected = hmac.new(ZOOM_SECRET.encode(), b"qgg8vlvZRS6UYooatFL8Aw", hashlib.sha256)
    assert resp.get_json() == {
        "plainToken": "qgg8vlvZRS6UYooatFL8Aw",
        "encryptedToken": expected.hexdigest(),
    }
    assert queue.count == 0


def test_a_signed_recording_is_queued_once(client: FlaskClient, queue: Queue) -> None:
    first = _zoom(client, RECORDING)
    assert first.status_code == 200 and first.get_json() == {"accepted": 1, "duplicates": 0}
    again = _zoom(client, {**RECORDING, "event_ts": 1763612399000})  # Zoom's retry
    assert again.get_json() == {"accepted": 0, "duplicates": 1}
    assert queue.count == 1


@pytest.mark.parametrize(
    "how",
    ["forged", "stale", "reserialised", "unsigned"],
)
def test_a_request_zoom_did_not_sign_is_refused_and_nothing_queued(
    client: FlaskClient, queue: Queue, how: str
) -> None:
    if how == "forged":
        resp = _zoom(client, RECORDING, secret="guess")
    elif how == "stale":
        resp = _zoom(client, RECORDING, ts=int(time.time()) - 301)
    elif how == "reserialised":
        raw = json.dumps(RECORDING, indent=1).encode()
        resp = _zoom(client, RECORDING, raw=raw)
    else:
        resp = client.post("/webhooks/zoom", json=RECORDING)
    assert resp.status_code == 401 and queue.count == 0


def test_other_zoom_events_are_acknowledged_and_ignored(client: FlaskClient, queue: Queue) -> None:
    resp = _zoom(client, {"event": "meeting.started", "payload": {"object": {"uuid": "u"}}})
    assert resp.status_code == 200 and resp.get_json()["ignored"] == 1 and queue.count == 0


def _miitel(client: FlaskClient, body: dict[str, Any], token: str = MIITEL_TOKEN) -> Any:
    return client.post("/webhooks/miitel", json=body, headers={"Authorization": f"Bearer {token}"})


CALL = {
    "event": "call.analysis_completed",
    "call": {
        "id": "c-1",
        "url": "https://demo.miitel.jp/app/calls/c-1",
        "details": [
            {
                "dial_start_at": "2026-11-20T10:00:00+09:00",
                "from_number": "+81 50-1234-0000",
                "to_number": "0312345678",
                "user": {"id": "u1", "email": "sho@example.co.jp"},
            }
        ],
    },
}


def test_miitel_challenge_is_answered_in_plain_text(client: FlaskClient, queue: Queue) -> None:
    resp = _miitel(client, {"challenge": "5f4dcc3b5aa765d61d8327deb882cf99", "team": "IS"})
    assert resp.status_code == 200
    assert resp.mimetype == "text/plain"
    assert resp.get_data(as_text=True) == "5f4dcc3b5aa765d61d8327deb882cf99"
    assert queue.count == 0


def test_miitel_without_the_token_is_refused(client: FlaskClient, queue: Queue) -> None:
    assert _miitel(client, CALL, token="wrong").status_code == 401
    assert client.post("/webhooks/miitel", json=CALL).status_code == 401
    assert queue.count == 0


def test_a_call_event_is_queued_once_and_the_job_keeps_it(
    client: FlaskClient, queue: Queue, secured: Settings, sqlite_store: Store
) -> None:
    assert _miitel(client, CALL).get_json() == {"accepted": 1, "duplicates": 0}
    assert _miitel(client, CALL).get_json() == {"accepted": 0, "duplicates": 1}
    assert queue.count == 1
    crm = LocalCrm(secured.data_dir / "crm.db")
    rt = startup.assemble(secured, sqlite_store, crm, redis_connection=queue.connection)
    with runtime.activate(rt):
        SimpleWorker([queue], connection=queue.connection).work(burst=True, logging_level="WARNING")
    with sqlite_store.session() as s:
        row = s.scalars(select(Recording)).one()
    assert (row.provider, row.external_id, row.status) == ("miitel", "c-1", "unmatched")
    assert "no lead or contact has phone" in row.reason and "+81312345678" in row.reason


def test_without_secrets_the_receivers_answer_503(
    settings: Settings, sqlite_store: Store, queue: Queue
) -> None:
    with taking_client(_app(settings, sqlite_store, queue)) as c:
        assert c.post("/webhooks/zoom", json=RECORDING).status_code == 503
        assert c.post("/webhooks/miitel", json=CALL).status_code == 503
