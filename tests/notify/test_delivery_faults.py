"""Nothing lost, nothing sent twice: a retried job, two workers at once, Slack's 429 and 5xx,
an answer that never came, a worker that stopped mid-send, a wrong channel, a revoked token and
a mail server that is down. Every outcome is in the ledger with what Slack or the server said."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

import worker
from tasuki import runtime, startup
from tasuki.notify import ledger, sweep
from tasuki.notify.cli import notify_group
from tasuki.notify.outcome import DeliveryUnavailable
from tasuki.settings import Settings
from tasuki.store.db import Store, open_store
from tasuki.store.models import NotificationEntry
from tests.notify.channels import Channels, member
from tests.notify.support import (
    BOT_TOKEN,
    NOW,
    MailServer,
    handoff,
    ledger_rows,
    new_crm,
    notify_settings,
    synced,
)
from tests.slack.slack_emulator import RunningSlack, Workspace

RULES = """
destinations:
  ops: {slack: %(ops)s, email: [ops@acme.test]}
  nowhere: {slack: C0NOSUCHCHANNEL}
notifications:
  - {id: failed, event: handoff_failed, to: [sender], boundaries: [IS→FS]}
  - {id: failed-ops, event: handoff_failed, to: [nowhere], boundaries: [IS→FS]}
  - {id: delivery, event: delivery_failed, to: [ops], via: [email, slack], when: any_time}
"""
SENDER_ONLY = """
notifications:
  - {id: failed, event: handoff_failed, to: [sender], boundaries: [IS→FS]}
