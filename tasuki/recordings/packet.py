"""A record's handoff packet (申し送り): what travels with it across a boundary.

Hearing notes, BANT, proposals, the linked call and meeting recordings (its own and its related
records', as the rules see them) and the verdict of each of its handoffs, read from the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from tasuki.display import named
from tasuki.recordings.store import artifacts_for
from tasuki.settings import Config
from tasuki.store.models import Handoff, Person, Record, Verdict
from tasuki.verdicts import Artifact

SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Hearing notes", ("hearing_notes", "inquiry")),
    ("BANT", ("budget", "authority", "need", "timeline")),
    ("Proposal", ("is_proposal", "fs_proposal")),
)
"""Packet sections and the logical fields each shows (those mapped on the record's object)."""


@dataclass(frozen=True)
class HandoffVerdict:
    """One handoff of the record and its latest verdict (if judged)."""

    boundary: str
    handed_at: datetime
    sender: str
    receiver: str
    outcome: str | None
    score: int | None
    violations: tuple[str, ...]


@dataclass(frozen=True)
class Packet:
    """Everything a record carries across its boundaries."""

    object: str
    record_id: str
    name: str
    owner: str
    sections: list[tuple[str, list[tuple[str, Any]]]] = field(default_factory=list)
    recordings: list[Artifact] = field(default_factory=list)
    handoffs: list[HandoffVerdict] = field(default_factory=list)


def find_record(session: Session, system: str, ref: str) -> Record | None:
    """A live record by id, or by ``object:id`` when ids could collide across objects."""
    obj, _, rid = ref.rpartition(":")
    query = select(Record).where(
        Record.system == system, Record.record_id == rid, Record.deleted.is_(False)
    )
    if obj:
        query = query.where(Record.object == obj)
    return session.scalars(query.order_by(Record.object)).first()


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def build_packet(session: Session, config: Config, system: str, record: Record) -> Packet:
    """The packet of ``record`` from the store."""
    fields = dict(record.fields)
    mapped = set(config.fields(record.object)) if record.object in config.objects else set()
    names = dict(
        session.execute(select(Person.user_id, Person.name).where(Person.system == system)).all()
    )
    sections = [
        (title, [(f, fields.get(f)) for f in wanted if f in mapped]) for title, wanted in SECTIONS
    ]
    linked = [(record.object, record.record_id)]
    for rel_object, lookup in config.related.get(record.object, {}).items():
        if fields.get(lookup):
            linked.append((rel_object, str(fields[lookup])))
    handoffs = session.scalars(
        select(Handoff)
        .where(
            Handoff.system == system,
            Handoff.object == record.object,
            Handoff.record_id == record.record_id,
        )
        .order_by(Handoff.handed_at, Handoff.id)
        .options(selectinload(Handoff.verdict).selectinload(Verdict.violations))
    ).all()
    return Packet(
        object=record.object,
        record_id=record.record_id,
        name=str(fields.get("name") or ""),
        owner=named(names.get(str(fields.get("owner"))), _text(fields.get("owner"))),
        sections=[(t, rows) for t, rows in sections if rows],
        recordings=artifacts_for(session, system, linked),
        handoffs=[
            HandoffVerdict(
                boundary=h.boundary,
                handed_at=h.handed_at,
                sender=named(names.get(h.sender_id or ""), h.sender_id),
                receiver=named(names.get(h.receiver_id or ""), h.receiver_id),
                outcome=h.verdict.outcome if h.verdict else None,
                score=h.verdict.score if h.verdict else None,
                violations=tuple(
                    f"{v.severity}: {v.rule_id}: {v.message}"
                    for v in (h.verdict.violations if h.verdict else [])
                ),
            )
            for h in handoffs
        ],
    )
