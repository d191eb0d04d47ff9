"""The demo org's calls and meetings, as MiiTel and Zoom would send them, signed like they do.

Built from the generated org in the embedded CRM, deterministically (each decision is seeded by
the org's seed and the deal's id): an IS rep's qualifying call to the lead's phone for 80% of
the deals (what the org used to write straight into ``Call_Recording_URL__c``), and for 75% of
the meetings FS held, a Zoom recording hosted by the deal's FS rep with a participant from the
lead's company. The numbers are written the way phone systems write them (``+81…``, ``0…``), not
the way the CRM holds them, so matching has to normalise.
"""

from __future__ import annotations

import hashlib
import json
import random
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import SecretStr

from connectors.local import LocalCrm
from tasuki.demo import DemoFailed
from tasuki.recordings.phones import to_e164
from tasuki.recordings.zoom import signature
from tasuki.settings import Settings

CALL_SHARE = 0.8
"""Share of deals whose qualifying call was recorded (as the org generator always had it)."""
MEETING_SHARE = 0.75
"""Share of held meetings recorded on Zoom."""
COMPANY_LINE = "+81 50-1234-0000"
"""The demo company's own outgoing line (matches no lead)."""
ZOOM_SECRET = "TASUKI_ZOOM_SECRET_TOKEN"
MIITEL_TOKEN = "TASUKI_MIITEL_TOKEN"


@dataclass(frozen=True)
class Delivery:
    """One provider request: where it goes and its JSON body."""

    path: str
    body: dict[str, Any]


@dataclass
class RecordingsSent:
    """What the demo's phone and meeting systems sent."""

    calls: int = 0
    meetings: int = 0
    requests: int = 0
    duplicates: int = 0
    extra: dict[str, int] = field(default_factory=dict)


def _rng(seed: str, oid: str, what: str) -> random.Random:
    return random.Random(f"{seed}:{oid}:{what}")


