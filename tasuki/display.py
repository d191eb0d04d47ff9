"""One way to show time and people: the company's timezone, labelled; listings as a table,
CSV or JSON (``--format``).

CSV cells that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, tab, CR) are
prefixed with an apostrophe: CRM text is untrusted. Table cells are printed as text, never as
rich markup.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime, tzinfo
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

FORMATS = ("table", "csv", "json")
"""What ``--format`` accepts."""

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def local_time(at: datetime | None, tz: tzinfo) -> str:
    """``at`` in the company's timezone with its abbreviation: ``2026-11-04 10:00 JST``."""
    if at is None:
        return "–"
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def named(name: str | None, ident: str | None) -> str:
    """A person or record by name with its id in brackets (``Emma Clarke [005A1]``); the id
    alone when no name is known."""
    if ident is None:
        return name or "–"
    return f"{name} [{ident}]" if name and name != ident else ident


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _csv_cell(value: Any) -> str:
    text = "" if value is None else str(_plain(value))
    return "'" + text if text.startswith(_FORMULA_START) else text


def render(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    fmt: str,
    *,
    title: str | None = None,
) -> str:
    """``rows`` (dicts keyed by ``columns``) as a text table, CSV with a header row, or a JSON
    array of objects (datetimes as ISO 8601 with their offset)."""
    if fmt == "json":
        return json.dumps(
            [{c: _plain(r.get(c)) for c in columns} for r in rows],
            ensure_ascii=False,
            indent=2,
        )
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for r in rows:
            writer.writerow([_csv_cell(r.get(c)) for c in columns])
        return out.getvalue()
    if fmt != "table":
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    table = Table(title=title)
    for c in columns:
        table.add_column(c)
    for r in rows:
        table.add_row(*(Text("" if r.get(c) is None else str(r.get(c))) for c in columns))
    buffer = io.StringIO()
    Console(file=buffer, width=160, force_terminal=False, no_color=True).print(table)
    return buffer.getvalue()
