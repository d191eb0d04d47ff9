"""Provider payloads: Zoom's signature and URL validation as Zoom documents them, MiiTel's
challenge, and both read into captures through the configurable paths."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from tasuki.recordings import miitel, zoom
from tasuki.recordings.capture import compact, gather, values_at
from tasuki.recordings.config import MiitelConfig, MiitelFields, ZoomConfig

SECRET = "zoom-secret"
BODY = b'{"event":"recording.completed"}'
NOW = 1658940994.0


def test_the_signature_is_v0_hex_hmac_of_v0_timestamp_body() -> None:
    # Computed outside Python: printf 'v0:1658940994:{...}' | openssl dgst -sha256 -hmac ...
    expected = "v0=d6b5f5ee33251df2110beedd6d98b27328379e6c63d8fd9c38cd54d65209f126"
    assert zoom.signature(SECRET, "1658940994", BODY) == expected
    mine = hmac.new(SECRET.encode(), b"v0:1658940994:" + BODY, hashlib.sha256).hexdigest()
    assert expected == f"v0={mine}"


def test_the_url_validation_answer_is_the_hmac_of_the_plain_token() -> None:
    answer = zoom.url_validation_answer(SECRET, "qgg8vlvZRS6UYooatFL8Aw")
    assert answer == {
        "plainToken": "qgg8vlvZRS6UYooatFL8Aw",
        "encryptedToken": "b17f0320a1322a509340a1a835b3d9edbc491f0b0790ed2d20d0604d39dfe922",
    }


@pytest.mark.parametrize(
    ("timestamp", "sig", "body", "now", "problem"),
    [
        ("1658940994", zoom.signature(SECRET, "1658940994", BODY), BODY, NOW, None),
        # Zoom's clock a little ahead or behind is fine
        ("1658940994", zoom.signature(SECRET, "1658940994", BODY), BODY, NOW + 299, None),
        ("1658940994", zoom.signature(SECRET, "1658940994", BODY), BODY, NOW - 120, None),
        # stale: a replay of a genuine request
        ("1658940994", zoom.signature(SECRET, "1658940994", BODY), BODY, NOW + 301, "stale"),
        # forged: signed with another secret
        ("1658940994", zoom.signature("other", "1658940994", BODY), BODY, NOW, "bad signature"),
        # the timestamp changed after signing
        ("1658940995", zoom.signature(SECRET, "1658940994", BODY), BODY, NOW, "bad signature"),
        # the body re-serialised (spaces added): the raw bytes are what was signed
        (
            "1658940994",
            zoom.signature(SECRET, "1658940994", BODY),
            json.dumps(json.loads(BODY)).encode(),
            NOW,
            "bad signature",
        ),
        ("", "v0=00", BODY, NOW, "missing"),
        ("1658940994", None, BODY, NOW, "missing"),
        ("yesterday", "v0=00", BODY, NOW, "bad x-zm-request-timestamp"),
        ("1658940994", "d6b5f5ee", BODY, NOW, "bad signature"),
    ],
)
def test_signature_edge_cases(
    timestamp: str, sig: str | None, body: bytes, now: float, problem: str | None
) -> None:
    found = zoom.signature_problem(SECRET, timestamp, sig, body, now)
    assert (found is None) if problem is None else (found is not None and problem in found)


def _completed(**extra: Any) -> dict[str, Any]:
    obj = {
        "uuid": "4444AAAiAAAAAiAiAiiAii==",
        "id": 6840331990,
        "host_id": "z8dfkgABBBBBBBfp8uQ",
        "topic": "商談 12",
        "start_time": "2026-11-20T05:00:00Z",
        "host_email": "Noah.Bennett@Example.co.jp",
        "share_url": "https://zoom.us/rec/share/abc",
        "recording_files": [{"id": "f1", "file_type": "MP4"}],
        **extra,
    }
    return {
        "event": "recording.completed",
        "event_ts": 1,
        "payload": {"object": obj},
        "download_token": "t",
    }


def test_recording_completed_becomes_a_meeting_capture() -> None:
    cap = zoom.parse(_completed(), ZoomConfig())
    assert cap is not None
    assert (cap.kind.value, cap.external_id, cap.url) == (
        "meeting",
        "4444AAAiAAAAAiAiAiiAii==",
        "https://zoom.us/rec/share/abc",
    )
    assert cap.at == datetime(2026, 11, 20, 5, tzinfo=UTC)
    assert cap.host_email == "noah.bennett@example.co.jp"
    assert cap.title == "商談 12" and cap.missing == ()


def test_a_participant_joined_event_carries_one_participant_email() -> None:
    body = {
        "event": "meeting.participant_joined",
        "event_ts": 5,
        "payload": {"object": {"uuid": "u1", "participant": {"email": "Ken@Corp.example.jp"}}},
    }
    cap = zoom.parse(body, ZoomConfig())
    assert cap is not None and cap.url == "" and cap.emails == ("ken@corp.example.jp",)
    assert zoom.delivery_id(body, ZoomConfig()) != zoom.delivery_id(
        {**body, "event_ts": 6}, ZoomConfig()
    )


def test_other_zoom_events_are_not_kept_and_a_recording_is_one_delivery() -> None:
    assert zoom.parse({"event": "meeting.started", "payload": {}}, ZoomConfig()) is None
    a, b = _completed(), _completed()
    b["event_ts"] = 2  # Zoom's retry of the same recording
    assert zoom.delivery_id(a, ZoomConfig()) == zoom.delivery_id(b, ZoomConfig())


def test_a_recording_without_share_url_is_kept_with_what_is_missing() -> None:
    body = _completed()
    del body["payload"]["object"]["share_url"]
    cap = zoom.parse(body, ZoomConfig())
    assert cap is not None and cap.missing == ("url",)


def _call(**detail: Any) -> dict[str, Any]:
    d = {
        "dial_start_at": "2026-11-20T10:00:00+09:00",
        "from_number": "+81 50-1234-0000",
        "to_number": "0312345678",
        "user": {"id": "u-9", "email": "Sho.Takahashi@example.co.jp"},
        **detail,
    }
    return {
        "event": "call.analysis_completed",
        "call": {"id": "c1", "url": "https://x.miitel.jp/app/calls/c1", "details": [d]},
    }


def test_miitel_challenge_is_recognised_and_nothing_else_is() -> None:
    cfg = MiitelConfig()
    assert miitel.challenge_token({"challenge": "9f8e7d"}, cfg) == "9f8e7d"
    assert miitel.challenge_token(_call(), cfg) is None
    assert miitel.challenge_token(["challenge"], cfg) is None


def test_a_call_event_becomes_a_call_capture() -> None:
    cap = miitel.parse(_call(), MiitelConfig())
    assert cap.kind.value == "call" and cap.external_id == "c1"
    assert cap.phones == ("+81 50-1234-0000", "0312345678")
    assert cap.host_email == "sho.takahashi@example.co.jp" and cap.user_id == "u-9"
    assert cap.at == datetime(2026, 11, 20, 1, tzinfo=UTC)
    assert cap.missing == ()


def test_own_lines_are_left_out_and_the_user_map_wins() -> None:
    cfg = MiitelConfig(own_numbers=["+81 50-1234-0000"], users={"u-9": "sho@corp.jp"})
    cap = miitel.parse(_call(), cfg)
    assert cap.phones == ("0312345678",) and cap.host_email == "sho@corp.jp"


def test_fields_missing_from_a_call_are_named_not_guessed() -> None:
    body = {"event": "call.finished", "something": {"else": 1}}
    cap = miitel.parse(body, MiitelConfig())
    assert set(cap.missing) == {"call_id", "url", "started_at", "phones", "user_email"}
    assert cap.external_id.startswith("sha256:")  # still one id per distinct delivery
    assert miitel.delivery_id(body, MiitelConfig()) == cap.external_id


def test_configured_paths_read_a_differently_shaped_payload() -> None:
    body = {
        "data": {
            "callId": 77,
            "startedAt": 1763600000,
            "caller": "03-1234-5678",
            "callee": "090-1234-5678",
            "agent": "a@b.jp",
        }
    }
    cfg = MiitelConfig(
        fields=MiitelFields(
            call_id=["data.callId"],
            started_at=["data.startedAt"],
            phones=["data.caller", "data.callee"],
            user_email=["data.agent"],
            url=[],
        ),
        url_template="https://co.miitel.jp/app/calls/{call_id}",
    )
    cap = miitel.parse(body, cfg)
    assert cap.external_id == "77" and cap.url == "https://co.miitel.jp/app/calls/77"
    assert cap.phones == ("03-1234-5678", "090-1234-5678") and cap.missing == ()
    assert cap.at == datetime.fromtimestamp(1763600000, UTC)


def test_paths_walk_lists_and_pick_items() -> None:
    doc = {"a": [{"b": 1}, {"b": 2}, {"c": 3}], "d": {"e": ""}}
    assert values_at(doc, "a[].b") == [1, 2]
    assert values_at(doc, "a.1.b") == [2]
    assert values_at(doc, "a.9.b") == [] and values_at(doc, "d.e") == []
    assert gather(doc, ["a[].b", "a.0.b"]) == ["1", "2"]


def test_a_huge_payload_is_compacted_to_the_limit() -> None:
    body = {"call": {"id": "c1"}, "transcript": ["言葉" * 50] * 2000}
    small = compact(body, 4096)
    assert small["call"] == {"id": "c1"}
    assert len(json.dumps(small, ensure_ascii=False).encode()) <= 4096
    assert compact({"x": 1}, 4096) == {"x": 1}
