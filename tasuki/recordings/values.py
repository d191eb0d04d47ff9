"""The recording links each deal should carry in the CRM (desired values for write-back).

A deal gets the link of its latest call recording (linked to the deal itself or to the lead it
was converted from) and of its latest meeting recording, in the logical fields named under
``writeback`` in ``recordings.yaml``. A call linked to a lead that has no deal yet is written
nowhere (leads carry no recording field by default); the rules still see it on the lead.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tasuki.recordings.capture import Kind
from tasuki.recordings.config import RecordingsConfig
from tasuki.recordings.store import Status
from tasuki.settings import Config
from tasuki.store.models import Record, Recording
from tasuki.writeback import DesiredValue

ID_CHUNK = 500
"""Record ids per IN list."""


def _deals_of_leads(session: Session, system: str, lead_ids: Sequence[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    ids = sorted(set(lead_ids))
    for start in range(0, len(ids), ID_CHUNK):
        rows = session.execute(
            select(Record.record_id, Record.fields["lead_id"].as_string()).where(
                Record.system == system,
                Record.object == "deal",
                Record.deleted.is_(False),
                Record.fields["lead_id"].as_string().in_(ids[start : start + ID_CHUNK]),
            )
        )
        for deal_id, lead_id in rows:
            out.setdefault(str(lead_id), []).append(deal_id)
    return out


def recording_values(
    session: Session, config: Config, rcfg: RecordingsConfig, system: str
) -> list[DesiredValue]:
    """Latest call and meeting link per deal, for the mapped deal fields."""
    per = config.objects.get("deal", {})
    if config.crm not in per:
        return []
    mapped = set(per[config.crm].fields)
    targets = {
        Kind.CALL.value: rcfg.writeback.call if rcfg.writeback.call in mapped else None,
        Kind.MEETING.value: rcfg.writeback.meeting if rcfg.writeback.meeting in mapped else None,
    }
    rows = session.execute(
        select(
            Recording.kind,
            Recording.matched_object,
            Recording.matched_record_id,
            Recording.url,
            Recording.at,
            Recording.id,
        ).where(
            Recording.system == system,
            Recording.status == Status.MATCHED.value,
            Recording.url != "",
            Recording.matched_object.in_(["deal", "lead"]),
        )
    ).all()
    lead_ids = [str(r.matched_record_id) for r in rows if r.matched_object == "lead"]
    deals_of = _deals_of_leads(session, system, lead_ids) if lead_ids else {}
    latest: dict[tuple[str, str], tuple[datetime | None, int, str]] = {}
    for kind, obj, rid, url, at, row_id in rows:
        field = targets.get(kind)
        if field is None:
            continue
        deal_ids = [str(rid)] if obj == "deal" else deals_of.get(str(rid), [])
        for deal_id in deal_ids:
            key = (deal_id, field)
            mine = (at, row_id, url)
            held = latest.get(key)
            if held is None or _later(mine, held):
                latest[key] = mine
    return [
        DesiredValue("deal", deal_id, field, url)
        for (deal_id, field), (_, _, url) in sorted(latest.items())
    ]


def _later(a: tuple[datetime | None, int, str], b: tuple[datetime | None, int, str]) -> bool:
    if a[0] is None or b[0] is None:
        return (a[0] is not None, a[1]) > (b[0] is not None, b[1])
    return (a[0], a[1]) > (b[0], b[1])
