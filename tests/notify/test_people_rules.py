"""Each notification rule about people's work, end to end: a change in the CRM, synced through
the real jobs, becomes a message in the emulated Slack workspace (or a real SMTP server's inbox
for a person with no Slack account), sent once."""

from __future__ import annotations

from datetime import timedelta

import worker
from tasuki import runtime
from tasuki.settings import Settings
from tasuki.store.db import Store
from tests.notify.channels import Channels, member
from tests.notify.support import (
    HOSTILE_NAME,
    NOW,
    PREV,
    MailServer,
    at,
    handoff,
    ledger_rows,
    new_crm,
    notify_settings,
    sync,
    synced,
)
from tests.slack.slack_emulator import RunningSlack, Workspace

RULES = """
destinations:
  managers: {slack: %(managers)s}
notifications:
  - {id: failed, event: handoff_failed, to: [sender], boundaries: [IS→FS]}
"""


def test_a_failed_handoff_tells_its_sender_what_to_fix_with_a_link_and_nothing_pings(
    settings: Settings,
    sqlite_store: Store,
    slack: RunningSlack,
    workspace: Workspace,
    channels: Channels,
) -> None:
    s = notify_settings(
        settings,
        RULES % {"managers": channels.managers},
        slack_url=slack.base_url,
        record_url="https://acme.my.salesforce.com/{id}",
    )
    crm = new_crm(s)
    handoff(crm, "006A", NOW - timedelta(hours=2), name=HOSTILE_NAME, Hearing_Notes__c="short")
    rt = synced(s, sqlite_store, crm)
    with runtime.activate(rt):
        figures = worker.notify(at=NOW.isoformat())
    assert figures["sent"] == 1
    [message] = workspace.posted_to(member(workspace, "IS1"))
    text = str(message.blocks)
    # What to fix, as the rules say it, and the record.
    assert "Hearing notes missing or too short" in text
    assert "&lt;https://acme.my.salesforce.com/006A|Open in the CRM&gt;" not in text
    assert "<https://acme.my.salesforce.com/006A|Open in the CRM>" in text
    # The deal's name neither pings nor formats: escaped, in plain_text blocks (which never
    # format) and a notification text posted with mrkdwn off.
    assert "<!channel>" not in text and "<!channel>" not in message.text
    header = message.blocks[0]
    assert header["type"] == "header" and header["text"]["type"] == "plain_text"
    assert "&lt;!channel&gt; *Big* deal &amp; &lt;b&gt;co&lt;/b&gt;" in header["text"]["text"]
    assert message.text.startswith("Handoff failed: &lt;!channel&gt; *Big* deal &amp;")
    assert message.args["mrkdwn"] is False
    # A second sweep, and a re-judged but unchanged verdict, send nothing more.
    sync(rt, crm)
    with runtime.activate(rt):
        again = worker.notify(at=(NOW + timedelta(minutes=5)).isoformat())
    assert again["sent"] == 0 and again["already"] == 1
    assert len(workspace.messages) == 1
    assert ledger_rows(sqlite_store) == [("failed", "person:IS1", "sent", "slack", "")]


def test_a_sender_who_fixes_part_of_it_hears_what_is_left_and_quiet_hours_wait(
    settings: Settings,
    sqlite_store: Store,
    slack: RunningSlack,
    workspace: Workspace,
    channels: Channels,
) -> None:
    s = notify_settings(settings, RULES % {"managers": channels.managers}, slack_url=slack.base_url)
    crm = new_crm(s)
    handoff(crm, "006A", NOW - timedelta(hours=2))
    rt = synced(s, sqlite_store, crm)
    evening = at(NOW.date(), 20, 30)
    with runtime.activate(rt):
        assert worker.notify(at=evening.isoformat())["deferred"] == 1
        assert workspace.messages == []
        # The next working hour of the company calendar: 09:00 of the next business day.
        morning = at(NOW.date() + timedelta(days=1), 9, 0)
        while not rt.calendar.is_business_day(morning.date()):
            morning += timedelta(days=1)
        assert worker.notify(at=(morning - timedelta(minutes=1)).isoformat())["sent"] == 0
        assert worker.notify(at=morning.isoformat())["sent"] == 1
        first = workspace.messages[-1]
        assert "Hearing notes missing" in str(first.blocks)
        crm.upsert(
            "Opportunity",
            "006A",
            {"Hearing_Notes__c": "課題はExcel管理の限界。来期に全社導入を検討中。"},
            at=morning,
            by="IS1",
        )
        sync(rt, crm)
        assert worker.notify(at=(morning + timedelta(minutes=5)).isoformat())["sent"] == 1
    second = workspace.messages[-1]
    assert len(workspace.messages) == 2
    assert "Hearing notes missing" not in str(second.blocks)
    assert "recording (MiiTel) is not attached" in str(second.blocks)
    # Who IS1 is in Slack was looked up once, then remembered.
    assert workspace.calls["users.lookupByEmail"] == 1


