"""``POST /webhooks/miitel``: MiiTel's outgoing webhook (call history).

Authenticated by the header set under "Additional headers" in MiiTel Admin (by default
``Authorization: Bearer <TASUKI_MIITEL_TOKEN>``), compared in constant time: otherwise 401 and
nothing is queued. MiiTel's registration challenge ``{"challenge": token}`` is answered as MiiTel
requires: 200, ``text/plain``, the token alone. Call events are deduped and queued as
``worker.ingest_recording``. A body that is not a JSON object (or nests too deep), or a call id
the store cannot take as a delivery id, is 400. Without the token the endpoint answers 503. No
CRM is called here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify, request

import worker
from tasuki.providers import RECEIVER_SECRETS
from tasuki.recordings import miitel
from tasuki.recordings.capture import compact, first
from tasuki.recordings.config import load_recordings_config
from tasuki.settings import Settings
from webhooks.limits import MAX_DELIVERY_ID, Refused, id_problem, load_json, same_secret

TOKEN_NAME = RECEIVER_SECRETS["miitel"]

Accept = Callable[[str, str, Callable[..., Any], dict[str, Any]], bool]
"""The shared intake: (provider, delivery id, job function, job kwargs) → queued (False when the
delivery was seen before)."""


def blueprint(settings: Settings, accept: Accept) -> Blueprint:
    """The MiiTel receiver, bound to the settings and the shared intake path."""
    bp = Blueprint("miitel", __name__)
    cfg = load_recordings_config(settings).miitel
    token = settings.secret(TOKEN_NAME)

    @bp.post("/webhooks/miitel")
    def receive() -> tuple[Response, int] | Response:
        if token is None:
            return jsonify(error=f"{TOKEN_NAME} is not set"), 503
        given = request.headers.get(cfg.token_header, "").strip()
        given = given.removeprefix("Bearer ").strip()
        if not same_secret(given, token.get_secret_value()):
            return jsonify(error="bad token"), 401
        try:
            payload = load_json(request.get_data(cache=True))
        except Refused as exc:
            return jsonify(error=str(exc)), 400
        if not isinstance(payload, dict):
            return jsonify(error="body is not a JSON object"), 400
        challenge = miitel.challenge_token(payload, cfg)
        # MiiTel adds the challenge to the configured extra payload: a call id marks a call.
        if challenge is not None and first(payload, cfg.fields.call_id) is None:
            return Response(challenge, status=200, mimetype="text/plain")
        delivery = miitel.delivery_id(payload, cfg)
        problem = id_problem(delivery, "the delivery id (call id and event)", MAX_DELIVERY_ID)
        if problem:
            return jsonify(error=problem), 400
        queued = accept(
            miitel.PROVIDER,
            delivery,
            worker.ingest_recording,
            {"provider": miitel.PROVIDER, "payload": compact(payload)},
        )
        return jsonify(accepted=int(queued), duplicates=int(not queued)), 200

    return bp
