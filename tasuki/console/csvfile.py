"""Tables as CSV files that spreadsheets open safely.

A cell a spreadsheet would take for a formula (starting ``=``, ``+``, ``-``, ``@``, or a tab or
carriage return before one) gets a leading apostrophe, as OWASP advises: CRM text is untrusted.
Numbers stay numbers (a negative figure is written as a number, not guarded).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def guarded(value: object) -> str:
    """``value`` as a CSV cell a spreadsheet will not evaluate."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def to_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """The table as CSV text with a UTF-8 byte order mark (Excel reads Japanese right)."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([guarded(h) for h in header])
    for row in rows:
        writer.writerow([guarded(v) for v in row])
    return out.getvalue()
