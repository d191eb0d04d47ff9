"""The webhook app seen from outside: an access log, per-request metrics and ``GET /metrics``.

Each request gets one access-log line (logger ``webhooks.access``): method, path (never the
query string), status, duration in milliseconds, remote address, and the provider and delivery
id where the receiver recorded one. No header is ever logged.

``GET /metrics`` answers in the Prometheus text format, and only to ``Authorization: Bearer
<TASUKI_METRICS_TOKEN>`` (401 otherwise; 404 when no token is configured, so an open deployment
shows nothing). It has two parts:

- per-request figures counted in this process: webhooks by provider and status, and the intake
  latency histogram. With several ``tasuki serve`` processes behind a load balancer, each
  counts its own requests: scrape each one (Prometheus sums them with ``sum by``);
- everything else, read at scrape time from the store and Redis
  (:class:`tasuki.ops.metrics.DeploymentCollector`): the same from whichever process answers.
"""

from __future__ import annotations

import hmac
import logging
import time

from flask import Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest

from tasuki import logs
from tasuki.ops.metrics import DeploymentCollector
from webhooks.shared import services

access_log = logging.getLogger("webhooks.access")

PROVIDERS = frozenset({"local", "salesforce", "hubspot", "zoom", "miitel"})
"""Blueprints that receive webhooks (the labels of the per-request metrics)."""

WEBHOOK_PREFIX = "/webhooks/"


def _provider() -> str | None:
    if not request.path.startswith(WEBHOOK_PREFIX):
        return None
    return request.blueprint if request.blueprint in PROVIDERS else "unknown"


def init_app(app: Flask) -> None:
    """Add the access log, the per-request metrics and ``GET /metrics`` to the webhook app."""
    found = services(app)
    # No auto-describe: that would run the store and Redis queries when the app is created.
    registry = CollectorRegistry()
    requests_total = Counter(
        "tasuki_webhook_requests",
        "Webhook requests answered, by provider and HTTP status",
        ["provider", "status"],
        registry=registry,
    )
    latency = Histogram(
        "tasuki_webhook_intake_seconds",
        "Time from a webhook request reaching the app to its answer (verify, record, enqueue)",
        ["provider"],
        registry=registry,
    )
    registry.register(DeploymentCollector(found.settings, found.store, found.queue.connection))
    app.extensions["tasuki_metrics"] = registry
    token = found.settings.metrics_token

    @app.before_request
    def _start() -> None:
        g.tasuki_started = time.perf_counter()
        logs.clear()  # a server thread's previous request leaves nothing behind
        g.tasuki_provider = provider = _provider()
        if provider is not None:
            logs.bind(provider=provider)

    # Each label set's child, looked up once: ``labels()`` takes a lock and checks its
    # arguments on every call, on the busiest path of the app.
    counted: dict[tuple[str, int], Counter] = {}
    timed: dict[str, Histogram] = {}

    @app.after_request
    def _finish(response: Response) -> Response:
        seconds = time.perf_counter() - g.get("tasuki_started", time.perf_counter())
        provider = g.get("tasuki_provider")
        if provider is not None:
            status = response.status_code
            count = counted.get((provider, status))
            if count is None:
                count = counted[provider, status] = requests_total.labels(provider, str(status))
            count.inc()
            timer = timed.get(provider)
            if timer is None:
                timer = timed[provider] = latency.labels(provider)
            timer.observe(seconds)
        if not access_log.isEnabledFor(logging.INFO):
            return response  # a webhook's busiest path: no record built to be dropped
        access_log.info(
            '%s "%s %s" %s %.1f ms',
            request.remote_addr or "-",
            request.method,
            request.path,
            response.status_code,
            seconds * 1000,
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round(seconds * 1000, 1),
                "remote_addr": request.remote_addr,
            },
        )
        return response

    @app.teardown_request
    def _forget(_exc: BaseException | None) -> None:
        logs.clear()

    @app.get("/metrics")
    def metrics() -> tuple[str | bytes, int, dict[str, str]]:
        if token is None:
            return '{"error": "Not Found"}', 404, {"Content-Type": "application/json"}
        given = request.headers.get("Authorization", "")
        expected = f"Bearer {token.get_secret_value()}"
        if not hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode()):
            return (
                '{"error": "a bearer token is required"}',
                401,
                {"Content-Type": "application/json", "WWW-Authenticate": "Bearer"},
            )
        return generate_latest(registry), 200, {"Content-Type": CONTENT_TYPE_LATEST}
