"""``GET /healthz``: can this process reach its store and its queue?"""

from __future__ import annotations

import redis
from flask import Blueprint, Response, jsonify
from sqlalchemy.exc import SQLAlchemyError

from webhooks.intake import Intake


def _store_ok(intake: Intake) -> bool:
    try:
        return intake.store.ping()
    except SQLAlchemyError:  # ping() covers a refused connection; a full pool lands here
        return False


def _queue_ok(intake: Intake) -> bool:
    try:
        return bool(intake.queue.connection.ping())
    except redis.RedisError:
        return False


def blueprint(intake: Intake) -> Blueprint:
    """The health check: 200 ``{"store": "ok", "queue": "ok"}`` when both answer, else 503
    with ``"unreachable"`` for the one that does not (a load balancer takes it out)."""
    bp = Blueprint("health", __name__)

    @bp.get("/healthz")
    def healthz() -> tuple[Response, int]:
        store = "ok" if _store_ok(intake) else "unreachable"
        queue = "ok" if _queue_ok(intake) else "unreachable"
        return jsonify(store=store, queue=queue), 200 if store == queue == "ok" else 503

    return bp
