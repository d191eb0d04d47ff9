"""Requests as each provider signs them, for the app with every receiver configured
(:func:`tests.webhooks.conftest.full_app`): a body and the headers that make it authentic.

Every recipe is written out here from the providers' documentation, independently of the code
under test (except the local scheme's documented sender helper, ``signed_headers``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr

from webhooks.local import signed_headers

WEBHOOK_SECRET = "test-webhook-secret"  # the conftest settings' TASUKI_WEBHOOK_SECRET
HUBSPOT_SECRET = "hubspot-fuzz-client-secret"
ZOOM_SECRET = "zoom-fuzz-secret"
MIITEL_TOKEN = "miitel-fuzz-token"
ORG_ID = "00D5j00000FUZZAAA"
PUBLIC_URL = "https://tasuki.example.com"

Headers = dict[str, str]


def local(body: bytes, now: float | None = None) -> Headers:
    """``/webhooks/local``: timestamp and HMAC of timestamp + body."""
    return signed_headers(WEBHOOK_SECRET, body, now)


def hubspot_v3(body: bytes, path: str = "/webhooks/hubspot", stamp: str | None = None) -> Headers:
    """HubSpot v3: base64 HMAC-SHA256 of method + URI + body + timestamp (milliseconds)."""
    stamp = str(int(time.time() * 1000)) if stamp is None else stamp
    text = body.decode("utf-8", "replace")
    message = f"POST{PUBLIC_URL}{path}{text}{stamp}".encode()
    mac = hmac.new(HUBSPOT_SECRET.encode(), message, hashlib.sha256).digest()
    return {
        "Content-Type": "application/json",
        "X-HubSpot-Signature-v3": base64.b64encode(mac).decode(),
        "X-HubSpot-Request-Timestamp": stamp,
    }


def hubspot_v1(body: bytes) -> Headers:
    """HubSpot v1: hex SHA-256 of client secret + body."""
    text = body.decode("utf-8", "replace")
    digest = hashlib.sha256(f"{HUBSPOT_SECRET}{text}".encode()).hexdigest()
    return {"X-HubSpot-Signature": digest, "X-HubSpot-Signature-Version": "v1"}


def salesforce_events(body: bytes) -> Headers:
    """The Apex relay of docs/salesforce.md: ``sha256=`` + hex HMAC-SHA256 of the body."""
    mac = hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Tasuki-Signature": f"sha256={mac}"}


def zoom(body: bytes, stamp: str | None = None) -> Headers:
    """Zoom: ``v0=`` + hex HMAC-SHA256 of ``v0:{timestamp}:{body}``."""
    stamp = str(int(time.time())) if stamp is None else stamp
    message = b"v0:" + stamp.encode() + b":" + body
    mac = hmac.new(ZOOM_SECRET.encode(), message, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "x-zm-request-timestamp": stamp,
        "x-zm-signature": f"v0={mac}",
    }


def miitel(token: str = MIITEL_TOKEN) -> Headers:
    """MiiTel: the token set under "Additional headers"."""
    return {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}


def outbound_message(
    notifications: Sequence[tuple[str, str]], *, org_id: str = ORG_ID, sobject: str = "Lead"
) -> bytes:
    """A Salesforce Outbound Message: one Notification per (notification id, record id), every
    text XML-escaped (a character XML cannot hold still makes the document unreadable)."""
    items = "".join(
        f"<Notification><Id>{escape(nid)}</Id>"
        f"<sObject xsi:type={quoteattr('sf:' + sobject)} "
        'xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
        f"<sf:Id>{escape(rid)}</sf:Id></sObject></Notification>"
        for nid, rid in notifications
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
        '<notifications xmlns="http://soap.sforce.com/2005/09/outbound">'
        f"<OrganizationId>{escape(org_id)}</OrganizationId>{items}"
        "</notifications></soapenv:Body></soapenv:Envelope>"
    ).encode("utf-8", "surrogatepass")