def _all(crm: LocalCrm, obj: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    cursor: str | None = None
    while True:
        page = crm.changes(obj, cursor, [])
        out.update({r.id: r.fields for r in page.records if not r.deleted})
        cursor = page.cursor
        if not page.more:
            return out


def _zoom_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _written(phone: str, rng: random.Random) -> str:
    e164 = to_e164(phone) or phone
    return e164 if rng.random() < 0.5 else "0" + e164.removeprefix("+81")


def deliveries(crm: LocalCrm, seed: str) -> Iterator[Delivery]:
    """The org's MiiTel call events and Zoom events, in a stable order."""
    users = _all(crm, "User")
    leads = _all(crm, "Lead")
    deals = _all(crm, "Opportunity")
    stages = crm.history("Opportunity", sorted(deals), ["StageName"])
    held = {c.record_id: c.at for c in stages if c.new == "Proposal"}
    for oid in sorted(deals):
        deal = deals[oid]
        lead = leads.get(str(deal.get("Lead__c")), {})
        rng = _rng(seed, oid, "call")
        if rng.random() < CALL_SHARE:
            yield _call(oid, deal, lead, users, rng)
        if oid in held:
            rng = _rng(seed, oid, "meeting")
            if rng.random() < MEETING_SHARE:
                yield from _meeting(oid, deal, lead, users, held[oid], rng)


def _call(
    oid: str,
    deal: dict[str, Any],
    lead: dict[str, Any],
    users: dict[str, dict[str, Any]],
    rng: random.Random,
) -> Delivery:
    rep_id = str(deal.get("IS_Owner__c"))
    booked = datetime.fromisoformat(str(deal["CreatedDate"]))
    at = booked - timedelta(minutes=rng.randint(10, 90))
    phone = lead.get("Phone")
    # A lead with no phone in the CRM was still called: on a number the CRM does not know.
    dialled = _written(phone, rng) if phone else f"+8190{rng.randint(10**7, 10**8 - 1)}"
    call_id = hashlib.sha1(f"call:{oid}".encode()).hexdigest()[:20]
    return Delivery(
        "/webhooks/miitel",
        {
            "event": "call.analysis_completed",
            "call": {
                "id": call_id,
                "url": f"https://demo.miitel.jp/app/calls/{call_id}",
                "details": [
                    {
                        "dial_start_at": at.astimezone(UTC).isoformat(),
                        "from_number": COMPANY_LINE,
                        "to_number": dialled,
                        "user": {
                            "id": f"miitel-{rep_id[-4:]}",
                            "email": users.get(rep_id, {}).get("Email", ""),
                        },
                    }
                ],
            },
        },
    )


def _meeting(
    oid: str,
    deal: dict[str, Any],
    lead: dict[str, Any],
    users: dict[str, dict[str, Any]],
    at: datetime,
    rng: random.Random,
) -> Iterator[Delivery]:
    host = users.get(str(deal.get("OwnerId")), {}).get("Email", "")
    email = str(lead.get("Email") or "")
    domain = email.rsplit("@", 1)[-1] if "@" in email else "unknown.example.jp"
    guest = email if rng.random() < 0.5 else f"member{rng.randint(1, 99)}@{domain}"
    uuid = hashlib.sha1(f"zoom:{oid}".encode()).hexdigest()[:22] + "=="
    meeting = {
        "uuid": uuid,
        "id": int(hashlib.sha1(oid.encode()).hexdigest()[:9], 16),
        "host_id": f"zoom-{str(deal.get('OwnerId'))[-4:]}",
        "topic": str(deal.get("Name") or "商談"),
        "start_time": _zoom_time(at),
        "timezone": "Asia/Tokyo",
    }
    ts = int(at.timestamp() * 1000)
    for n, who in enumerate((host, guest)):
        yield Delivery(
            "/webhooks/zoom",
            {
                "event": "meeting.participant_joined",
                "event_ts": ts + n,
                "payload": {
                    "account_id": "demo",
                    "object": {
                        **meeting,
                        "participant": {"user_name": who.split("@")[0], "email": who},
                    },
                },
            },
        )
    token = hashlib.sha1(f"share:{oid}".encode()).hexdigest()
    yield Delivery(
        "/webhooks/zoom",
        {
            "event": "recording.completed",
            "event_ts": ts + 3_600_000,
            "payload": {
                "account_id": "demo",
                "object": {
                    **meeting,
                    "host_email": host,
                    "duration": 60,
                    "share_url": f"https://zoom.us/rec/share/{token}",
                    "recording_count": 1,
                    "recording_files": [
                        {
                            "id": token[:12],
                            "recording_start": _zoom_time(at),
                            "recording_end": _zoom_time(at + timedelta(hours=1)),
                            "file_type": "MP4",
                            "recording_type": "shared_screen_with_speaker_view",
                            "status": "completed",
                        }
                    ],
                },
            },
        },
    )


def with_provider_secrets(settings: Settings) -> Settings:
    """``settings`` with a Zoom secret token and a MiiTel token, one-off ones when unset: the
    demo's app lives only inside this process."""
    extra = {
        name: SecretStr(secrets.token_hex(16))
        for name in (ZOOM_SECRET, MIITEL_TOKEN)
        if settings.secret(name) is None
    }
    return replace(settings, secrets={**settings.secrets, **extra}) if extra else settings


def headers_for(settings: Settings, d: Delivery, body: bytes, now: float) -> dict[str, str]:
    """The headers the provider would send with ``body``."""
    if d.path.endswith("/zoom"):
        secret = settings.secret(ZOOM_SECRET)
        assert secret is not None
        ts = str(int(now))
        return {
            "x-zm-request-timestamp": ts,
            "x-zm-signature": signature(secret.get_secret_value(), ts, body),
        }
    token = settings.secret(MIITEL_TOKEN)
    assert token is not None
    return {"Authorization": f"Bearer {token.get_secret_value()}"}


def deliver(
    crm: LocalCrm,
    client: Any,
    settings: Settings,
    seed: str,
    progress: Callable[[str, int, int], None] | None = None,
) -> RecordingsSent:
    """POST every call and meeting event of the org to the app, signed; counts what was sent."""
    sent = RecordingsSent()
    todo = list(deliveries(crm, seed))
    for n, d in enumerate(todo, 1):
        body = json.dumps(d.body, ensure_ascii=False).encode()
        headers = {
            "Content-Type": "application/json",
            **headers_for(settings, d, body, time.time()),
        }
        response = client.post(d.path, data=body, headers=headers)
        if response.status_code != 200:
            raise DemoFailed(
                f"{d.path} answered {response.status_code}: {response.get_data(as_text=True)}"
            )
        answer = response.get_json(silent=True) or {}
        sent.requests += 1
        sent.duplicates += int(answer.get("duplicates", 0))
        if d.body.get("event") == "recording.completed":
            sent.meetings += 1
        elif d.path.endswith("/miitel"):
            sent.calls += 1
        if progress and (n % 50 == 0 or n == len(todo)):
            progress("Calls and meetings", n, len(todo))
    return sent
