"""The emulator speaks Slack's Web API as the unmodified ``slack_sdk`` expects it: the same
client code that talks to slack.com works against it through ``base_url``, with Slack's
answers, errors, 429s and 5xx."""

from __future__ import annotations

import time
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from tests.slack.slack_emulator import RunningSlack, Workspace
from tests.slack.support import BOT_TOKEN


def _client(slack: RunningSlack, token: str = BOT_TOKEN, **options: Any) -> WebClient:
    return WebClient(token=token, base_url=slack.base_url, timeout=5, **options)


def _error(call: Any) -> tuple[int, dict[str, Any]]:
    with pytest.raises(SlackApiError) as caught:
        call()
    data = caught.value.response.data
    assert isinstance(data, dict)
    return caught.value.response.status_code, data


def test_post_message_with_blocks_and_a_thread_and_a_direct_message(
    slack: RunningSlack, workspace: Workspace
) -> None:
    channel = workspace.add_channel("handoffs")
    user = workspace.add_user("sato@acme.test", "Sato")
    client = _client(slack)
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*agenda*"}}]
    parent = client.chat_postMessage(channel=channel, text="agenda", blocks=blocks)
    assert parent["ok"] is True and parent["channel"] == channel
    assert parent["message"]["blocks"] == blocks and parent["message"]["bot_id"]
    reply = client.chat_postMessage(channel=channel, text="FS1", thread_ts=parent["ts"])
    assert reply["message"]["thread_ts"] == parent["ts"] and reply["ts"] > parent["ts"]
    dm = client.chat_postMessage(channel=user, text="to fix")
    assert dm["channel"].startswith("D")
    assert [m.thread_ts for m in workspace.posted_to(channel)] == [None, parent["ts"]]
    assert [m.text for m in workspace.posted_to(user)] == ["to fix"]
    assert workspace.calls["chat.postMessage"] == 3


def test_lookup_by_email_and_conversations_info_answer_as_slack_does(
    slack: RunningSlack, workspace: Workspace
) -> None:
    uid = workspace.add_user("Sato@Acme.test", "Sato")
    gone = workspace.add_user("old@acme.test", "Old", deleted=True)
    channel = workspace.add_channel("sales-ops")
    client = _client(slack)
    found = client.users_lookupByEmail(email="sato@acme.test")
    assert found["user"]["id"] == uid and found["user"]["profile"]["email"] == "Sato@Acme.test"
    assert client.users_lookupByEmail(email="old@acme.test")["user"]["deleted"] is True
    assert gone in workspace.users
    assert _error(lambda: client.users_lookupByEmail(email="nobody@acme.test")) == (
        200,
        {"ok": False, "error": "users_not_found"},
    )
    info = client.conversations_info(channel=channel)["channel"]
    assert (info["id"], info["name"], info["is_member"], info["is_private"]) == (
        channel,
        "sales-ops",
        True,
        False,
    )
    assert _error(lambda: client.conversations_info(channel="C0MISSING"))[1]["error"] == (
        "channel_not_found"
    )


@pytest.mark.parametrize(
    ("arrange", "error"),
    [
        (lambda ws: ws.add_token("xoxb-other", scopes=("users:read",)), "missing_scope"),
        (lambda ws: ws.revoke(BOT_TOKEN), "token_revoked"),
        (lambda ws: None, "channel_not_found"),
    ],
)
def test_errors_are_slacks_own(
    slack: RunningSlack, workspace: Workspace, arrange: Any, error: str
) -> None:
    arrange(workspace)
    token = "xoxb-other" if error == "missing_scope" else BOT_TOKEN
    channel = "C0MISSING" if error == "channel_not_found" else workspace.add_channel("x")
    status, body = _error(lambda: _client(slack, token).chat_postMessage(channel=channel, text="t"))
    assert status == 200 and body["ok"] is False and body["error"] == error
    if error == "missing_scope":
        assert (body["needed"], body["provided"]) == ("chat:write", "users:read")
    assert workspace.messages == []


def test_unknown_and_missing_tokens_and_channels_the_bot_is_not_in(
    slack: RunningSlack, workspace: Workspace
) -> None:
    channel = workspace.add_channel("private-ish", member=False)
    archived = workspace.add_channel("old", archived=True)
    assert _error(lambda: _client(slack, "xoxb-nope").auth_test())[1]["error"] == "invalid_auth"
    assert _error(lambda: _client(slack, "").auth_test())[1]["error"] == "not_authed"
    client = _client(slack)
    assert _error(lambda: client.chat_postMessage(channel=channel, text="x"))[1]["error"] == (
        "not_in_channel"
    )
    assert _error(lambda: client.chat_postMessage(channel=archived, text="x"))[1]["error"] == (
        "is_archived"
    )
    general = workspace.add_channel("general")
    empty = _error(lambda: client.api_call("chat.postMessage", json={"channel": general}))
    assert empty[1]["error"] == "no_text"
    assert client.auth_test()["bot_id"]


def test_429_carries_retry_after_which_the_sdks_handler_honours(
    slack: RunningSlack, workspace: Workspace
) -> None:
    channel = workspace.add_channel("general")
    workspace.inject("ratelimited", "chat.postMessage", retry_after=1)
    plain = _client(slack)
    with pytest.raises(SlackApiError) as caught:
        plain.chat_postMessage(channel=channel, text="x")
    response = caught.value.response
    assert response.status_code == 429 and response.headers["Retry-After"] == "1"
    assert response.data == {"ok": False, "error": "ratelimited"}
    workspace.inject("ratelimited", "chat.postMessage", retry_after=1)
    patient = _client(slack, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)])
    began = time.monotonic()
    assert patient.chat_postMessage(channel=channel, text="x")["ok"]
    assert time.monotonic() - began >= 1.0
    assert len(workspace.messages) == 1


def test_5xx_before_or_after_the_work_and_a_dropped_connection(
    slack: RunningSlack, workspace: Workspace
) -> None:
    channel = workspace.add_channel("general")
    client = _client(slack, retry_handlers=[ServerErrorRetryHandler(max_retry_count=1)])
    workspace.inject("unavailable", "chat.postMessage")
    assert client.chat_postMessage(channel=channel, text="a")["ok"]  # retried once
    assert len(workspace.messages) == 1
    workspace.inject("internal_error", "chat.postMessage")
    status, body = _error(lambda: _client(slack).chat_postMessage(channel=channel, text="b"))
    assert (status, body["error"]) == (500, "internal_error")
    assert len(workspace.messages) == 2  # done, although the answer says otherwise
    workspace.inject("drop", "chat.postMessage")
    with pytest.raises(ConnectionError):
        _client(slack, retry_handlers=[]).chat_postMessage(channel=channel, text="c")
    assert len(workspace.messages) == 3
    assert [(s, e) for m, s, e in workspace.log if m == "chat.postMessage"] == [
        (503, "service_unavailable"),
        (200, None),
        (500, "internal_error"),
        (0, "dropped"),
    ]
