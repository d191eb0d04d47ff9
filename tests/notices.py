"""Delivering the embedded CRM's pending change notices to the app, signed, as the CRM would,
and a test client that plays ``tasuki serve``'s taker between requests."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from connectors.local import LocalCrm
from webhooks import services
from webhooks.intake import Intake
from webhooks.local import signed_headers


class TakingClient(FlaskClient):
    """A test client that, after each webhook answered 200, does what ``tasuki serve``'s taker
    thread does a few milliseconds later: moves what was accepted into the store and queues its
    jobs (:meth:`~webhooks.intake.Intake.store_waiting`). So a test sees the state a served app
    reaches, deterministically; the answer itself still came from Redis alone."""

    def __init__(self, *args: Any, intakes: Sequence[Intake] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        app = self.application
        self.intakes = list(intakes) or (
            [services(app).intake] if "tasuki" in app.extensions else []
        )

    def open(self, *args: Any, **kwargs: Any) -> TestResponse:
        response = super().open(*args, **kwargs)
        if response.status_code == 200 and response.request.path.startswith("/webhooks/"):
            for intake in self.intakes:
                intake.store_waiting()
        return response


def taking_client(app: Flask, *intakes: Intake) -> FlaskClient:
    """A :class:`TakingClient` of ``app``, taking for ``intakes`` (default: the app's own)."""
    return TakingClient(app, app.response_class, use_cookies=True, intakes=intakes)


NOTICES_PER_POST = 100


@dataclass(frozen=True)
class Delivered:
    """What :func:`deliver_pending` sent."""

    requests: int
    notices: int


def deliver_pending(app: Flask, crm: LocalCrm, secret: str) -> Delivered:
    """POST every pending notice of ``crm`` to ``/webhooks/local``, 100 to a request; each must
    be answered 200."""
    requests = notices = 0
    with taking_client(app) as client:
        while batch := crm.pending_notices(NOTICES_PER_POST):
            body = json.dumps(
                {
                    "notices": [
                        {"id": f"local:{seq}", "object": o, "record_ids": [r], "changed_by": by}
                        for seq, o, r, by in batch
                    ]
                }
            ).encode()
            answer = client.post("/webhooks/local", data=body, headers=signed_headers(secret, body))
            assert answer.status_code == 200, answer.get_data(as_text=True)
            crm.mark_delivered([seq for seq, *_ in batch])
            requests += 1
            notices += len(batch)
    return Delivered(requests, notices)
