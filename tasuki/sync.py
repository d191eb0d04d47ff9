"""Sync: CRM records → snapshots, field history → transitions, users → people.

Both paths that bring records in, a webhook-triggered sync of some ids and the periodic
reconcile from a cursor, end in :func:`apply_records`, so they behave the same. In the same
transaction as the snapshots, each changed record that rules look at is owed detection and
judging (:data:`~tasuki.owed.Owed.JUDGE`), the records' match keys follow their snapshots (a
change a pending recording may wait for is marked: :mod:`tasuki.recordings.index`), and a
webhook's owed sync is settled: a worker killed right after the commit leaves that work in the
store, not lost. A change whose only changed fields are ones tasuki wrote itself, holding
exactly what the ledger says tasuki wrote, is an echo of our own write-back: it is stored but
triggers no work.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from tasuki import membership, replan
from tasuki.crm import RawRecord
from tasuki.mapping import Mapper, crm_holds
from tasuki.owed import Owed, owe, owed, settle
from tasuki.people_file import apply_people_file
from tasuki.queue import current_job_id
from tasuki.recordings.index import track_snapshots
from tasuki.runtime import Runtime
from tasuki.store.models import LedgerEntry, Person, Record, SyncCursor, Transition, utcnow
from tasuki.store.upsert import insert_ignore, upsert
from tasuki.testhooks import checkpoint

IGNORED_FOR_CHANGE = frozenset({"modified_at"})
"""Logical fields whose change alone is no change worth work (the CRM bumps them on every save)."""


@dataclass
class SyncResult:
    """What one sync did. ``changed`` lists the records whose change needs judging."""

    object: str
    records: int = 0
    deleted: int = 0
    transitions: int = 0
    echoes: int = 0
    unchanged: int = 0
    changed: list[str] = field(default_factory=list)


def _unchanged(before: dict[str, Any] | None, after: dict[str, Any]) -> bool:
    if before is None:
        return False
    keys = (set(before) | set(after)) - IGNORED_FOR_CHANGE
    return all(before.get(k) == after.get(k) for k in keys)


def _is_echo(
    before: dict[str, Any] | None,
    after: dict[str, Any],
    ledger: dict[str, str | None],
    mapper: Mapper,
    logical: str,
) -> bool:
    """Every changed field is one tasuki wrote, and holds what tasuki wrote."""
    if before is None or not ledger:
        return False
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    changed -= IGNORED_FOR_CHANGE
    fields = mapper.config.mapping(logical).fields
    return bool(changed) and all(
        fields.get(k) in ledger and crm_holds(ledger[fields[k]], after.get(k)) for k in changed
    )


def apply_records(
    rt: Runtime, session: Session, logical: str, raws: Sequence[RawRecord]
) -> SyncResult:
    """Store the snapshots of ``raws`` (deletes included) and their tracked-field history."""
    mapper = Mapper(rt.settings.config)
    system = rt.system
    physical = mapper.physical_object(logical)
    result = SyncResult(object=logical, records=len(raws))
    if not raws:
        return result
    ids = [r.id for r in raws]
    stored = session.scalars(
        select(Record).where(
            Record.system == system, Record.object == logical, Record.record_id.in_(ids)
        )
    ).all()
    before = {rec.record_id: rec.fields for rec in stored}
    ledger: dict[str, dict[str, str | None]] = {}
    for entry in session.scalars(
        select(LedgerEntry).where(
            LedgerEntry.system == system,
            LedgerEntry.object == physical,
            LedgerEntry.record_id.in_(ids),
        )
    ):
        ledger.setdefault(entry.record_id, {})[entry.field] = entry.value
    logical_of = {v: k for k, v in mapper.config.mapping(logical).fields.items()}
    rows = []
    written: dict[str, dict[str, Any] | None] = {}
    stale_ledger: list[tuple[str, str]] = []
    for raw in raws:
        fields = mapper.to_logical(logical, raw.fields)
        written[raw.id] = None if raw.deleted else fields
        rows.append(
            {
                "system": system,
                "object": logical,
                "record_id": raw.id,
                "fields": fields,
                "modstamp": raw.modstamp,
                "deleted": raw.deleted,
                "synced_at": utcnow(),
            }
        )
        held = ledger.get(raw.id, {})
        for phys, text in held.items():
            name = logical_of.get(phys)
            if name is not None and not crm_holds(text, fields.get(name)):
                # Someone changed a field tasuki writes: the CRM no longer holds what we wrote.
                stale_ledger.append((raw.id, phys))
        if raw.deleted:
            result.deleted += 1
            result.changed.append(raw.id)
        elif _unchanged(before.get(raw.id), fields):
            result.unchanged += 1
        elif _is_echo(before.get(raw.id), fields, held, mapper, logical):
            result.echoes += 1
        else:
            result.changed.append(raw.id)
    upsert(
        session,
        Record,
        rows,
        ["system", "object", "record_id"],
        ["fields", "modstamp", "deleted", "synced_at"],
    )
    # The match keys follow the snapshots; a change a pending recording may wait for is marked.
    track_snapshots(
        session,
        system,
        logical,
        written,
        {rec.record_id: rec.fields for rec in stored if not rec.deleted},
    )
    # What the CRM holds no longer matches what tasuki wrote: the next write-back plans it.
    replan.mark(session, system, [(logical, rid) for rid, _ in stale_ledger])
    for rid, phys in stale_ledger:
        session.execute(
            delete(LedgerEntry).where(
                LedgerEntry.system == system,
                LedgerEntry.object == physical,
                LedgerEntry.record_id == rid,
                LedgerEntry.field == phys,
            )
        )
    live = [r.id for r in raws if not r.deleted and r.id in result.changed]
    result.transitions = _sync_history(rt, session, logical, live)
    owe_judging(rt, session, logical, result.changed)
    return result


def judged_objects(rt: Runtime) -> frozenset[str]:
    """Logical objects whose changes rules look at: those handoffs happen on, and those
    related to them (a lead's account)."""
    config = rt.settings.config
    related = {rel for links in config.related.values() for rel in links}
    return frozenset({b.object for b in config.boundaries} | related)


def owe_judging(rt: Runtime, session: Session, logical: str, record_ids: Sequence[str]) -> None:
    """Record, in the sync's transaction, that ``record_ids`` need detection and judging."""
    if record_ids and logical in judged_objects(rt):
        owe(session, Owed.JUDGE, [(logical, r) for r in record_ids], job_id=current_job_id())


def _sync_history(rt: Runtime, session: Session, logical: str, ids: Sequence[str]) -> int:
    mapper = Mapper(rt.settings.config)
    tracked = mapper.tracked_fields(logical)
    if not ids or not tracked:
        return 0
    by_physical = {mapper.physical_field(logical, f): f for f in tracked}
    changes = rt.connector.history(mapper.physical_object(logical), ids, sorted(by_physical))
    rows = [
        {
            "system": rt.system,
            "object": logical,
            "record_id": c.record_id,
            "field": by_physical[c.field],
            "old": c.old,
            "new": c.new,
            "at": c.at,
            "by": c.by,
            "source_id": c.id,
        }
        for c in changes
        if c.field in by_physical
    ]
    return insert_ignore(session, Transition, rows, ["system", "source_id"])


def sync_ids(rt: Runtime, physical_object: str, ids: Sequence[str]) -> SyncResult:
    """Fetch records ``ids`` of a CRM object and store them; ids the CRM no longer has are
    marked deleted. An object tasuki does not track is ignored."""
    mapper = Mapper(rt.settings.config)
    logical = mapper.logical_object(physical_object)
    if logical is None or mapper.config.mapping(logical).external_id is not None:
        # Not tracked, or tasuki's own write-only rows (KPI rows): nothing to fetch; whatever
        # a webhook said is owed for them is settled.
        with rt.store.session() as session:
            settle(session, owed(session, Owed.SYNC, physical_object, ids))
        return SyncResult(object=physical_object)
    if logical == "user":
        sync_people(rt)
    with rt.store.session() as session:
        # Read before fetching: a notice arriving during the fetch owes the sync again.
        debts = owed(session, Owed.SYNC, physical_object, ids)
    fetched = rt.connector.fetch(physical_object, ids, mapper.physical_fields(logical))
    found = {r.id for r in fetched}
    gone = [RawRecord(id=i, fields={}, deleted=True) for i in ids if i not in found]
    with rt.store.session() as session:
        result = apply_records(rt, session, logical, fetched)
        if gone:
            session.execute(
                update(Record)
                .where(
                    Record.system == rt.system,
                    Record.object == logical,
                    Record.record_id.in_([g.id for g in gone]),
                )
                .values(deleted=True, synced_at=utcnow())
            )
            track_snapshots(session, rt.system, logical, {g.id: None for g in gone}, {})
            result.deleted += len(gone)
            result.changed.extend(g.id for g in gone)
            owe_judging(rt, session, logical, [g.id for g in gone])
        settle(session, debts)
    checkpoint("sync.committed")
    return result


def sync_people(rt: Runtime) -> int:
    """Refresh every CRM user and the department tasuki resolves for them; returns their count."""
    config = rt.settings.config
    mapper = Mapper(config)
    users = rt.connector.users(mapper.physical_fields("user"))
    dept_field = config.departments.user_field
    rows = []
    seen: dict[str, dict[str, Any]] = {}
    for u in users:
        fields = seen[u.id] = mapper.to_logical("user", u.fields)
        rows.append(
            {
                "system": rt.system,
                "user_id": u.id,
                "name": str(fields.get("name") or ""),
                "email": str(fields.get("email") or ""),
                "department": config.departments.values.get(str(fields.get(dept_field))),
                "team": str(fields["team"])[:80] if fields.get("team") else None,
            }
        )
    with rt.store.session() as session:
        upsert(
            session, Person, rows, ["system", "user_id"], ["name", "email", "department", "team"]
        )
        apply_records(rt, session, "user", users)
        membership.learn(session, rt.settings, rows, seen)
        apply_people_file(session, rt.settings)  # the admin's file may name people just synced
    return len(rows)


def reconcile(
    rt: Runtime, logical: str, progress: Callable[[SyncResult], None] | None = None
) -> list[SyncResult]:
    """Bring ``logical`` up to date from its cursor, page by page (catches missed webhooks);
    ``progress`` hears of each page once it is stored."""
    mapper = Mapper(rt.settings.config)
    physical = mapper.physical_object(logical)
    results = []
    while True:
        with rt.store.session() as session:
            cur = session.scalars(
                select(SyncCursor).where(
                    SyncCursor.system == rt.system, SyncCursor.object == physical
                )
            ).one_or_none()
            page = rt.connector.changes(
                physical, cur.cursor if cur else None, mapper.physical_fields(logical)
            )
            results.append(apply_records(rt, session, logical, page.records))
            # The cursor moves in the same transaction as the records it covers (and the
            # judging they owe, in apply_records).
            upsert(
                session,
                SyncCursor,
                [
                    {
                        "system": rt.system,
                        "object": physical,
                        "cursor": page.cursor,
                        "updated_at": utcnow(),
                    }
                ],
                ["system", "object"],
                ["cursor", "updated_at"],
            )
        checkpoint("sync.committed")
        if progress is not None:
            progress(results[-1])
        if not page.more:
            return results
