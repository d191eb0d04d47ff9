"""The connector interface every CRM implements, and the plain records that cross it.

A connector speaks the CRM's own object and field names; translation to logical names happens
once, in :mod:`tasuki.mapping`. Every method that talks to the CRM counts its API calls in
``calls`` so the write-back path can report calls made against the minimum.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class RawRecord:
    """One CRM record in the CRM's own field names."""

    id: str
    fields: dict[str, Any]
    modstamp: str = ""
    deleted: bool = False


@dataclass(frozen=True)
class ChangePage:
    """Records changed (``deleted`` ones included) since a cursor, and the cursor to pass next."""

    records: list[RawRecord]
    cursor: str
    more: bool = False


@dataclass(frozen=True)
class ReadEstimate:
    """What reading one object's changes since a cursor will cost, estimated before reading:
    ``tasuki sync --dry-run``. The estimate's own calls (a count) are in ``spent``."""

    records: int
    """Records changed since the cursor, deletes included, as the CRM counts them."""
    change_calls: int
    """Pages of the incremental read."""
    history_calls: int
    """Field-history reads for those records (every one taken as changed: an upper bound)."""
    page_size: int
    """The CRM's largest page for this read: ``records / page_size`` pages is the minimum."""
    spent: int = 0

    @property
    def calls(self) -> int:
        """Read calls the sync will make for this object."""
        return self.change_calls + self.history_calls

    @property
    def minimum(self) -> int:
        """Pages of the CRM's largest page size: no read of these records can take fewer."""
        return max(1, -(-self.records // self.page_size))


def pages(records: int, size: int) -> list[int]:
    """How ``records`` fall into pages of ``size``: ``[size, size, ..., rest]`` (``[]`` for 0)."""
    full, rest = divmod(records, size)
    return [size] * full + ([rest] if rest else [])


def history_reads(
    page_sizes: Sequence[int], ids_per_call: int, rows_per_call: int, rows_per_record: float
) -> int:
    """Calls to read the field history of each page's records, ``ids_per_call`` ids a call and
    each call's rows in pages of ``rows_per_call`` (``rows_per_record`` on average)."""
    calls = 0
    for size in page_sizes:
        for ids in pages(size, ids_per_call):
            calls += max(1, -(-int(ids * rows_per_record + 0.5) // rows_per_call))
    return calls


@dataclass(frozen=True)
class FieldChange:
    """One entry of a record's field history (owner, stage, status ...)."""

    id: str
    """Stable id of the history entry: the same change always has the same id."""
    record_id: str
    field: str
    old: str | None
    new: str | None
    at: datetime
    by: str | None = None


@dataclass(frozen=True)
class RecordWrite:
    """Values to set on one record, in CRM field names."""

    record_id: str
    values: dict[str, Any]


@dataclass(frozen=True)
class WriteResult:
    """What the CRM answered for one record of a batch write."""

    record_id: str
    ok: bool
    error_code: str = ""
    message: str = ""


@dataclass
class CallCounter:
    """API calls a connector made, by kind (``read``, ``write``, ``auth`` ...)."""

    counts: Counter[str] = field(default_factory=Counter)

    def add(self, kind: str, n: int = 1) -> None:
        """Count ``n`` calls of ``kind``."""
        self.counts[kind] += n

    def __getitem__(self, kind: str) -> int:
        return self.counts[kind]

    @property
    def total(self) -> int:
        """All calls of every kind."""
        return sum(self.counts.values())


@runtime_checkable
class Connector(Protocol):
    """What tasuki needs from a CRM. Object and field names are the CRM's own."""

    system: str
    """``local``, ``salesforce`` or ``hubspot``: the key of this CRM's blocks in tasuki.yaml."""
    read_batch_size: int
    """Most ids :meth:`fetch` sends in one call."""
    write_batch_size: int
    """Most records :meth:`write` sends in one call."""
    calls: CallCounter

    def fetch(self, object: str, ids: Sequence[str], fields: Sequence[str]) -> list[RawRecord]:
        """Records by id, in batches of ``read_batch_size``; ids that don't exist are left out."""
        ...

    def changes(self, object: str, cursor: str | None, fields: Sequence[str]) -> ChangePage:
        """One page of records changed since ``cursor`` (``None``: from the beginning), deletes
        included, oldest first. Call again with the returned cursor while ``more``."""
        ...

    def history(self, object: str, ids: Sequence[str], fields: Sequence[str]) -> list[FieldChange]:
        """Field history of ``fields`` for the records ``ids``, oldest first."""
        ...

    def write(self, object: str, writes: Sequence[RecordWrite]) -> list[WriteResult]:
        """Write at most ``write_batch_size`` records in one call, not all-or-none: one result per
        record, in order. A rejected record carries the CRM's own error code and message."""
        ...

    def upsert_records(
        self, object: str, key_field: str, writes: Sequence[RecordWrite]
    ) -> list[WriteResult]:
        """Create or update at most ``write_batch_size`` records in one call, each matched on the
        external-id field ``key_field`` (a CRM field name) whose value is ``RecordWrite.record_id``;
        the connector sends that value as ``key_field`` itself, ``values`` need not hold it. Not
        all-or-none: one result per write, in order, its ``record_id`` the key value; a rejected
        record carries the CRM's own error code and message. Used for tasuki's own objects (one
        KPI row per person, KPI and period), whose CRM ids tasuki never needs to know."""
        ...

    def users(self, fields: Sequence[str]) -> list[RawRecord]:
        """Every user (owner) of the CRM with the requested fields."""
        ...


@runtime_checkable
class ReadsSince(Protocol):
    """A connector whose changes can be read from a date (``tasuki sync --since``)."""

    def cursor_since(self, since: datetime) -> str:
        """The cursor of :meth:`Connector.changes` that starts at ``since``."""
        ...


@runtime_checkable
class EstimatesReads(Protocol):
    """A connector that can say what a sync will cost before it reads (``sync --dry-run``)."""

    def estimate_reads(
        self, object: str, cursor: str | None, history_fields: Sequence[str]
    ) -> ReadEstimate:
        """The read calls :meth:`Connector.changes` from ``cursor`` to the end, and the field
        history of ``history_fields`` for those records, will take; costs a count or two."""
        ...
