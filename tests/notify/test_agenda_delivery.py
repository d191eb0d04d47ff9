"""The handoff meeting's agenda delivered at ``meeting.deliver_at`` on business days: one
parent message and a thread reply per FS person when it is long, one ``chat.postMessage`` per
message and no other Slack call, an HTML + text mail, each once; an interrupted delivery goes
on in the same thread."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

import worker
from tasuki import runtime
from tasuki.meeting import build_agenda, slack_blocks
from tasuki.notify.outcome import DeliveryUnavailable
from tasuki.settings import Settings
from tasuki.store.db import Store
from tests.notify.channels import Channels
from tests.notify.support import (
    NOW,
    PREV,
    MailServer,
    at,
    handoff,
    new_crm,
    notify_settings,
    synced,
)
from tests.slack.slack_emulator import RunningSlack, Workspace

NO_RULES = "notifications: []\n"
DAY = NOW.date()


AgendaOrg = Callable[[dict[str, int]], runtime.Runtime]


@pytest.fixture
def agenda_org(
    settings: Settings,
    sqlite_store: Store,
    slack: RunningSlack,
    channels: Channels,
    mail_server: MailServer,
) -> AgendaOrg:
    """Makes the org with ``deals`` (FS person → how many handed to them the day before), its
    agenda sent to the handoffs channel and ``is-fs@acme.test``, synced; its runtime."""

    def make(deals: dict[str, int]) -> runtime.Runtime:
        s = notify_settings(
            settings,
            NO_RULES,
            slack_url=slack.base_url,
            smtp_port=mail_server.port,
            slack_channel=channels.handoffs,
            email_to=["is-fs@acme.test"],
        )
        crm = new_crm(s)
        n = 0
        for person, count in deals.items():
            for _ in range(count):
                n += 1
                handoff(crm, f"006M{n}", at(PREV, 11) + timedelta(minutes=10 * n), to=person)
        return synced(s, sqlite_store, crm)

    return make


def test_a_long_agenda_is_a_parent_and_a_thread_per_fs_person_each_message_one_call(
    agenda_org: AgendaOrg, workspace: Workspace, channels: Channels, mail_server: MailServer
) -> None:
    rt = agenda_org({"FS1": 4, "FS2": 3})
    deliver_at = at(DAY, 9, 45)
    with runtime.activate(rt):
        assert (
            worker.notify(at=(deliver_at - timedelta(minutes=5)).isoformat()).get("agenda_sent")
            is None
        )
        figures = worker.deliver_agenda(at=deliver_at.isoformat())
        expected = slack_blocks(build_agenda(rt.store, rt.settings, DAY, now=deliver_at))
    assert figures == {"messages": 3, "sent": 4} and len(expected) == 3
    parent, *replies = workspace.posted_to(channels.handoffs)
    assert parent.thread_ts is None and [r.thread_ts for r in replies] == [parent.ts] * 2
    assert "Fujita Saki" in str(replies[0].blocks) and "Fukuda Sou" in str(replies[1].blocks)
    assert [m.blocks for m in (parent, *replies)] == [list(m.blocks) for m in expected]
    # One chat.postMessage per message and nothing else: no look-up, no channel check.
    assert dict(workspace.calls) == {"chat.postMessage": 3}
    [mail] = mail_server.inbox.to("is-fs@acme.test")
    assert mail["Subject"].startswith("Handoff meeting IS→FS")
    assert [p.get_content_type() for p in mail.iter_parts()] == ["text/plain", "text/html"]
    # The scheduled job again, and the sweep until the meeting ends: nothing more.
    with runtime.activate(rt):
        assert worker.deliver_agenda(at=(deliver_at + timedelta(minutes=1)).isoformat()) == {
            "messages": 3
        }
        worker.notify(at=at(DAY, 10, 5).isoformat())
    assert dict(workspace.calls) == {"chat.postMessage": 3}
    assert len(mail_server.inbox.messages) == 1


def test_a_short_agenda_is_one_message_and_none_goes_out_on_a_day_off_or_after_the_meeting(
    agenda_org: AgendaOrg, workspace: Workspace
) -> None:
    rt = agenda_org({"FS1": 2})
    saturday = DAY + timedelta(days=(5 - DAY.weekday()) % 7)
    with runtime.activate(rt):
        assert worker.deliver_agenda(at=at(saturday, 9, 45).isoformat()) == {"messages": 0}
        assert worker.deliver_agenda(at=at(DAY, 10, 31).isoformat()) == {"messages": 0}
        assert workspace.messages == []
        # Missed at 09:45 (no worker): the sweep delivers it before the meeting.
        figures = worker.notify(at=at(DAY, 9, 55).isoformat())
    assert figures["agenda_sent"] == 2  # Slack and e-mail
    assert dict(workspace.calls) == {"chat.postMessage": 1}


def test_an_interrupted_delivery_goes_on_in_the_same_thread_without_repeating(
    agenda_org: AgendaOrg, workspace: Workspace, channels: Channels
) -> None:
    rt = agenda_org({"FS1": 4, "FS2": 3})
    workspace.inject(
        "unavailable", "chat.postMessage", times=3, after=1
    )  # Slack down after the parent
    with runtime.activate(rt), pytest.raises(DeliveryUnavailable):
        worker.deliver_agenda(at=at(DAY, 9, 45).isoformat())
    assert len(workspace.messages) == 1
    with runtime.activate(rt):
        worker.notify(at=at(DAY, 9, 50).isoformat())
    parent, *replies = workspace.posted_to(channels.handoffs)
    assert len(replies) == 2 and all(r.thread_ts == parent.ts for r in replies)
