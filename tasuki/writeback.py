"""The single write-back path: desired values → diff against the ledger → full batches → results.

Everything tasuki writes to a CRM goes through :func:`write_back`: fields of records it synced,
written by id, and rows of its own objects (KPI rows), upserted on their external id. The ledger
holds what tasuki last wrote to each field and the CRM still holds, so a value already there costs
no call. Batches are cut at the connector's maximum, so N changed records cost ⌈N / batch size⌉
calls (or one bulk job when the connector offers one and N reaches its threshold). A record the
CRM refuses is kept with the CRM's own code and message; the rest of its batch is written.

A batch is written in three steps, so that a crash or a client-side timeout never makes tasuki
write the same values twice: (1) its values are recorded as :class:`WriteIntent` rows and
committed, (2) the CRM is called, (3) the results go into the ledger and the intents are
deleted, in one transaction. Intents found at the start of a pass are a batch whose outcome is
unknown: :func:`settle_intents` reads those records back (one read call per
``read_batch_size`` records) and puts what the CRM already holds into the ledger, so only what
did not arrive is written again.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from tasuki.crm import Connector, RawRecord, RecordWrite, WriteResult
from tasuki.mapping import Mapper, crm_holds, ledger_value
from tasuki.settings import Config
from tasuki.store.db import Store
from tasuki.store.models import LedgerEntry, WriteIntent, WriteRejection, WriteRun, utcnow
from tasuki.store.upsert import upsert
from tasuki.testhooks import checkpoint

LEDGER_QUERY_CHUNK = 500
"""Record ids per ledger look-up (keeps IN lists well under every database's limit)."""


@runtime_checkable
class BulkWriter(Protocol):
    """A connector that can also write through a bulk job (Salesforce Bulk API 2.0)."""

    bulk_write_threshold: int
    """From this many records on, one bulk job replaces the batched calls."""

    def write_bulk(self, object: str, writes: Sequence[RecordWrite]) -> list[WriteResult]:
        """Write any number of records through one bulk job; one result per record."""
        ...


@runtime_checkable
class BulkUpserter(Protocol):
    """A connector that can also upsert on an external id through a bulk job."""

    bulk_write_threshold: int

    def upsert_bulk(
        self, object: str, key_field: str, writes: Sequence[RecordWrite]
    ) -> list[WriteResult]:
        """Create or update any number of records matched on ``key_field`` through one bulk job;
        one result per write, in order, its ``record_id`` the key value."""
        ...


@runtime_checkable
class KeyReader(Protocol):
    """A connector that can read records by an external-id field (to read back KPI rows)."""

    def fetch_by_key(
        self, object: str, key_field: str, keys: Sequence[str], fields: Sequence[str]
    ) -> list[RawRecord]:
        """Records whose ``key_field`` is one of ``keys``; each returned with its key value as
        ``RawRecord.id``. Keys no record has are left out."""
        ...


@dataclass(frozen=True)
class DesiredValue:
    """A value tasuki wants a CRM field to hold, in logical names."""

    object: str
    record_id: str
    field: str
    value: str | int | float | bool | None


@dataclass(frozen=True)
class PlannedChange:
    """One field that differs from what the ledger says the CRM holds."""

    object: str
    record_id: str
    field: str
    old: str | None
    new: Any


@dataclass(frozen=True)
class Rejection:
    """A record the CRM refused, in its own words."""

    object: str
    record_id: str
    error_code: str
    message: str


@dataclass
class WriteReport:
    """What one pass of the write-back path did (or, in a dry run, would do)."""

    dry_run: bool
    changes: list[PlannedChange] = field(default_factory=list)
    records: int = 0
    calls: int = 0
    min_calls: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    run_id: int | None = None
    """The ``write_runs`` row of this pass (None for a dry run)."""

    @property
    def fields(self) -> int:
        """Fields changed (or to change)."""
        return len(self.changes)


def _batches(n: int, size: int) -> int:
    return math.ceil(n / size) if n else 0


def _bulk(connector: Connector, records: int, upsert: bool) -> bool:
    kind = BulkUpserter if upsert else BulkWriter
    threshold = getattr(connector, "bulk_write_threshold", None)
    return isinstance(connector, kind) and threshold is not None and records >= threshold


def min_calls(connector: Connector, records: int, *, upsert: bool = False) -> int:
    """The fewest write calls ``records`` records can take on ``connector``."""
    if _bulk(connector, records, upsert):
        return 1
    return _batches(records, connector.write_batch_size)


def plan(
    session: Session, system: str, mapper: Mapper, desired: Iterable[DesiredValue]
) -> list[PlannedChange]:
    """The desired values that differ from the ledger, in logical names, in a stable order."""
    wanted: dict[tuple[str, str, str], Any] = {}
    for d in desired:
        wanted[(d.object, d.record_id, d.field)] = d.value
    by_object: dict[str, set[str]] = defaultdict(set)
    for obj, rid, _ in wanted:
        by_object[obj].add(rid)
    held: dict[tuple[str, str, str], str | None] = {}
    for obj, ids in by_object.items():
        physical = mapper.physical_object(obj)
        reverse = {v: k for k, v in mapper.config.mapping(obj).fields.items()}
        id_list = sorted(ids)
        for start in range(0, len(id_list), LEDGER_QUERY_CHUNK):
            chunk = id_list[start : start + LEDGER_QUERY_CHUNK]
            rows = session.execute(
                select(LedgerEntry.record_id, LedgerEntry.field, LedgerEntry.value).where(
                    LedgerEntry.system == system,
                    LedgerEntry.object == physical,
                    LedgerEntry.record_id.in_(chunk),
                )
            )
            for rid, fld, value in rows:
                if fld in reverse:
                    held[(obj, rid, reverse[fld])] = value
    changes = []
    for key in sorted(wanted):
        new = wanted[key]
        old = held.get(key)
        if key in held and old == ledger_value(new):
            continue
        changes.append(PlannedChange(key[0], key[1], key[2], old, new))
    return changes


def _record_results(
    session: Session,
    run: WriteRun,
    system: str,
    physical: str,
    writes: Sequence[RecordWrite],
    results: Sequence[WriteResult],
    report: WriteReport,
    logical: str,
) -> None:
    by_id = {w.record_id: w for w in writes}
    accepted = [r.record_id for r in results if r.ok]
    existing = {
        (e.record_id, e.field): e
        for e in session.scalars(
            select(LedgerEntry).where(
                LedgerEntry.system == system,
                LedgerEntry.object == physical,
                LedgerEntry.record_id.in_(accepted),
            )
        )
    }
    now = utcnow()
    for result in results:
        w = by_id[result.record_id]
        if not result.ok:
            report.rejected.append(
                Rejection(logical, result.record_id, result.error_code, result.message)
            )
            session.add(
                WriteRejection(
                    run_id=run.id,
                    system=system,
                    object=physical,
                    record_id=result.record_id,
                    values={k: ledger_value(v) for k, v in w.values.items()},
                    error_code=result.error_code,
                    message=result.message,
                )
            )
            continue
        for fld, value in w.values.items():
            entry = existing.get((result.record_id, fld))
            if entry is None:
                session.add(
                    LedgerEntry(
                        system=system,
                        object=physical,
                        record_id=result.record_id,
                        field=fld,
                        value=ledger_value(value),
                        written_at=now,
                    )
                )
            else:
                entry.value = ledger_value(value)
                entry.written_at = now


def write_back(
    store: Store,
    connector: Connector,
    config: Config,
    desired: Iterable[DesiredValue],
    *,
    dry_run: bool = False,
) -> WriteReport:
    """Write the desired values that differ from the ledger; nothing at all when ``dry_run``.

    Returns the changes, records touched, calls made (or that would be made) and the minimum.
    """
    mapper = Mapper(config)
    system = connector.system
    report = WriteReport(dry_run=dry_run)
    if not dry_run:
        # A batch a crash or a timeout left unsettled: what the CRM holds goes into the ledger.
        settle_intents(store, connector, mapper)
    before = connector.calls.total  # write calls only: a read-back is not one
    with store.session() as session:
        report.changes = plan(session, system, mapper, desired)
    grouped: dict[str, dict[str, dict[str, Any]]] = defaultdict(lambda: defaultdict(dict))
    for change in report.changes:
        grouped[change.object][change.record_id][change.field] = change.new
    report.records = sum(len(recs) for recs in grouped.values())
    report.min_calls = sum(
        min_calls(connector, len(recs), upsert=mapper.key_field(obj) is not None)
        for obj, recs in grouped.items()
    )
    if dry_run:
        report.calls = report.min_calls
        return report
    with store.session() as session:
        run = WriteRun(system=system, dry_run=False)
        session.add(run)
        session.flush()
        report.run_id = run.id
    try:
        for logical, records in grouped.items():
            physical = mapper.physical_object(logical)
            writes = [
                RecordWrite(rid, mapper.to_physical(logical, values))
                for rid, values in sorted(records.items())
            ]
            key = mapper.key_field(logical)
            bulk = _bulk(connector, len(writes), key is not None)
            size = len(writes) if bulk else connector.write_batch_size
            for start in range(0, len(writes), size):
                chunk = writes[start : start + size]
                with store.session() as session:
                    _intend(session, system, physical, key, chunk)
                checkpoint("writeback.intended")
                results = _send(connector, physical, chunk, key, bulk)
                checkpoint("writeback.sent")
                # Committed batch by batch: a failure later on never makes us rewrite these.
                with store.session() as session:
                    _record_results(session, run, system, physical, chunk, results, report, logical)
                    _forget_intents(session, system, physical, chunk)
                checkpoint("writeback.committed")
    finally:
        report.calls = connector.calls.total - before
        with store.session() as session:
            session.execute(
                update(WriteRun)
                .where(WriteRun.id == run.id)
                .values(
                    records=report.records,
                    fields=report.fields,
                    calls=report.calls,
                    min_calls=report.min_calls,
                    rejected=len(report.rejected),
                )
            )
    return report


def _send(
    connector: Connector, physical: str, chunk: list[RecordWrite], key: str | None, bulk: bool
) -> list[WriteResult]:
    """Write one batch (or, when ``bulk``, every record through one bulk job); by id, or
    upserted on the CRM field ``key`` (record ids are then the key's values)."""
    if bulk:
        if key is None:
            assert isinstance(connector, BulkWriter)
            return connector.write_bulk(physical, chunk)
        assert isinstance(connector, BulkUpserter)
        return connector.upsert_bulk(physical, key, chunk)
    if key is None:
        return connector.write(physical, chunk)
    return connector.upsert_records(physical, key, chunk)


def _intend(
    session: Session, system: str, physical: str, key: str | None, chunk: Sequence[RecordWrite]
) -> None:
    rows = [
        {
            "system": system,
            "object": physical,
            "record_id": w.record_id,
            "field": fld,
            "value": ledger_value(value),
            "key_field": key,
            "intended_at": utcnow(),
        }
        for w in chunk
        for fld, value in w.values.items()
    ]
    upsert(
        session,
        WriteIntent,
        rows,
        ["system", "object", "record_id", "field"],
        ["value", "key_field", "intended_at"],
    )


def _forget_intents(
    session: Session, system: str, physical: str, chunk: Sequence[RecordWrite]
) -> None:
    ids = [w.record_id for w in chunk]
    for start in range(0, len(ids), LEDGER_QUERY_CHUNK):
        session.execute(
            delete(WriteIntent).where(
                WriteIntent.system == system,
                WriteIntent.object == physical,
                WriteIntent.record_id.in_(ids[start : start + LEDGER_QUERY_CHUNK]),
            )
        )


def settle_intents(store: Store, connector: Connector, mapper: Mapper) -> int:
    """Settle batches whose outcome is unknown (the process died, or the call timed out, between
    sending and recording): read those records back and put into the ledger each intended value
    the CRM holds, then forget the intents. Returns the values found written.

    Rows upserted on an external id are read back only when the connector is a
    :class:`KeyReader`; otherwise they are simply written again (an upsert of the same values).
    """
    system = connector.system
    with store.session() as session:
        intents = list(session.scalars(select(WriteIntent).where(WriteIntent.system == system)))
    if not intents:
        return 0
    groups: dict[tuple[str, str | None], list[WriteIntent]] = defaultdict(list)
    for i in intents:
        groups[(i.object, i.key_field)].append(i)
    held: list[WriteIntent] = []
    for (physical, key), group in groups.items():
        ids = sorted({i.record_id for i in group})
        fields = sorted({i.field for i in group})
        if key is None:
            found = connector.fetch(physical, ids, fields)
        elif isinstance(connector, KeyReader):
            found = connector.fetch_by_key(physical, key, ids, fields)
        else:
            continue
        crm = {r.id: r.fields for r in found}
        held.extend(
            i
            for i in group
            if i.record_id in crm and crm_holds(i.value, crm[i.record_id].get(i.field))
        )
    now = utcnow()
    with store.session() as session:
        upsert(
            session,
            LedgerEntry,
            [
                {
                    "system": system,
                    "object": i.object,
                    "record_id": i.record_id,
                    "field": i.field,
                    "value": i.value,
                    "written_at": now,
                }
                for i in held
            ],
            ["system", "object", "record_id", "field"],
            ["value", "written_at"],
        )
        session.execute(delete(WriteIntent).where(WriteIntent.id.in_([i.id for i in intents])))
    return len(held)
