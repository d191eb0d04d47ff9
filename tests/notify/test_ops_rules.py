"""The Sales Ops and operations rules end to end, from store state to the channel: the stored
partial-optimisation alarms (in the weekly slot, once per closed period), write-back rejections,
a stalled sync, a job in RQ's failed registry."""

from __future__ import annotations

from datetime import timedelta

from rq import SimpleWorker

import worker
from tasuki import alarms, runtime
from tasuki.notify.schema import When
from tasuki.notify.sweep import due_at
from tasuki.queue import job_queue
from tasuki.settings import Settings
from tasuki.store.db import Store
from tasuki.store.models import SyncCursor, WriteRejection, WriteRun
from tests.alarms.support import NOW as ALARMS_NOW
from tests.alarms.support import Org
from tests.notify.channels import Channels
from tests.notify.support import NOW, TZ, live, new_crm, notify_settings
from tests.slack.slack_emulator import RunningSlack, Workspace

SALES_OPS = """
destinations:
  sales_ops: {slack: %(sales_ops)s}
notifications:
  - id: partial
    event: partial_optimisation
    to: [sales_ops]
    when: "0 10 * * mon"
    subjects: [department, person]
"""


def test_stored_alarms_reach_sales_ops_in_the_weekly_slot_once(
    settings: Settings,
    sqlite_store: Store,
    slack: RunningSlack,
    workspace: Workspace,
    channels: Channels,
) -> None:
    s = notify_settings(
        settings, SALES_OPS % {"sales_ops": channels.sales_ops}, slack_url=slack.base_url
    )
    # MK's MQLs rise from September to October while fewer become meetings (tests/alarms): the
    # nightly job stored the alarms of October, its 30-day cohort settled by December.
    org = Org(sqlite_store)
    org.mqls("M1", "2026-09", 10, 6)
    org.mqls("M1", "2026-10", 15, 4)
    org.mqls("M2", "2026-09", 10, 5)
    org.mqls("M2", "2026-10", 12, 7)
    stored = alarms.evaluate_recent(sqlite_store, s, now=ALARMS_NOW, compute=True)
    assert {(a.period, a.subject_kind, a.subject_id) for a in stored} == {
        ("2026-10", "department", "MK"),
        ("2026-10", "person", "M1"),
    }
    rt = live(s, sqlite_store, new_crm(s))
    day = ALARMS_NOW.astimezone(TZ).replace(hour=0, minute=0)
    slot = due_at(When("cron", "0 10 * * mon"), day, day, rt.calendar)
    assert slot.astimezone(TZ).weekday() == 0 and slot.astimezone(TZ).hour == 10
    with runtime.activate(rt):
        early = worker.notify(at=(slot - timedelta(minutes=1)).isoformat())
        assert early["deferred"] == 1 and workspace.messages == []
        assert worker.notify(at=slot.isoformat())["sent"] == 1
        assert worker.notify(at=(slot + timedelta(days=7)).isoformat())["sent"] == 0
    [message] = workspace.posted_to(channels.sales_ops)
    shown = str(message.blocks)
    assert "Partial optimisation in 2026-10" in message.text
    assert "MK: 2026-10 against 2026-09: MQLs: 20 → 27 (+7, +35%" in shown
    assert "佐藤 愛子 (MK): 2026-10 against 2026-09: MQLs: 10 → 15 (+5, +50%" in shown
    assert "Ben Walker" not in shown  # both of M2's figures rose


def test_only_the_departments_asked_for_are_sent(
    settings: Settings,
    sqlite_store: Store,
    slack: RunningSlack,
    workspace: Workspace,
    channels: Channels,
) -> None:
    rules = SALES_OPS.replace("subjects: [department, person]", "departments: [IS, FS]")
    s = notify_settings(
        settings, rules % {"sales_ops": channels.sales_ops}, slack_url=slack.base_url
    )
    org = Org(sqlite_store)
    org.mqls("M1", "2026-09", 10, 6)
    org.mqls("M1", "2026-10", 15, 4)
    assert alarms.evaluate_recent(sqlite_store, s, now=ALARMS_NOW, compute=True)
    rt = live(s, sqlite_store, new_crm(s))
    with runtime.activate(rt):
        assert worker.notify(at=(ALARMS_NOW + timedelta(hours=1)).isoformat())["sent"] == 0
    assert workspace.posted_to(channels.sales_ops) == []


OPS = """
destinations:
  ops: {slack: %(ops)s}
notifications:
  - {id: rejected, event: writeback_rejected, to: [ops], when: any_time, shown: 1}
  - {id: stale, event: sync_stale, after: 30 minutes, to: [ops], when: any_time}
  - {id: jobs, event: failed_jobs, to: [ops], when: any_time, max_age: 7 days}
"""


def test_rejections_a_stalled_sync_and_failed_jobs_reach_the_ops_channel_at_any_hour(
    settings: Settings,
    sqlite_store: Store,
    slack: RunningSlack,
    workspace: Workspace,
    channels: Channels,
) -> None:
    s = notify_settings(settings, OPS % {"ops": channels.ops}, slack_url=slack.base_url)
    night = (NOW + timedelta(hours=13)).replace(minute=0)  # 23:30: any_time ignores quiet hours
    with sqlite_store.session() as session:
        run = WriteRun(system="local", started_at=night - timedelta(hours=1), records=3, rejected=2)
        session.add(run)
        session.flush()
        for rid, code in (
            ("006X", "FIELD_CUSTOM_VALIDATION_EXCEPTION"),
            ("006Y", "ENTITY_IS_DELETED"),
        ):
            session.add(
                WriteRejection(
                    run_id=run.id,
                    system="local",
                    object="Opportunity",
                    record_id=rid,
                    values={"Tasuki_Score__c": "40"},
                    error_code=code,
                    message="<refused>",
                )
            )
        session.add(
            SyncCursor(
                system="local", object="Lead", cursor="7", updated_at=night - timedelta(minutes=45)
            )
        )
        session.add(
            SyncCursor(
                system="local",
                object="Opportunity",
                cursor="9",
                updated_at=night - timedelta(minutes=5),
            )
        )
    rt = live(s, sqlite_store, new_crm(s))
    queue = job_queue(s, rt.redis_connection)
    queue.enqueue("worker.deliver_agenda", day="not-a-day", result_ttl=0)
    with runtime.activate(rt):
        SimpleWorker([queue], connection=queue.connection).work(burst=True)
        figures = worker.notify(at=night.isoformat())
    assert figures["sent"] == 3, [m.text for m in workspace.messages]
    texts = [m.text for m in workspace.posted_to(channels.ops)]
    assert "The CRM refused 2 record(s) in write-back pass" in texts[0]
    shown = str(workspace.posted_to(channels.ops)[0].blocks)
    assert "FIELD_CUSTOM_VALIDATION_EXCEPTION &lt;refused&gt;" in shown and "… and 1 more" in shown
    assert texts[1] == "Lead has not synced for 45m"
    assert texts[2] == "Job failed: worker.deliver_agenda"
    with runtime.activate(rt):
        assert worker.notify(at=(night + timedelta(minutes=5)).isoformat())["sent"] == 0
