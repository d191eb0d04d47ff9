"""``POST /webhooks/zoom``: Zoom's event notifications (meeting recordings).

Every request must carry Zoom's signature (``x-zm-signature`` over ``x-zm-request-timestamp``
and the raw body, under ``TASUKI_ZOOM_SECRET_TOKEN``) no older than 5 minutes, else 401 and
nothing is queued. ``endpoint.url_validation`` is answered at once; ``recording.completed`` and
``meeting.participant_joined`` are deduped and queued as ``worker.ingest_recording``; other
signed events are acknowledged and ignored. A signed body that is not a JSON object (or nests
too deep), a ``payload`` that is not an object, or a delivery id the store cannot take is 400.
Without the secret the endpoint answers 503, so a misconfiguration is loud and the rest of the
app still starts. No CRM is called here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify, request

import worker
from tasuki.providers import RECEIVER_SECRETS
from tasuki.recordings import zoom
from tasuki.recordings.capture import compact
from tasuki.recordings.config import load_recordings_config
from tasuki.settings import Settings
from webhooks.limits import MAX_DELIVERY_ID, Refused, id_problem, load_json

SECRET_NAME = RECEIVER_SECRETS["zoom"]
MAX_PLAIN_TOKEN = 200
"""Longest ``plainToken`` answered (Zoom sends 22 characters)."""

Accept = Callable[[str, str, Callable[..., Any], dict[str, Any]], bool]
"""The shared intake: (provider, delivery id, job function, job kwargs) → queued (False when the
delivery was seen before)."""


def blueprint(
    settings: Settings, accept: Accept, clock: Callable[[], float] = time.time
) -> Blueprint:
    """The Zoom receiver, bound to the settings and the shared intake path."""
    bp = Blueprint("zoom", __name__)
    cfg = load_recordings_config(settings).zoom
    secret = settings.secret(SECRET_NAME)

    @bp.post("/webhooks/zoom")
    def receive() -> tuple[Response, int]:
        if secret is None:
            return jsonify(error=f"{SECRET_NAME} is not set"), 503
        body = request.get_data(cache=True)
        problem = zoom.signature_problem(
            secret.get_secret_value(),
            request.headers.get("x-zm-request-timestamp"),
            request.headers.get("x-zm-signature"),
            body,
            clock(),
        )
        if problem:
            return jsonify(error=problem), 401
        try:
            payload = load_json(body)
        except Refused as exc:
            return jsonify(error=str(exc)), 400
        if not isinstance(payload, dict):
            return jsonify(error="body is not a JSON object"), 400
        inner = payload.get("payload")
        if inner is not None and not isinstance(inner, dict):
            return jsonify(error="payload is not a JSON object"), 400
        event = payload.get("event")
        if event == zoom.URL_VALIDATION:
            plain = (inner or {}).get("plainToken")
            problem = id_problem(plain, "payload.plainToken", MAX_PLAIN_TOKEN)
            if problem or not isinstance(plain, str):
                return jsonify(error=problem), 400
            return jsonify(zoom.url_validation_answer(secret.get_secret_value(), plain)), 200
        if event not in cfg.events:
            return jsonify(accepted=0, duplicates=0, ignored=1), 200
        delivery = zoom.delivery_id(payload, cfg)
        problem = id_problem(delivery, "the delivery id (event and meeting)", MAX_DELIVERY_ID)
        if problem:
            return jsonify(error=problem), 400
        queued = accept(
            zoom.PROVIDER,
            delivery,
            worker.ingest_recording,
            {"provider": zoom.PROVIDER, "payload": compact(payload)},
        )
        return jsonify(accepted=int(queued), duplicates=int(not queued)), 200

    return bp