SLA_RULES = """
destinations:
  managers: {slack: %(managers)s}
notifications:
  - {id: warn, event: sla_warning, at: 0.75, to: [receiver], rules: [is-fs.fs-answer-sla]}
  - id: breach
    event: sla_breach
    to: [receiver_manager]
    fallback: managers
    rules: [is-fs.fs-answer-sla]
"""


def test_slas_warn_the_receiver_then_tell_the_manager_or_the_fallback_channel(
    settings: Settings,
    sqlite_store: Store,
    slack: RunningSlack,
    workspace: Workspace,
    channels: Channels,
    mail_server: MailServer,
) -> None:
    s = notify_settings(
        settings,
        SLA_RULES % {"managers": channels.managers},
        slack_url=slack.base_url,
        smtp_port=mail_server.port,
    )
    crm = new_crm(s)
    # 1 business day = 9 working hours; at NOW (10:30) these have used 7.5 h and 10 h.
    handoff(crm, "006W1", at(PREV, 12, 0), to="FS1")
    handoff(crm, "006W2", at(PREV, 12, 0), to="FS2")  # no Slack account: e-mail
    handoff(crm, "006B1", at(PREV, 9, 30), to="FS1")  # FS1's manager: FSM
    handoff(crm, "006B2", at(PREV, 9, 30), to="FS2")  # no manager: the managers channel
    handoff(crm, "006OK", at(PREV, 9, 30), to="FS1", FS_Accepted_At__c=at(PREV, 11, 0).isoformat())
    rt = synced(s, sqlite_store, crm)
    with runtime.activate(rt):
        figures = worker.notify(at=NOW.isoformat())
    assert figures["sent"] == 4 and figures["failed"] == 0
    [warning] = workspace.posted_to(member(workspace, "FS1"))
    assert "SLA 83% used: Deal 006W1" in warning.text
    assert "1h30m" in str(warning.blocks)  # of business time left
    [mail] = mail_server.inbox.to("fs2@acme.test")
    assert mail["Subject"] == "SLA 83% used: Deal 006W2 (IS→FS)"
    [breach] = workspace.posted_to(member(workspace, "FSM"))
    assert "SLA breached: Deal 006B1" in breach.text
    [fallback] = workspace.posted_to(channels.managers)
    assert "SLA breached: Deal 006B2" in fallback.text
    assert not any("006OK" in m.text for m in workspace.messages)
    with runtime.activate(rt):
        assert worker.notify(at=(NOW + timedelta(minutes=5)).isoformat())["sent"] == 0
    assert len(workspace.messages) == 3 and len(mail_server.inbox.messages) == 1


FEEDBACK_RULES = """
notifications:
  - {id: feedback, event: meeting_recording, to: [is_person, mk_person]}
"""


def test_the_fs_meeting_recording_goes_back_to_the_is_and_mk_people_behind_the_deal(
    settings: Settings, sqlite_store: Store, slack: RunningSlack, workspace: Workspace
) -> None:
    s = notify_settings(settings, FEEDBACK_RULES, slack_url=slack.base_url)
    crm = new_crm(s)
    crm.upsert(
        "Lead",
        "00QL1",
        {"OwnerId": "MK1", "Status": "New", "Company": "Kaisha"},
        at=NOW - timedelta(days=9),
        by="MK1",
    )
    crm.upsert(
        "Lead", "00QL1", {"OwnerId": "IS1", "Status": "MQL"}, at=NOW - timedelta(days=8), by="MK1"
    )
    meeting = NOW - timedelta(hours=2)
    handoff(
        crm,
        "006F",
        NOW - timedelta(days=3),
        Lead__c="00QL1",
        Meeting_Date__c=meeting.isoformat(),
        FS_Acceptance__c="Rejected",
        FS_Reject_Reason__c="予算未確定 (no budget yet)",
    )
    rt = synced(s, sqlite_store, crm)
    recording = {
        "event": "recording.completed",
        "event_ts": 1,
        "payload": {
            "object": {
                "uuid": "zoom-meeting-1",
                "topic": "Kaisha 商談",
                "start_time": meeting.isoformat(),
                "host_email": "fs1@acme.test",
                "share_url": "https://zoom.us/rec/share/kaisha",
                "recording_files": [],
            }
        },
    }
    with runtime.activate(rt):
        worker.ingest_recording("zoom", recording)
        assert worker.match_recordings()["linked"] == 1
        assert worker.notify(at=NOW.isoformat())["sent"] == 2
    for uid in ("IS1", "MK1"):
        [m] = workspace.posted_to(member(workspace, uid))
        assert "See how the customer reacted: Deal 006F" in m.text
        shown = str(m.blocks)
        assert "<https://zoom.us/rec/share/kaisha|watch on Zoom>" in shown
        assert "fs acceptance: Rejected" in shown and "予算未確定" in shown
