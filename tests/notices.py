"""Delivering the embedded CRM's pending change notices to the app, signed, as the CRM would."""

from __future__ import annotations

import json
from dataclasses import dataclass

from flask import Flask

from connectors.local import LocalCrm
from webhooks.local import signed_headers

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
    with app.test_client() as client:
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
