"""Small pure helpers for Salesforce records: names, datetimes, the change cursor, results.

Nothing here does I/O; :mod:`connectors.salesforce` calls these on what the API sent or will send.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from tasuki.crm import FieldChange, RawRecord, WriteResult

T = TypeVar("T")

_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")

HISTORY_OBJECTS: dict[str, tuple[str, str]] = {
    "Opportunity": ("OpportunityFieldHistory", "OpportunityId"),
}
"""Objects whose field history is not simply ``<Object>History`` with ``<Object>Id``.

``OpportunityHistory`` is Salesforce's stage snapshot (no Field/OldValue/NewValue); the per-field
history of an opportunity is ``OpportunityFieldHistory``.
"""

HISTORY_FIELD_NAMES = {"OwnerId": "Owner"}
"""Fields whose history rows name them differently (an owner change is logged as ``Owner``)."""


def identifier(name: str) -> str:
    """``name`` if it is a valid object or field API name; SOQL identifiers are never escaped,
    so anything else is refused before it gets near a query."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a Salesforce API name: {name!r}")
    return name


def unique(names: Sequence[str]) -> list[str]:
    """``names`` without repeats (case-insensitive, as Salesforce compares them), in order."""
    seen: set[str] = set()
    out: list[str] = []
    for name in names:
        if name.lower() not in seen:
            seen.add(name.lower())
            out.append(identifier(name))
    return out


def chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    """``items`` in consecutive lists of at most ``size``."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def parse_datetime(text: str) -> datetime:
    """A Salesforce datetime (``2026-11-02T01:00:00.000+0000``) as an aware UTC datetime."""
    text = text.replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", text):
        text = f"{text[:-2]}:{text[-2:]}"
    return datetime.fromisoformat(text).astimezone(UTC)


def history_object(object: str) -> tuple[str, str]:
    """(history object, its lookup to the record) for ``object``: ``LeadHistory``/``LeadId``,
    ``OpportunityFieldHistory``/``OpportunityId``, ``Foo__History``/``ParentId``."""
    if object in HISTORY_OBJECTS:
        return HISTORY_OBJECTS[object]
    if object.endswith("__c"):
        return f"{object.removesuffix('__c')}__History", "ParentId"
    return f"{object}History", f"{object}Id"


def raw_record(row: Mapping[str, Any], fields: Sequence[str]) -> RawRecord:
    """An API record (``attributes`` and all) as a :class:`RawRecord` with ``fields``."""
    if fields:
        values = {f: row.get(f) for f in fields}
    else:
        values = {k: v for k, v in row.items() if k != "attributes"}
    return RawRecord(
        id=str(row["Id"]),
        fields=values,
        modstamp=str(row.get("SystemModstamp") or ""),
        deleted=bool(row.get("IsDeleted")),
    )


def history_change(row: Mapping[str, Any], parent: str, names: Mapping[str, str]) -> FieldChange:
    """A history row as a :class:`FieldChange`, its field renamed by ``names`` (Owner → OwnerId)."""
    return FieldChange(
        id=str(row["Id"]),
        record_id=str(row[parent]),
        field=names.get(str(row["Field"]), str(row["Field"])),
        old=None if row.get("OldValue") is None else str(row["OldValue"]),
        new=None if row.get("NewValue") is None else str(row["NewValue"]),
        at=parse_datetime(str(row["CreatedDate"])),
        by=row.get("CreatedById"),
    )


def save_result(record_id: str, result: Mapping[str, Any]) -> WriteResult:
    """One SaveResult of sObject Collections (``{"success", "errors": [...]}``)."""
    if result.get("success"):
        return WriteResult(record_id, True)
    errors = [e for e in result.get("errors") or [] if isinstance(e, Mapping)]
    code = str(errors[0].get("statusCode", "")) if errors else "UNKNOWN_EXCEPTION"
    message = "; ".join(str(e.get("message", "")) for e in errors)
    return WriteResult(record_id, False, code, message)


def bulk_error(text: str) -> tuple[str, str]:
    """(code, message) from a Bulk API ``sf__Error`` cell: ``CODE:message:Field1,Field2 --``."""
    code, sep, rest = text.partition(":")
    if not sep or not re.match(r"^[A-Z_]+$", code):
        return "UNKNOWN_EXCEPTION", text.strip()
    rest = rest.strip()
    if rest.endswith("--"):
        rest = rest.removesuffix("--").rstrip()
        message, colon, _fields = rest.rpartition(":")
        rest = message if colon else rest
    return code, rest


CURSOR_VERSION = "sf1"
MAX_CURSOR = 200
"""Longest cursor the store keeps (``sync_cursors.cursor``)."""


@dataclass(frozen=True)
class ChangeCursor:
    """Where an incremental read stopped: the last record's SystemModstamp and Id, plus the
    ``nextRecordsUrl`` of the query in progress, as one opaque string."""

    stamp: str = ""
    id: str = ""
    next: str | None = None

    @property
    def key(self) -> tuple[datetime, str]:
        """Sort position of the last record delivered."""
        return parse_datetime(self.stamp), self.id

    @property
    def since(self) -> datetime:
        """The SOQL lower bound: SOQL datetime literals have whole seconds, so the query starts
        at the second of the last record and what was already delivered is skipped by key."""
        return parse_datetime(self.stamp).replace(microsecond=0)

    def encode(self) -> str:
        """The cursor string (it fits the store's 200 characters: a next-page URL that would
        not is left out, and the next read re-queries from the position instead)."""
        text = f"{CURSOR_VERSION}|{self.stamp}|{self.id}|{self.next or ''}"
        return text if len(text) <= MAX_CURSOR else f"{CURSOR_VERSION}|{self.stamp}|{self.id}|"

    @classmethod
    def decode(cls, text: str | None) -> ChangeCursor | None:
        """The cursor ``text`` stands for; ``None`` for an empty one (read from the start)."""
        if not text:
            return None
        parts = text.split("|")
        if len(parts) != 4 or parts[0] != CURSOR_VERSION:
            raise ValueError(f"not a Salesforce change cursor: {text!r}")
        return cls(parts[1], parts[2], parts[3] or None)
