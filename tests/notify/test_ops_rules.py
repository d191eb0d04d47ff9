"""The Sales Ops and operations rules end to end, from store state to the channel: a partial
optimisation found in stored KPI values (in the weekly slot, once per closed period), write-back
rejections, a stalled sync, a job in RQ's failed registry."""

from __future__ import annotations

from datetime import datetime, timedelta

from rq import SimpleWorker

import worker
from tasuki import runtime
from tasuki.notify.schema import When
from tasuki.notify.sweep import due_at
from tasuki.queue import job_queue
from tasuki.settings import Settings
from tasuki.store.db import Store
from tasuki.store.models import KpiValue, SyncCursor, WriteRejection, WriteRun
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
    min_rise: 0.05
    min_fall: 0.05
    min_events: 5
"""


def _month(at: datetime, back: int) -> str:
    y, m = at.year, at.month - back
    while m < 1:
        y, m = y - 1, m + 12
    return f"{y:04d}-{m:02d}"


def test_own_kpi_up_while_the_neighbour_falls_reaches_sales_ops_in_the_weekly_slot_once(
    settings: Settings,
    sqlite_store: Store,
    slack: RunningSlack,
    workspace: Workspace,
    channels: Channels,
) -> None:
    s = notify_settings(
        settings, SALES_OPS % {"sales_ops": channels.sales_ops}, slack_url=slack.base_url
    )
    local = NOW.astimezone(TZ)
    month_start = local.replace(day=1, hour=0, minute=0)
    closed, before = _month(local, 1), _month(local, 2)
    figures = {
        # MK: MQLs up 30% while IS turns fewer of them into meetings (-16%): the alarm.
        ("mk_mqls", before): (20, None, None),
        ("mk_mqls", closed): (26, None, None),
        ("mk_mql_to_meeting", before): (0.45, 9, 20),
        ("mk_mql_to_meeting", closed): (0.38, 10, 26),
        # IS: meetings up and FS accepts more of them too: fine.
        ("is_meetings", before): (8, None, None),
        ("is_meetings", closed): (9, None, None),
        ("is_meetings_accepted", before): (0.8, 8, 10),
        ("is_meetings_accepted", closed): (0.82, 9, 11),
        # FS: revenue up, retention down, but on too few customers to say.
        ("fs_won_revenue", before): (1_000_000, None, None),
        ("fs_won_revenue", closed): (2_000_000, None, None),
        ("cs_retention", before): (1.0, 2, 2),
        ("cs_retention", closed): (0.5, 1, 2),
    }
    with sqlite_store.session() as session:
        for (kpi, period), (value, num, den) in figures.items():
            session.add(
                KpiValue(
                    system="local",
                    kpi_id=kpi,
                    subject_kind="org",
                    subject_id="org",
                    period=period,
                    value=value,
                    numerator=num,
                    denominator=den,
                )
            )
    rt = live(s, sqlite_store, new_crm(s))
    slot = due_at(When("cron", "0 10 * * mon"), month_start, month_start, rt.calendar)
    assert slot.astimezone(TZ).weekday() == 0 and slot.astimezone(TZ).hour == 10
    with runtime.activate(rt):
        early = worker.notify(at=(slot - timedelta(minutes=1)).isoformat())
        assert early["deferred"] == 1 and workspace.messages == []
        assert worker.notify(at=slot.isoformat())["sent"] == 1
        assert worker.notify(at=(slot + timedelta(days=7)).isoformat())["sent"] == 0
    [alarm] = workspace.posted_to(channels.sales_ops)
    shown = str(alarm.blocks)
    assert f"Partial optimisation in {closed}" in alarm.text
    assert (
        "MK: MQLs 20 → 26 (+30%), while MQL→meeting rate (IS on MK's leads) 45% → 38% (-16%)"
        in shown
    )
    assert "IS:" not in shown and "FS:" not in shown


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
