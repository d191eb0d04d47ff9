"""Incremental sync through HubSpot's search API: the cursor and how each window is cut.

HubSpot's search returns at most 200 records a page and refuses to page past 10,000 results,
and nothing orders records that share one last-modified timestamp. So no query here ever pages:
each one starts where the cursor stands and reads a single page, and the cursor moves past what
that page proved complete.

The cursor is an opaque string in one of two states:

``R:<ms>`` (range)
    Everything modified before ``ms`` is done. The next query asks for ``ms`` ≤ last-modified ≤
    horizon, oldest first. A full page ends inside some timestamp T: the records before T are
    returned and the cursor moves to ``R:T`` (T's records come again, whole, next time). A full
    page that is *all* one timestamp cannot be cut that way: it is dropped (one call spent) and
    the cursor turns to ``T:T:0``.
``T:<ms>:<id>`` (tie)
    Everything before ``ms`` is done, and at ``ms`` every id up to ``id``. The next query asks for
    last-modified = ``ms`` and id > ``id``, by id: any number of records sharing one timestamp
    is walked through 200 at a time, none lost, none repeated. When the page is short the tie is
    exhausted and the cursor returns to ``R:ms+1``.

The horizon (now minus a settle time) keeps the cursor behind records HubSpot may not have
indexed for search yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

SEARCH_PAGE = 200
"""Most records one search call returns."""

ID_PROPERTY = "hs_object_id"
"""Every object's id, as a searchable, sortable property."""

LASTMOD_PROPERTIES = {"contacts": "lastmodifieddate"}
"""Contacts keep their own name for the last-modified property; other objects use
``hs_lastmodifieddate``."""


def lastmod_property(object_type: str) -> str:
    """The last-modified property of ``object_type``."""
    return LASTMOD_PROPERTIES.get(object_type, "hs_lastmodifieddate")


@dataclass(frozen=True)
class Cursor:
    """Where the incremental sync of one object stands (see the module docstring)."""

    since: int
    """Milliseconds: everything modified before is done."""
    after_id: int | None = None
    """In the tie state: ids at ``since`` up to this one are done."""

    @classmethod
    def parse(cls, text: str | None) -> Cursor:
        """A cursor from its string (``None`` or empty: from the beginning)."""
        if not text:
            return cls(0)
        parts = text.split(":")
        try:
            if parts[0] == "R" and len(parts) == 2:
                return cls(int(parts[1]))
            if parts[0] == "T" and len(parts) == 3:
                return cls(int(parts[1]), int(parts[2]))
        except ValueError:
            pass
        raise ValueError(f"not a HubSpot sync cursor: {text!r}")

    def __str__(self) -> str:
        if self.after_id is None:
            return f"R:{self.since}"
        return f"T:{self.since}:{self.after_id}"

    def query(self, object_type: str, properties: list[str], horizon: int) -> dict[str, Any]:
        """The search request body for the next page from this cursor."""
        lastmod = lastmod_property(object_type)
        props = sorted(set(properties) | {lastmod, ID_PROPERTY})
        if self.after_id is None:
            filters = [
                {"propertyName": lastmod, "operator": "GTE", "value": str(self.since)},
                {"propertyName": lastmod, "operator": "LTE", "value": str(horizon)},
            ]
            sort = lastmod
        else:
            filters = [
                {"propertyName": lastmod, "operator": "GTE", "value": str(self.since)},
                {"propertyName": lastmod, "operator": "LTE", "value": str(self.since)},
                {"propertyName": ID_PROPERTY, "operator": "GT", "value": str(self.after_id)},
            ]
            sort = ID_PROPERTY
        return {
            "filterGroups": [{"filters": filters}],
            "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
            "properties": props,
            "limit": SEARCH_PAGE,
            "after": "0",
        }


@dataclass(frozen=True)
class Cut:
    """What to hand out of one search page, and where the cursor goes next."""

    keep: list[dict[str, Any]]
    cursor: Cursor
    more: bool


def cut(
    cursor: Cursor, results: list[dict[str, Any]], full: bool, horizon: int, lastmod: str
) -> Cut:
    """Decide, for one page answered from ``cursor``, which records to return and the next
    cursor. ``full`` means HubSpot has more beyond this page."""
    stamps = [modified_ms(r, lastmod) for r in results]
    if cursor.after_id is not None:
        if full:
            return Cut(results, Cursor(cursor.since, int(results[-1]["id"])), True)
        return Cut(results, Cursor(cursor.since + 1), True)
    if not full:
        return Cut(results, Cursor(max(cursor.since, horizon + 1)), False)
    first, last = stamps[0], stamps[-1]
    if first == last:
        # A whole page of one timestamp, in no particular order: nothing of it can be kept
        # without repeating it later, so walk that timestamp by id instead.
        return Cut([], Cursor(last, 0), True)
    keep = [r for r, at in zip(results, stamps, strict=True) if at < last]
    return Cut(keep, Cursor(last), True)


def modified_ms(record: dict[str, Any], lastmod: str) -> int:
    """A search result's last-modified time in milliseconds."""
    value = (record.get("properties") or {}).get(lastmod) or record.get("updatedAt")
    return to_ms(str(value))


def to_ms(value: str) -> int:
    """HubSpot's datetime text (ISO 8601 or epoch milliseconds) in milliseconds."""
    if value.isdigit():
        return int(value)
    return round(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
