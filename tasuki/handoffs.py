"""Handoff detection: which transitions carried a record across a configured boundary.

A boundary's trigger is either ``owner_moves`` (the owner changes from a user of one department
to a user of another) or ``field`` + ``becomes`` (e.g. the stage becomes Closed Won; sender and
receiver are then read from the record's ``sender``/``receiver`` fields, the sender as it was at
that moment when it is the owner). Handoffs are keyed by (boundary, record, time): detecting
twice adds nothing.

An owner's department is the one they belonged to at the instant of the change (see
:mod:`tasuki.membership`), not today's: a person who moved from IS to FS in October keeps the
MK→IS handoffs they received in September.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tasuki.membership import Memberships
from tasuki.recordings.store import artifacts_by_record
from tasuki.settings import BoundaryConfig, Config
from tasuki.store.models import Handoff, Person, Record, Transition
from tasuki.store.upsert import insert_ignore
from tasuki.verdicts import HandoffContext


def departments(session: Session, system: str) -> dict[str, str | None]:
    """CRM user id → department today (MK/IS/FS/CS, or None when unmapped)."""
    rows = session.execute(select(Person.user_id, Person.department).where(Person.system == system))
    return {uid: dept for uid, dept in rows}


def unknown_owners(
    session: Session, system: str, logical: str, record_ids: Sequence[str]
) -> set[str]:
    """Owner ids in the records' history that tasuki has no person for (sync users first)."""
    known = departments(session, system)
    seen: set[str] = set()
    for old, new in session.execute(
        select(Transition.old, Transition.new).where(
            Transition.system == system,
            Transition.object == logical,
            Transition.field == "owner",
            Transition.record_id.in_(record_ids),
        )
    ):
        seen.update(x for x in (old, new) if x)
    return seen - set(known)


def _owner_at(owner_changes: list[Transition], at: datetime, fallback: Any) -> Any:
    owner = fallback
    for t in owner_changes:
        if t.at <= at:
            owner = t.new
    return owner


def _candidates(
    b: BoundaryConfig,
    record_id: str,
    fields: dict[str, Any],
    changes: list[Transition],
    members: Memberships,
) -> list[dict[str, Any]]:
    sender_dept, receiver_dept = b.departments
    owners = [t for t in changes if t.field == "owner"]
    found: list[tuple[datetime, Any, Any]] = []
    if b.trigger.owner_moves is not None:
        for t in owners:
            if (
                t.old
                and t.new
                and members.department(t.old, t.at) == sender_dept
                and members.department(t.new, t.at) == receiver_dept
            ):
                found.append((t.at, t.old, t.new))
    else:
        for t in changes:
            if t.field == b.trigger.field and t.new == b.trigger.becomes:
                sender_field = b.sender or "owner"
                if sender_field == "owner":
                    sender = _owner_at(owners, t.at, fields.get("owner"))
                else:
                    sender = fields.get(sender_field)
                receiver = fields.get(b.receiver) if b.receiver else _owner_at(owners, t.at, None)
                found.append((t.at, sender, receiver))
    return [
        {
            "boundary": b.id,
            "object": b.object,
            "record_id": record_id,
            "sender_id": sender,
            "receiver_id": receiver,
            "sender_department": sender_dept,
            "receiver_department": receiver_dept,
            "handed_at": at,
        }
        for at, sender, receiver in found
    ]


def detect(
    session: Session, config: Config, system: str, logical: str, record_ids: Sequence[str]
) -> int:
    """Record every handoff of ``record_ids`` not yet known; returns how many were new."""
    boundaries = [b for b in config.boundaries if b.object == logical]
    if not boundaries or not record_ids:
        return 0
    members = Memberships.load(session, system)
    by_record: dict[str, list[Transition]] = defaultdict(list)
    for t in session.scalars(
        select(Transition)
        .where(
            Transition.system == system,
            Transition.object == logical,
            Transition.record_id.in_(record_ids),
        )
        .order_by(Transition.at, Transition.id)
    ):
        by_record[t.record_id].append(t)
    fields = {
        r.record_id: r.fields
        for r in session.scalars(
            select(Record).where(
                Record.system == system,
                Record.object == logical,
                Record.record_id.in_(record_ids),
                Record.deleted.is_(False),
            )
        )
    }
    rows = []
    for rid, rec_fields in fields.items():
        for b in boundaries:
            for row in _candidates(b, rid, rec_fields, by_record.get(rid, []), members):
                rows.append({"system": system, **row})
    return insert_ignore(session, Handoff, rows, ["system", "boundary", "record_id", "handed_at"])


def _snapshots(
    session: Session, system: str, keys: set[tuple[str, str]]
) -> dict[tuple[str, str], dict[str, Any]]:
    by_object: dict[str, list[str]] = defaultdict(list)
    for obj, rid in keys:
        by_object[obj].append(rid)
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for obj, ids in by_object.items():
        ids.sort()
        for i in range(0, len(ids), 500):
            for r in session.scalars(
                select(Record).where(
                    Record.system == system,
                    Record.object == obj,
                    Record.record_id.in_(ids[i : i + 500]),
                    Record.deleted.is_(False),
                )
            ):
                out[(obj, r.record_id)] = dict(r.fields)
    return out


def contexts_for(
    session: Session, config: Config, handoffs: Sequence[Handoff], now: datetime
) -> list[HandoffContext]:
    """What the rules may look at for each of ``handoffs``, from the store (logical names):
    the record, its related records and the recordings of both; a few queries for all."""
    if not handoffs:
        return []
    system = handoffs[0].system
    records = _snapshots(session, system, {(h.object, h.record_id) for h in handoffs})
    links: dict[int, list[tuple[str, str]]] = {}
    for h in handoffs:
        fields = records.get((h.object, h.record_id), {})
        links[h.id] = [
            (rel_object, str(fields[lookup]))
            for rel_object, lookup in config.related.get(h.object, {}).items()
            if fields.get(lookup)
        ]
    related = _snapshots(session, system, {pair for pairs in links.values() for pair in pairs})
    every = {(h.object, h.record_id) for h in handoffs} | {p for ps in links.values() for p in ps}
    artifacts = artifacts_by_record(session, system, sorted(every))
    out = []
    for h in handoffs:
        own = (h.object, h.record_id)
        linked = [own, *links[h.id]]
        # The record's recordings and its related records' (a deal's lead's qualifying call).
        found = sorted((a for pair in linked for a in artifacts.get(pair, [])), key=lambda a: a.at)
        out.append(
            HandoffContext(
                boundary=h.boundary,
                object=h.object,
                record=records.get(own, {}),
                handed_at=h.handed_at,
                now=now,
                related={
                    obj: related[(obj, rid)] for obj, rid in links[h.id] if (obj, rid) in related
                },
                artifacts=tuple(found),
                sender_id=h.sender_id,
                receiver_id=h.receiver_id,
            )
        )
    return out


def context_for(
    session: Session, config: Config, handoff: Handoff, now: datetime
) -> HandoffContext:
    """Everything the rules may look at for ``handoff`` (see :func:`contexts_for`)."""
    return contexts_for(session, config, [handoff], now)[0]
