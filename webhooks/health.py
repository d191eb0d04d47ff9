"""``GET /healthz``: can this process reach its store and its queue?"""

from __future__ import annotations

import redis
from flask import Blueprint, Response, jsonify

from webhooks.intake import Intake


def blueprint(intake: Intake) -> Blueprint:
    """The health check: 200 when both answer, 503 naming the one that does not."""
    bp = Blueprint("health", __name__)

    @bp.get("/healthz")
    def healthz() -> tuple[Response, int]:
        store = "ok" if intake.store.ping() else "unreachable"
        try:
            intake.queue.connection.ping()
            queue = "ok"
        except redis.RedisError:
            queue = "unreachable"
        ok = store == queue == "ok"
        return jsonify(store=store, queue=queue), 200 if ok else 503

    return bp