"""


def _org(settings: Settings, store: Store, rules: str, **kw: object) -> runtime.Runtime:
    s = notify_settings(settings, rules, **kw)  # type: ignore[arg-type]
    crm = new_crm(s)
    for n in range(3):
        handoff(crm, f"006D{n}", NOW - timedelta(hours=2 + n))
    return synced(s, store, crm)


def test_a_job_run_twice_and_two_workers_at_once_send_each_message_once(
    settings: Settings, store: Store, slack: RunningSlack, workspace: Workspace
) -> None:
    rt = _org(settings, store, SENDER_ONLY, slack_url=slack.base_url)
    url = store.engine.url.render_as_string(hide_password=False)
    # Two workers: their own runtimes and connections to the same store, starting together.
    workers = [
        startup.assemble(rt.settings, open_store(url), rt.connector, rt.redis_connection)
        for _ in range(2)
    ]
    start = threading.Barrier(len(workers))
    reports: list[sweep.Report] = []

    def work(wrt: runtime.Runtime) -> None:
        start.wait()
        reports.append(sweep.run(wrt, NOW))

    threads = [threading.Thread(target=work, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for w in workers:
        w.store.engine.dispose()
    assert len(workspace.posted_to(member(workspace, "IS1"))) == 3
    sent = sum(r.outcomes["sent"] for r in reports)
    others = sum(r.outcomes["taken"] + sum(r.already.values()) for r in reports)
    assert (sent, others) == (3, 3)
    # The job run again (RQ's retry, the next sweep) sends nothing.
    with runtime.activate(rt):
        assert worker.notify(at=NOW.isoformat())["sent"] == 0
    assert len(workspace.messages) == 3


def test_429_is_waited_out_as_retry_after_says_and_a_passing_503_is_retried(
    settings: Settings, sqlite_store: Store, slack: RunningSlack, workspace: Workspace
) -> None:
    rt = _org(settings, sqlite_store, SENDER_ONLY, slack_url=slack.base_url)
    workspace.inject("ratelimited", "chat.postMessage", retry_after=1)
    workspace.inject("unavailable", "chat.postMessage", after=1)
    began = time.monotonic()
    with runtime.activate(rt):
        figures = worker.notify(at=NOW.isoformat())
    assert time.monotonic() - began >= 1.0
    assert figures["sent"] == 3 and figures["retry"] == 0
    posts = [
        (status, error) for method, status, error in workspace.log if method == "chat.postMessage"
    ]
    assert posts.count((429, "ratelimited")) == 1
    assert posts.count((503, "service_unavailable")) == 1
    assert len(workspace.messages) == 3


def test_slack_down_fails_the_job_and_the_retry_sends_what_is_owed_once(
    settings: Settings, sqlite_store: Store, slack: RunningSlack, workspace: Workspace
) -> None:
    rt = _org(settings, sqlite_store, SENDER_ONLY, slack_url=slack.base_url)
    workspace.inject("unavailable", "chat.postMessage", times=3)  # every try of the first send
    with runtime.activate(rt), pytest.raises(DeliveryUnavailable):
        worker.notify(at=NOW.isoformat())
    statuses = sorted(status for _, _, status, _, _ in ledger_rows(sqlite_store))
    assert statuses == ["pending", "sent", "sent"]
    assert len(workspace.messages) == 2
    with runtime.activate(rt):
        assert worker.notify(at=(NOW + timedelta(minutes=5)).isoformat())["sent"] == 1
        assert worker.notify(at=(NOW + timedelta(minutes=10)).isoformat())["sent"] == 0
    assert len(workspace.messages) == 3


def test_an_answer_that_may_follow_a_post_is_recorded_unknown_and_never_resent(
    settings: Settings, sqlite_store: Store, slack: RunningSlack, workspace: Workspace
) -> None:
    rt = _org(settings, sqlite_store, SENDER_ONLY, slack_url=slack.base_url)
    workspace.inject("internal_error", "chat.postMessage")  # posted, then a 500
    workspace.inject("drop", "chat.postMessage")  # posted, then no answer at all
    with runtime.activate(rt):
        figures = worker.notify(at=NOW.isoformat())
        assert (figures["sent"], figures["unknown"]) == (1, 2)
        assert worker.notify(at=(NOW + timedelta(minutes=5)).isoformat())["sent"] == 0
    errors = sorted(e for _, _, s, _, e in ledger_rows(sqlite_store) if s == "unknown")
    assert errors[0] == "internal_error" and errors[1].startswith("no answer")
    # Slack did post all three; none twice.
    assert len(workspace.messages) == 3
    posts = [m for m, *_ in workspace.log if m == "chat.postMessage"]
    assert len(posts) == 3


def test_a_worker_stopped_mid_send_leaves_an_unknown_outcome_not_a_second_message(
    settings: Settings, sqlite_store: Store, slack: RunningSlack, workspace: Workspace
) -> None:
    rt = _org(settings, sqlite_store, SENDER_ONLY, slack_url=slack.base_url)
    with runtime.activate(rt):
        planned = sweep.run(rt, NOW, dry_run=True).due
    # A worker claimed the first message, and was killed before it recorded what Slack said.
    ledger.claim(sqlite_store, planned[0].key, NOW - ledger.SEND_LEASE - timedelta(minutes=1))
    with runtime.activate(rt):
        figures = worker.notify(at=NOW.isoformat())
    assert figures["sent"] == 2
    with sqlite_store.session() as s:
        found = s.scalars(
            select(NotificationEntry).where(NotificationEntry.subject == planned[0].key.subject)
        ).one()
    assert (found.status, found.error) == (
        "unknown",
        "the worker sending it stopped before recording the outcome",
    )
    assert len(workspace.messages) == 2


def test_a_wrong_channel_is_recorded_with_slacks_error_reported_to_ops_and_the_rest_still_go(
    settings: Settings,
    sqlite_store: Store,
    slack: RunningSlack,
    workspace: Workspace,
    channels: Channels,
) -> None:
    rt = _org(settings, sqlite_store, RULES % {"ops": channels.ops}, slack_url=slack.base_url)
    with runtime.activate(rt):
        figures = worker.notify(at=NOW.isoformat())
    assert (figures["sent"], figures["failed"]) == (4, 3)  # 3 to the sender, 1 to ops
    refused = [(s, e) for rule, _, s, _, e in ledger_rows(sqlite_store) if rule == "failed-ops"]
    assert refused == [("failed", "channel_not_found")] * 3
    assert len(workspace.posted_to(member(workspace, "IS1"))) == 3
    [notice] = workspace.posted_to(channels.ops)
    assert notice.text == "Notifications not delivered: channel_not_found"
    assert "→ dest:nowhere (slack C0NOSUCHCHANNEL): channel_not_found" in str(notice.blocks)


def test_a_revoked_token_is_recorded_for_each_message_and_ops_hear_of_it_by_mail(
    settings: Settings,
    sqlite_store: Store,
    slack: RunningSlack,
    workspace: Workspace,
    channels: Channels,
    mail_server: MailServer,
) -> None:
    rt = _org(
        settings,
        sqlite_store,
        RULES % {"ops": channels.ops},
        slack_url=slack.base_url,
        smtp_port=mail_server.port,
    )
    workspace.revoke(BOT_TOKEN)
    with runtime.activate(rt):
        figures = worker.notify(at=NOW.isoformat())
    assert figures["failed"] == 6 and figures["sent"] == 1
    errors = {e for _, _, s, _, e in ledger_rows(sqlite_store) if s == "failed"}
    assert errors == {"token_revoked (users.lookupByEmail)", "token_revoked"}
    assert workspace.messages == []
    [mail] = mail_server.inbox.to("ops@acme.test")
    assert "token_revoked" in mail["Subject"]


def test_the_mail_server_down_fails_the_job_and_its_return_delivers_once(
    settings: Settings, sqlite_store: Store, mail_server: MailServer
) -> None:
    rt = _org(settings, sqlite_store, SENDER_ONLY, smtp_port=mail_server.port)
    mail_server.stop()
    with runtime.activate(rt), pytest.raises(DeliveryUnavailable):
        worker.notify(at=NOW.isoformat())
    assert {s for _, _, s, _, _ in ledger_rows(sqlite_store)} == {"pending"}
    mail_server.start()
    with runtime.activate(rt):
        assert worker.notify(at=(NOW + timedelta(minutes=5)).isoformat())["sent"] == 3
        assert worker.notify(at=(NOW + timedelta(minutes=10)).isoformat())["sent"] == 0
    mails = mail_server.inbox.to("is1@acme.test")
    assert len(mails) == 3 and len({m["Message-ID"] for m in mails}) == 3
    with sqlite_store.session() as s:
        replies = s.scalars(select(NotificationEntry.result)).all()
    assert all(r.startswith("250 2.0.0 Ok: queued as") for r in replies)


def test_dry_run_prints_what_would_go_and_to_whom_and_sends_and_writes_nothing(
    settings: Settings, sqlite_store: Store, slack: RunningSlack, workspace: Workspace
) -> None:
    rt = _org(settings, sqlite_store, SENDER_ONLY, slack_url=slack.base_url)
    calls_before = sum(workspace.calls.values())
    with runtime.activate(rt):
        result = CliRunner().invoke(notify_group, ["--dry-run", "--at", NOW.isoformat()])
    assert result.exit_code == 0, result.output
    assert "Notifications would be sent at" in result.output
    assert result.output.count("→ Ito Sho (sender): Slack (the member with is1@acme.test)") == 3
    assert "Dry run: nothing sent, nothing written." in result.output
    assert sum(workspace.calls.values()) == calls_before == 0
    with sqlite_store.session() as s:
        assert s.scalar(select(func.count()).select_from(NotificationEntry)) == 0
    # Sent for real, a dry run lists them as done.
    with runtime.activate(rt):
        worker.notify(at=NOW.isoformat())
        again = CliRunner().invoke(notify_group, ["--dry-run", "--at", NOW.isoformat()])
    assert "Already in the ledger: 3 (sent 3)" in again.output
