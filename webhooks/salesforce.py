"""``POST /webhooks/salesforce`` (Outbound Messages) and ``/webhooks/salesforce/events``
(Change Data Capture events relayed by Apex or a bridge).

Outbound Message: parsed with DTDs and entities forbidden (an XML bomb or external entity: 400,
nothing else happens); ``OrganizationId`` must be ``TASUKI_SALESFORCE_ORG_ID`` (15 or 18
characters), else 403; each ``Notification/Id`` is recorded in the ``deliveries`` table in the
same transaction as the enqueue, so a redelivered notification is a duplicate (an id the store
cannot take, too long or with control characters, is 400). The answer is ``200 text/xml`` with
``<Ack>true</Ack>`` once the syncs are queued; 503 without an Ack (so Salesforce retries) if
they cannot be. ``tasuki serve`` refuses to start without ``TASUKI_SALESFORCE_ORG_ID`` when the
CRM is Salesforce; an app built without one answers 503 here.

Change events: the raw body must be signed, ``X-Tasuki-Signature: sha256=<hex HMAC-SHA256>``
under ``TASUKI_WEBHOOK_SECRET``, else 401. Each event is deduped on transactionKey +
sequenceNumber (400 when that is too long or holds control characters, or the body is not JSON or
nests too deep). Answer: 200 ``{"accepted", "duplicates", "ignored"}``; 503 when the queue is down.

Echoes of tasuki's own write-back trigger no work (counted as ignored, acknowledged): a change
by ``TASUKI_SALESFORCE_INTEGRATION_USER_ID`` (an Outbound Message's ``LastModifiedById``, an
event's ``commitUser``), or an update whose ``changedFields`` are all fields tasuki writes.
Records of objects tasuki does not map are ignored too. Syncs are queued one per object type.
No CRM is called here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import redis
from flask import Blueprint, Response, jsonify, request

from tasuki.deliveries import Notice
from tasuki.errors import QueueUnavailable
from tasuki.mapping import Mapper
from tasuki.queue import job_queue
from tasuki.settings import Settings
from tasuki.store.db import Store
from webhooks.intake import Intake, verify_hmac_sha256_hex
from webhooks.limits import MAX_DELIVERY_ID, Refused, id_problem, load_json
from webhooks.salesforce_messages import (
    ACK,
    BadMessage,
    is_echo,
    parse_change_events,
    parse_outbound_message,
    same_id,
)

PROVIDER = "salesforce"
ORG_ID = "TASUKI_SALESFORCE_ORG_ID"
INTEGRATION_USER = "TASUKI_SALESFORCE_INTEGRATION_USER_ID"
SIGNATURE_HEADER = "X-Tasuki-Signature"


@dataclass(frozen=True)
class Work:
    """One delivery: its id, and the records it asks to sync (none for an echo)."""

    delivery_id: str
    object: str
    record_ids: Sequence[str]


def _written(settings: Settings) -> dict[str, set[str]]:
    """Physical fields tasuki writes, by Salesforce object name."""
    config = settings.config.model_copy(update={"crm": "salesforce"})
    mapper = Mapper(config)
    out: dict[str, set[str]] = {}
    for logical in mapper.objects:
        fields = {mapper.physical_field(logical, f) for f in mapper.written_fields(logical)}
        out[mapper.physical_object(logical)] = fields
    return out


def unstorable(deliveries: Sequence[Work]) -> str | None:
    """Why the store cannot take one of the delivery ids, or ``None`` when it can take all
    (record ids need no check: both parsers take only 15- or 18-character Salesforce ids)."""
    problems = (id_problem(w.delivery_id, "a delivery id", MAX_DELIVERY_ID) for w in deliveries)
    return next(filter(None, problems), None)


def take(intake: Intake, deliveries: Sequence[Work]) -> tuple[int, int, int]:
    """Record the new deliveries through the shared intake path (their records are synced, one
    job per object); a queue failure records nothing. Returns (accepted, duplicates, ignored)."""
    taken = intake.take(
        PROVIDER,
        [Notice(w.delivery_id, [(w.object, rid) for rid in w.record_ids]) for w in deliveries],
    )
    return taken.accepted, taken.duplicates, taken.ignored


def blueprint(
    settings: Settings,
    store: Store,
    connection: redis.Redis | None = None,
    *,
    intake: Intake | None = None,
) -> Blueprint:
    """The Salesforce receivers, bound to settings (org id, integration user: ``settings.
    salesforce``) and the intake (the app's, or one on ``store`` and the queue)."""
    intake = intake or Intake(store, job_queue(settings, connection))
    org_id = settings.salesforce.org_id
    integration_user = settings.salesforce.integration_user_id
    written = _written(settings)
    bp = Blueprint("salesforce", __name__)

    @bp.post("/webhooks/salesforce")
    def outbound_message() -> tuple[Response | str, int, dict[str, str]] | tuple[Response, int]:
        if org_id is None:
            return jsonify(error=f"{ORG_ID} is not set"), 503
        try:
            message = parse_outbound_message(request.get_data(cache=False))
        except BadMessage as exc:
            return jsonify(error=str(exc)), 400
        if not same_id(message.organization_id, org_id):
            return jsonify(error="OrganizationId is not this org"), 403
        work = []
        for n in message.notifications:
            echo = is_echo([], n.fields.get("LastModifiedById"), set(), integration_user)
            tracked = n.object in written
            ids = [n.record_id] if tracked and not echo else []
            work.append(Work(f"om:{n.id}", n.object, ids))
        problem = unstorable(work)
        if problem:
            return jsonify(error=f"Notification/Id: {problem}"), 400
        try:
            take(intake, work)
        except QueueUnavailable as exc:
            return jsonify(error=str(exc)), 503
        return ACK, 200, {"Content-Type": "text/xml; charset=utf-8"}

    @bp.post("/webhooks/salesforce/events")
    def change_events() -> tuple[Response, int]:
        secret = settings.webhook_secret
        if secret is None:
            return jsonify(error="TASUKI_WEBHOOK_SECRET is not set"), 503
        body = request.get_data(cache=False)
        if not verify_hmac_sha256_hex(secret, body, request.headers.get(SIGNATURE_HEADER)):
            return jsonify(error="bad or missing signature"), 401
        try:
            events = parse_change_events(load_json(body))
        except (Refused, BadMessage) as exc:
            return jsonify(error=str(exc)), 400
        work = []
        for e in events:
            fields = e.changed_fields if e.change_type == "UPDATE" else []
            echo = is_echo(fields, e.commit_user, written.get(e.object, set()), integration_user)
            tracked = e.object in written
            work.append(
                Work(f"cdc:{e.delivery_id}", e.object, [] if echo or not tracked else e.record_ids)
            )
        problem = unstorable(work)
        if problem:
            return jsonify(error=f"transactionKey and sequenceNumber: {problem}"), 400
        try:
            accepted, duplicates, ignored = take(intake, work)
        except QueueUnavailable as exc:
            return jsonify(error=str(exc)), 503
        return jsonify(accepted=accepted, duplicates=duplicates, ignored=ignored), 200

    return bp
