"""One way to show listings, times and people."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from tasuki.display import local_time, named, render

TOKYO = ZoneInfo("Asia/Tokyo")


def test_local_time_is_in_the_company_zone_and_labelled() -> None:
    at = datetime(2026, 11, 4, 1, 0, tzinfo=UTC)
    assert local_time(at, TOKYO) == "2026-11-04 10:00 JST"
    assert local_time(at, TOKYO, seconds=True) == "2026-11-04 10:00:00 JST"
    assert local_time(at.replace(tzinfo=None), TOKYO) == "2026-11-04 10:00 JST"  # naive = UTC
    assert local_time(at, ZoneInfo("Asia/Kolkata")) == "2026-11-04 06:30 IST"
    assert local_time(at, ZoneInfo("Asia/Dubai")) == "2026-11-04 05:00 +04:00"
    assert local_time(None, TOKYO) == "–"


def test_a_person_is_shown_by_name_with_the_id_in_brackets() -> None:
    assert named("Emma Clarke", "005A") == "Emma Clarke [005A]"
    assert named("", "005A") == "005A"
    assert named("x", None) == "x"
    assert named(None, None) == "–"


ROWS = [
    {"who": "Emma", "note": '=HYPERLINK("http://x")', "n": 3, "gone": None},
    {"who": "岡田", "note": "plain", "n": -1.5, "gone": None},
]
COLUMNS = ["who", "note", "n", "gone"]


def test_csv_is_formula_safe_and_keeps_numbers() -> None:
    text = render(ROWS, COLUMNS, "csv")
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[0] == COLUMNS
    assert parsed[1] == ["Emma", '\'=HYPERLINK("http://x")', "3", ""]
    assert parsed[2] == ["岡田", "plain", "-1.5", ""]


def test_json_keeps_types_and_unicode() -> None:
    text = render(ROWS, COLUMNS, "json")
    assert "岡田" in text
    assert json.loads(text)[1] == {"who": "岡田", "note": "plain", "n": -1.5, "gone": None}


def test_table_shows_every_row_and_a_dash_for_nothing() -> None:
    text = render(ROWS, COLUMNS, "table", title="People")
    assert "People" in text and "岡田" in text and "–" in text


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError):
        render(ROWS, COLUMNS, "xml")
