"""One way to show listings, times and people in every command.

- :func:`render` prints rows as a table (rich), CSV (formula-safe) or JSON.
- :func:`local_time` shows an instant in the company's timezone with its zone:
  ``2026-11-04 10:00 JST``.
- :func:`person_label` shows a person by name with the CRM id in brackets.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table


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
    text = str(value)
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
    console: Console | None = None,
) -> str:
    """``rows`` (mappings keyed by ``columns``) as ``fmt``; the table is printed to ``console``
    (default: stdout, wide) and returned as text, CSV and JSON are returned for the caller to
    print. ``None`` shows as "–" in a table, empty in CSV, ``null`` in JSON."""
    kind = Format(fmt)
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
        table.add_row(*("–" if r.get(c) is None else str(r.get(c)) for c in columns))
    con = console or Console(width=200)
    with con.capture() as captured:
        con.print(table)
    return captured.get()


def zone_label(at: datetime, tz: ZoneInfo) -> str:
    """The zone's abbreviation at ``at`` (``JST``), else its UTC offset (``+05:30``)."""
    local = at.astimezone(tz)
    name = local.tzname() or ""
    if name and not name.startswith(("+", "-")):
        return name
    return local.strftime("%z")[:3] + ":" + local.strftime("%z")[3:]


def local_time(at: datetime | None, tz: ZoneInfo, *, seconds: bool = False) -> str:
    """``at`` in ``tz`` with its zone: ``2026-11-04 10:00 JST`` (naive = UTC; None = "–")."""
    if at is None:
        return "–"
    aware = at if at.tzinfo else at.replace(tzinfo=UTC)
    local = aware.astimezone(tz)
    shown = local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return f"{shown} {zone_label(aware, tz)}"


def person_label(user_id: str | None, name: str | None) -> str:
    """A person as people read it: ``Emma Clarke [005…]``; the id alone when no name is known."""
    if not user_id:
        return "–"
    if not name or name == user_id:
        return user_id
    return f"{name} [{user_id}]"
