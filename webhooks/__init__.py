"""The webhook app: ``create_app(settings)``, one blueprint per provider, one intake path.

A request is verified, its new delivery ids and their work recorded in one Redis call
(:mod:`webhooks.intake`), and answered; no request ever calls a CRM or waits for the store.
Redis down → 503 with ``Retry-After``, nothing recorded, so the provider's retry is taken as
new. Every error is answered as JSON, and nothing
a request carries is answered 5xx: a receiver refuses what the store cannot take
(:mod:`webhooks.limits`) with 400, and what one misses but can only be the request's fault
(:data:`~webhooks.limits.REQUEST_FAULTS`) the app answers 400 too. Bodies over
:data:`MAX_BODY_BYTES` are 413.
"""

from __future__ import annotations

import json

from flask import Flask, Response, jsonify, request
from rq import Queue
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as WerkzeugResponse

from tasuki.errors import QueueUnavailable, StoreUnavailable, TasukiError
from tasuki.queue import job_queue
from tasuki.settings import Settings
from tasuki.store.db import Store, open_store
from webhooks import health, hubspot, local, miitel, observe, salesforce, zoom
from webhooks.intake import Intake, unavailable
from webhooks.limits import REQUEST_FAULTS, Refused
from webhooks.shared import Services, require_webhook_secret, services

MAX_BODY_BYTES = 1024 * 1024
"""Largest request body accepted (413 beyond)."""


def create_app(
    settings: Settings, *, store: Store | None = None, queue: Queue | None = None
) -> Flask:
    """The Flask app receiving every provider's webhooks.

    ``store`` and ``queue`` default to the ones ``settings`` name. Refuses to start
    (:class:`ConfigError`) without ``TASUKI_WEBHOOK_SECRET``.
    """
    require_webhook_secret(settings)
    assert settings.webhook_secret is not None
    # lazy: the console's stack (Babel, Authlib, WTF) only when the app is built
    from tasuki.console.app import init_app as init_console

    store = store or open_store(settings.database_url)
    queue = queue if queue is not None else job_queue(settings)
    abandoned = settings.config.recovery.abandoned_after_seconds
    intake = Intake(store, queue, claim_after_ms=int(abandoned * 1000))
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.extensions["tasuki"] = Services(settings, store, queue, intake)
    observe.init_app(app)  # access log, per-request metrics, GET /metrics
    init_console(app, settings)  # the Sales Ops console, behind its login
    app.register_blueprint(local.blueprint(intake, settings.webhook_secret))
    app.register_blueprint(health.blueprint(intake))
    app.register_blueprint(salesforce.blueprint(settings, store, intake=intake))
    app.register_blueprint(hubspot.blueprint(settings, store, intake=intake))
    app.register_blueprint(zoom.blueprint(settings, intake.accept))
    app.register_blueprint(miitel.blueprint(settings, intake.accept))

    @app.errorhandler(QueueUnavailable)
    @app.errorhandler(StoreUnavailable)
    def _unavailable(exc: TasukiError) -> tuple[Response, int, dict[str, str]]:
        app.logger.warning("answered 503: %s", exc)
        return unavailable(exc)

    def _request_fault(exc: Exception) -> tuple[Response, int]:
        reason = f"{type(exc).__name__}: {str(exc)[:200]}"
        app.logger.warning("answered 400 to %s %s: %s", request.method, request.path, reason)
        if isinstance(exc, Refused):
            return jsonify(error=str(exc)), 400
        return jsonify(error=f"the request could not be read ({type(exc).__name__})"), 400

    for fault in REQUEST_FAULTS:
        app.register_error_handler(fault, _request_fault)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> WerkzeugResponse:
        # Werkzeug's own response keeps headers such as Allow (405); only the body becomes JSON.
        response = exc.get_response()
        response.set_data(json.dumps({"error": exc.description or exc.name}))
        response.content_type = "application/json"
        return response

    return app


__all__ = ["MAX_BODY_BYTES", "Services", "create_app", "require_webhook_secret", "services"]
