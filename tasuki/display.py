"""One way to show listings, times and people in every command.

- :func:`render` prints rows as a table, CSV or JSON (``--format``). CSV cells that a
  spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, tab, CR) are prefixed with an
  apostrophe, and table cells are printed as text, never as rich markup: CRM text is untrusted.
- :func:`local_time` shows an instant in the company's timezone with its zone:
  ``2026-11-04 10:00 JST``.
- :func:`named` shows a person or record by name with the CRM id in brackets.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, tzinfo
from enum import Enum
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text


class Format(str, Enum):
    """How a listing is printed."""

    TABLE = "table"
    CSV = "csv"
    JSON = "json"


FORMATS = tuple(f.value for f in Format)
"""The ``--format`` choices."""

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: object) -> str:
    """A cell as text, with a leading quote when a spreadsheet would read it as a formula (CRM
    text is untrusted: ``=HYPERLINK(...)`` must stay text). Numbers are left as they are."""
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    text = str(_json_value(value))
    return "'" + text if text.startswith(_FORMULA_START) else text


def _json_value(value: object) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return value


def render(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    fmt: str = "table",
    *,
    title: str | None = None,
) -> str:
    """``rows`` (mappings keyed by ``columns``) as ``fmt``, returned for the caller to print: a
    text table (200 columns wide), CSV with a header row, or a JSON array of objects (datetimes
    as ISO 8601 with their offset). ``None`` shows as "–" in a table, empty in CSV, ``null`` in
    JSON. An unknown format is a ``ValueError``."""
    try:
        kind = Format(fmt)
    except ValueError as exc:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}") from exc
    if kind is Format.JSON:
        return json.dumps(
            [{c: _json_value(r.get(c)) for c in columns} for r in rows],
            ensure_ascii=False,
            indent=2,
        )
    if kind is Format.CSV:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for r in rows:
            writer.writerow([csv_safe(r.get(c)) for c in columns])
        return out.getvalue()
    table = Table(title=title)
    for c in columns:
        table.add_column(c)
    for r in rows:
        table.add_row(*(Text("–" if r.get(c) is None else str(r.get(c))) for c in columns))
    buffer = io.StringIO()
    Console(file=buffer, width=200, force_terminal=False, no_color=True).print(table)
    return buffer.getvalue()


def zone_label(at: datetime, tz: tzinfo) -> str:
    """The zone's abbreviation at ``at`` (``JST``), else its UTC offset (``+05:30``)."""
    local = at.astimezone(tz)
    name = local.tzname() or ""
    if name and not name.startswith(("+", "-")):
        return name
    offset = local.strftime("%z")
    return offset[:3] + ":" + offset[3:]


def local_time(at: datetime | None, tz: tzinfo, *, seconds: bool = False) -> str:
    """``at`` in ``tz`` with its zone: ``2026-11-04 10:00 JST`` (naive = UTC; None = "–")."""
    if at is None:
        return "–"
    aware = at if at.tzinfo else at.replace(tzinfo=UTC)
    local = aware.astimezone(tz)
    shown = local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return f"{shown} {zone_label(aware, tz)}"


def named(name: str | None, ident: str | None) -> str:
    """A person or record as people read it: ``Emma Clarke [005A1]``; the id alone when no name
    is known, the name alone when there is no id."""
    if not ident:
        return name or "–"
    return f"{name} [{ident}]" if name and name != ident else ident
