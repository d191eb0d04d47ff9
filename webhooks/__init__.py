"""The webhook app: ``create_app(settings)``, one blueprint per provider, one intake path.

A request is verified, its delivery ids recorded and its work enqueued in one transaction, and
answered; no request ever calls a CRM. Queue or store down → 503 with ``Retry-After``, nothing
recorded, so the provider's retry is taken as new.
"""

from __future__ import annotations

from flask import Flask, Response, jsonify
from rq import Queue
from werkzeug.exceptions import HTTPException

from tasuki.errors import ConfigError, Problem, QueueUnavailable, StoreUnavailable
from tasuki.settings import Settings
from tasuki.store.db import Store, open_store
from webhooks.intake import RETRY_AFTER_SECONDS, Intake

MAX_BODY_BYTES = 1024 * 1024
"""Largest request body accepted (413 beyond)."""


def create_app(
    settings: Settings, *, store: Store | None = None, queue: Queue | None = None
) -> Flask:
    """The Flask app receiving every provider's webhooks.

    Refuses to start (:class:`ConfigError`) without ``TASUKI_WEBHOOK_SECRET``: a service that
    checks signatures has no default secret.
    """
    if settings.webhook_secret is None:
        raise ConfigError(
            [Problem("environment", 1, 1, "TASUKI_WEBHOOK_SECRET is not set; refusing to start")]
        )
    from tasuki.queue import job_queue
    from webhooks import health, hubspot, local, miitel, salesforce, zoom

    store = store or open_store(settings.database_url)
    queue = queue if queue is not None else job_queue(settings)
    intake = Intake(store, queue)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.extensions["tasuki"] = intake
    app.register_blueprint(local.blueprint(intake, settings.webhook_secret.get_secret_value()))
    app.register_blueprint(health.blueprint(intake))
    app.register_blueprint(salesforce.blueprint(settings, store, queue.connection))
    app.register_blueprint(hubspot.blueprint(settings, store, queue.connection))
    app.register_blueprint(zoom.blueprint(settings, intake.accept))
    app.register_blueprint(miitel.blueprint(settings, intake.accept))

    @app.errorhandler(QueueUnavailable)
    @app.errorhandler(StoreUnavailable)
    def unavailable(exc: Exception) -> tuple[Response, int, dict[str, str]]:
        return jsonify(error=str(exc)), 503, {"Retry-After": str(RETRY_AFTER_SECONDS)}

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        return jsonify(error=exc.description or exc.name), exc.code or 500

    return app


__all__ = ["create_app"]
