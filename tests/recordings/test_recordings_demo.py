"""The demo org end to end: its calls and meetings arrive through the MiiTel and Zoom receivers
(signed like the providers), before the CRM records they belong to; after the sync they are
linked, the IS→FS rule sees the qualifying call, and the links are written back to the CRM."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import date
from typing import Any

from flask import Flask
from rq import SimpleWorker
from sqlalchemy import select

import worker
from connectors.local import LocalCrm
from tasuki import runtime, startup
from tasuki.demo import recordings as demo_recordings
from tasuki.demo.org import OrgSpec, generate
from tasuki.judging import verdict_values
from tasuki.queue import connect, job_queue
from tasuki.recordings import pipeline as recordings
from tasuki.settings import Settings
from tasuki.store.db import Store
from tasuki.store.models import Delivery, Handoff, Recording, Verdict
from tasuki.store.upsert import insert_ignore
from tasuki.writeback import write_back
from tests.notices import taking_client
from webhooks import miitel as miitel_hook
from webhooks import zoom as zoom_hook

SPEC = OrgSpec(seed=11, leads=60, until=date(2026, 11, 20))


def test_the_demo_orgs_recordings_reach_the_rules_and_the_crm(
    settings: Settings, sqlite_store: Store
) -> None:
    settings = demo_recordings.with_provider_secrets(settings)
    crm = LocalCrm(settings.data_dir / "crm.db")
    generate(crm, settings.config, SPEC)
    connection = connect(settings)
    queue = job_queue(settings, connection)

    def intake(
        provider: str, delivery: str, func: Callable[..., Any], kwargs: dict[str, Any]
    ) -> bool:
        with sqlite_store.session() as s:
            rows = [{"provider": provider, "delivery_id": delivery}]
            if not insert_ignore(s, Delivery, rows, ["provider", "delivery_id"]):
                return False
        queue.enqueue(func, kwargs=kwargs)
        return True

    app = Flask(__name__)
    app.register_blueprint(zoom_hook.blueprint(settings, intake))
    app.register_blueprint(miitel_hook.blueprint(settings, intake))
    rt = startup.assemble(settings, sqlite_store, crm, redis_connection=connection)
    notices = crm.pending_notices(10**6)
    with runtime.activate(rt), taking_client(app) as client:
        sent = demo_recordings.deliver(crm, client, settings, str(SPEC.seed))
        again = demo_recordings.deliver(crm, client, settings, str(SPEC.seed))
        assert sent.calls > 5 and sent.meetings > 3
        assert again.duplicates == again.requests  # the same events twice: all duplicates
        SimpleWorker([queue], connection=connection).work(burst=True, logging_level="WARNING")
        with sqlite_store.session() as s:
            assert {r.status for r in s.scalars(select(Recording))} == {"unmatched"}
        # The CRM records arrive after the recordings (late-arriving records).
        for obj in ("User", "Account", "Lead", "Opportunity"):
            worker.sync_records(obj, sorted({r for _, o, r, _ in notices if o == obj}))
        SimpleWorker([queue], connection=connection).work(burst=True, logging_level="CRITICAL")
        # The single write-back path with the verdicts and the recording links (worker.write_back
        # adds the KPI fields too, once tasuki.kpis is in).
        with sqlite_store.session() as s:
            desired = verdict_values(rt, s)
        write_back(sqlite_store, crm, settings.config, desired + recordings.desired(rt))

    with sqlite_store.session() as s:
        rows = s.scalars(select(Recording)).all()
        status = Counter((r.kind, r.status) for r in rows)
        calls = [r for r in rows if r.kind == "call" and r.status == "matched"]
        verdicts = {
            h.record_id: [v.rule_id for v in h.verdict.violations]
            for h in s.scalars(select(Handoff).where(Handoff.boundary == "IS→FS"))
            if h.verdict is not None
        }
        assert s.scalar(select(Verdict.id).limit(1)) is not None
    assert status[("call", "matched")] == len(calls) > 5
    # Leads with no phone in the CRM were called on a number the CRM does not know.
    assert all(r.status in ("matched", "unmatched") for r in rows)
    # The rule sees the qualifying call through the lead: deals with a call pass it.
    lead_deal = {
        str(crm.get("Opportunity", d)["Lead__c"]): d  # type: ignore[index]
        for d in verdicts
    }
    with_call = {lead_deal[c.matched_record_id] for c in calls if c.matched_record_id in lead_deal}
    assert with_call
    for deal in with_call:
        assert "is-fs.call-recording" not in verdicts[deal]
    assert any("is-fs.call-recording" in v for d, v in verdicts.items() if d not in with_call)
    # And the link is on the CRM record, written through the write-back path.
    deal = sorted(with_call)[0]
    assert str(crm.get("Opportunity", deal)["Call_Recording_URL__c"]).startswith(  # type: ignore[index]
        "https://demo.miitel.jp/app/calls/"
    )
    meeting_links = [
        d for d in verdicts if (crm.get("Opportunity", d) or {}).get("Meeting_Recording_URL__c")
    ]
    assert meeting_links
