"""The Salesforce receivers: Outbound Messages and relayed change events."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import fakeredis
import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from tasuki.queue import job_queue
from tasuki.settings import Settings
from tasuki.store.db import Store
from tests.notices import taking_client
from tests.salesforce.sf_emulator import INTEGRATION_USER, ORG_ID
from tests.salesforce.sf_outbound import (
    BARE_DTD,
    EXTERNAL_ENTITY,
    XML_BOMB,
    change_event,
    outbound_message,
)
from webhooks.intake import Intake
from webhooks.salesforce import blueprint

ENV = {
    "TASUKI_SALESFORCE_ORG_ID": ORG_ID[:15],  # the 15-character form matches the 18 sent
    "TASUKI_SALESFORCE_INTEGRATION_USER_ID": INTEGRATION_USER,
}
LEADS = [f"00Q{i:012d}AAA" for i in range(1, 121)]


@pytest.fixture
def sf_settings(settings: Settings) -> Settings:
    from dataclasses import replace

    return replace(settings, config=settings.config.model_copy(update={"crm": "salesforce"}))


@pytest.fixture
def conn() -> redis.Redis:
    connection: redis.Redis = fakeredis.FakeRedis()
    return connection


def _client(
    settings: Settings, store: Store, conn: redis.Redis, env: dict[str, str] = ENV
) -> FlaskClient:
    from dataclasses import replace

    from tasuki.providers import SalesforceSettings

    app = Flask(__name__)
    configured = replace(settings, salesforce=SalesforceSettings.from_env(env))
    intake = Intake(store, job_queue(configured, conn))
    app.register_blueprint(blueprint(configured, store, conn, intake=intake))
    return taking_client(app, intake)


def _queued(settings: Settings, conn: redis.Redis) -> list[dict[str, Any]]:
    return [dict(job.kwargs) for job in job_queue(settings, conn).jobs]


def _post(client: FlaskClient, body: bytes) -> Any:
    return client.post("/webhooks/salesforce", data=body, content_type="text/xml")


def test_an_outbound_message_is_queued_then_acknowledged(
    sf_settings: Settings, sqlite_store: Store, conn: redis.Redis
) -> None:
    client = _client(sf_settings, sqlite_store, conn)
    body = outbound_message([(f"04l{i:015d}", rid) for i, rid in enumerate(LEADS[:100])])
    answer = _post(client, body)
    assert answer.status_code == 200 and answer.mimetype == "text/xml"
    assert b"<Ack>true</Ack>" in answer.data and b"notificationsResponse" in answer.data
    assert _queued(sf_settings, conn) == [{"object": "Lead", "ids": LEADS[:100]}]


def test_a_notification_seen_before_is_acknowledged_and_not_queued_again(
    sf_settings: Settings, sqlite_store: Store, conn: redis.Redis
) -> None:
    client = _client(sf_settings, sqlite_store, conn)
    first = outbound_message([("04l000000000000001", LEADS[0]), ("04l000000000000002", LEADS[1])])
    assert _post(client, first).status_code == 200
    conn.flushall()
    again = outbound_message([("04l000000000000002", LEADS[1]), ("04l000000000000003", LEADS[2])])
    answer = _post(client, again)
    assert answer.status_code == 200 and b"<Ack>true</Ack>" in answer.data
    assert _queued(sf_settings, conn) == [{"object": "Lead", "ids": [LEADS[2]]}]
    assert _post(client, again).status_code == 200
    assert len(_queued(sf_settings, conn)) == 1


def test_another_orgs_message_is_refused(
    sf_settings: Settings, sqlite_store: Store, conn: redis.Redis
) -> None:
    client = _client(sf_settings, sqlite_store, conn)
    body = outbound_message([("04l000000000000001", LEADS[0])], org_id="00D5j00000OTHERAAA")
    answer = _post(client, body)
    assert answer.status_code == 403 and b"Ack" not in answer.data
    assert _queued(sf_settings, conn) == []


@pytest.mark.parametrize(
    "attack", [XML_BOMB, EXTERNAL_ENTITY, BARE_DTD], ids=["bomb", "xxe", "dtd"]
)
def test_xml_attacks_get_400_and_nothing_else(
    attack: bytes, sf_settings: Settings, sqlite_store: Store, conn: redis.Redis
) -> None:
    answer = _post(_client(sf_settings, sqlite_store, conn), attack)
    assert answer.status_code == 400 and b"Ack" not in answer.data
    assert _queued(sf_settings, conn) == []
    with sqlite_store.session() as s:
        from sqlalchemy import func, select

        from tasuki.store.models import Delivery

        assert s.scalar(select(func.count()).select_from(Delivery)) == 0


@pytest.mark.parametrize(
    "body",
    [b"not xml", b"<a/>", outbound_message([]), outbound_message([("x", "y")] * 101)],
    ids=["text", "other-xml", "no-notification", "over-100"],
)
def test_malformed_messages_get_400(
    body: bytes, sf_settings: Settings, sqlite_store: Store, conn: redis.Redis
) -> None:
    assert _post(_client(sf_settings, sqlite_store, conn), body).status_code == 400


def test_the_integration_users_own_changes_are_acknowledged_not_queued(
    sf_settings: Settings, sqlite_store: Store, conn: redis.Redis
) -> None:
    body = outbound_message([("04l000000000000001", LEADS[0])], modified_by=INTEGRATION_USER)
    answer = _post(_client(sf_settings, sqlite_store, conn), body)
    assert answer.status_code == 200 and b"<Ack>true</Ack>" in answer.data
    assert _queued(sf_settings, conn) == []


def test_queue_down_is_503_without_ack_and_the_retry_is_taken(
    sf_settings: Settings, sqlite_store: Store, conn: redis.Redis
) -> None:
    down = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    body = outbound_message([("04l000000000000001", LEADS[0])])
    answer = _post(_client(sf_settings, sqlite_store, down), body)
    assert answer.status_code == 503 and b"Ack" not in answer.data
    down.close()
    # The delivery was not recorded, so Salesforce's retry is taken.
    assert _post(_client(sf_settings, sqlite_store, conn), body).status_code == 200
    assert _queued(sf_settings, conn) == [{"object": "Lead", "ids": [LEADS[0]]}]


def test_without_an_org_id_the_endpoint_says_so(
    sf_settings: Settings, sqlite_store: Store, conn: redis.Redis
) -> None:
    client = _client(sf_settings, sqlite_store, conn, env={})
    assert _post(client, outbound_message([("04l000000000000001", LEADS[0])])).status_code == 503


def _signed(client: FlaskClient, payload: Any, secret: str = "test-webhook-secret") -> Any:
    body = json.dumps(payload).encode()
    mac = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return client.post(
        "/webhooks/salesforce/events",
        data=body,
        content_type="application/json",
        headers={"X-Tasuki-Signature": f"sha256={mac}"},
    )


def test_change_events_are_queued_and_echoes_counted(
    sf_settings: Settings, sqlite_store: Store, conn: redis.Redis
) -> None:
    client = _client(sf_settings, sqlite_store, conn)
    events = [
        change_event(LEADS[:2], changed=["Status", "LastModifiedDate"], sequence=1),
        change_event([LEADS[2]], changed=["Tasuki_Verdict__c", "Tasuki_Score__c"], sequence=2),
        change_event([LEADS[3]], commit_user=INTEGRATION_USER, sequence=3),
        change_event(
            ["006000000000001AAA"], entity="Opportunity", change_type="DELETE", sequence=4
        ),
        change_event([LEADS[4]], entity="Case", sequence=5),
    ]
    answer = _signed(client, events)
    assert answer.status_code == 200
    assert answer.get_json() == {"accepted": 2, "duplicates": 0, "ignored": 3}
    assert sorted(_queued(sf_settings, conn), key=lambda k: k["object"]) == [
        {"object": "Lead", "ids": LEADS[:2]},
        {"object": "Opportunity", "ids": ["006000000000001AAA"]},
    ]
    again = _signed(client, events[0])
    assert again.get_json() == {"accepted": 0, "duplicates": 1, "ignored": 0}


@pytest.mark.parametrize("secret", ["wrong-secret", None])
def test_unsigned_or_badly_signed_events_get_401(
    secret: str | None, sf_settings: Settings, sqlite_store: Store, conn: redis.Redis
) -> None:
    client = _client(sf_settings, sqlite_store, conn)
    if secret is None:
        answer = client.post("/webhooks/salesforce/events", json=[change_event(LEADS[:1])])
    else:
        answer = _signed(client, [change_event(LEADS[:1])], secret)
    assert answer.status_code == 401 and _queued(sf_settings, conn) == []


def test_events_without_a_header_get_400(
    sf_settings: Settings, sqlite_store: Store, conn: redis.Redis
) -> None:
    answer = _signed(_client(sf_settings, sqlite_store, conn), [{"Status": "x"}])
    assert answer.status_code == 400
