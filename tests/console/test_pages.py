"""The pages beyond their figures: bad input, hostile CRM text, CSV safety, the handoff page,
languages, and the static report."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from flask.testing import FlaskClient

from tasuki.console.csvfile import guarded, to_csv
from tasuki.settings import Settings
from tasuki.store.db import Store
from tests.console.org import FORMULA_COMPANY, IMG_NAME, SCRIPT_NAME
from tests.console.support import OPS_TOKEN

CATALOG = Path(__file__).parents[2] / "tasuki/console/translations/ja/LC_MESSAGES/messages"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/console/?period=2026-13", 404),
        ("/console/?period=FY2026-Q5", 404),
        ("/console/?period=2099-01", 404),
        ("/console/boundaries?period=<script>", 404),
        ("/console/handoffs?page=999", 404),
        ("/console/handoffs?page=0", 400),
        ("/console/handoffs?page=abc", 400),
        ("/console/handoffs?verdict=maybe", 400),
        ("/console/handoffs?boundary=XX→YY", 400),
        ("/console/handoffs?sender=%27%3B%20DROP%20TABLE%20handoffs%3B--", 400),
        ("/console/handoffs?q=" + "x" * 300, 400),
        ("/console/handoffs/999999", 404),
        ("/console/explain?kpi=nope", 404),
        ("/console/?format=csv&table=nope", 404),
        ("/console/lang/fr", 404),
    ],
)
def test_bad_input_is_a_clear_4xx_page_never_a_5xx(
    ops: FlaskClient, path: str, status: int
) -> None:
    response = ops.get(path)
    assert response.status_code == status
    page = response.get_data(as_text=True)
    assert 'id="error"' in page
    assert "<script>" not in page.split("</header>")[-1]


def test_a_search_with_sql_or_html_is_text(ops: FlaskClient) -> None:
    response = ops.get("/console/handoffs?period=2026-10&q=%22%3E%3Cscript%3Ealert(1)%3C/script%3E")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "<script>alert(1)" not in page
    assert "&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_hostile_lead_names_are_text_on_every_page(ops: FlaskClient, org: dict[str, int]) -> None:
    pages = [
        ops.get("/console/handoffs?period=2026-10").get_data(as_text=True),
        ops.get(f"/console/handoffs/{org['L1']}").get_data(as_text=True),
        ops.get(f"/console/handoffs/{org['L2']}").get_data(as_text=True),
    ]
    for page in pages:
        assert SCRIPT_NAME not in page and IMG_NAME not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in pages[0]
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in pages[0]


def test_csv_cells_never_start_a_formula(ops: FlaskClient) -> None:
    text = ops.get("/console/handoffs?period=2026-10&format=csv&table=handoffs").get_data(
        as_text=True
    )
    assert "'" + FORMULA_COMPANY.replace('"', '""') in text
    assert "\n=" not in text and ",=" not in text
    assert guarded("+1") == "'+1" and guarded("@SUM(A1)") == "'@SUM(A1)"
    assert guarded("-2") == "'-2" and guarded(-2) == "-2" and guarded(0.5) == "0.5"
    assert to_csv(["a"], [["=1"]]).startswith("\ufeffa\r\n'=1")


def test_the_handoff_page_shows_verdict_clock_and_names(
    ops: FlaskClient, org: dict[str, int]
) -> None:
    page = ops.get(f"/console/handoffs/{org['D2']}").get_data(as_text=True)
    assert "Beta expansion" in page
    assert "Ken Sato → Noah Bennett" in page  # names, not CRM ids
    assert "is-fs.fs-answer-sla" in page and "FS did not accept in time" in page
    assert 'id="clock"' in page and "answered late" in page
    assert "2026-10-06 10:00 JST" in page  # the company's timezone, labelled
    csv_text = ops.get(f"/console/handoffs/{org['D2']}?format=csv&table=verdict").get_data(
        as_text=True
    )
    assert "is-fs.fs-answer-sla" in csv_text


def test_the_browser_language_picks_and_the_switch_overrides(ops: FlaskClient) -> None:
    ops.delete_cookie("tasuki_lang")
    ja = ops.get("/console/", headers={"Accept-Language": "ja,en;q=0.5"})
    assert "概要" in ja.get_data(as_text=True)
    en = ops.get("/console/", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert ">Overview<" in en.get_data(as_text=True)
    switched = ops.get("/console/lang/ja?next=/console/boundaries")
    assert switched.headers["Location"] == "/console/boundaries"
    again = ops.get("/console/boundaries", headers={"Accept-Language": "en"})
    assert "境界" in again.get_data(as_text=True)
    away = ops.get("/console/lang/en?next=https://evil.example/")
    assert away.headers["Location"] == "/console/"


def test_every_message_has_a_japanese_translation_and_the_mo_matches_the_po() -> None:
    with open(f"{CATALOG}.po", "rb") as f:
        po = read_po(f)
    with open(f"{CATALOG}.mo", "rb") as f:
        mo = read_mo(f)
    untranslated = [m.id for m in po if m.id and not m.string]
    assert untranslated == []
    assert {m.id: m.string for m in po if m.id} == {m.id: m.string for m in mo if m.id}


def test_every_message_in_the_templates_is_in_the_catalog() -> None:
    from babel.messages.extract import extract_from_dir

    root = Path(__file__).parents[2] / "tasuki/console"
    found = {
        msg[2] if isinstance(msg[2], str) else msg[2][0]
        for msg in extract_from_dir(
            str(root),
            method_map=[("templates/**.html", "jinja2"), ("**.py", "python")],
        )
    }
    with open(f"{CATALOG}.po", "rb") as f:
        known = {m.id for m in read_po(f) if m.id}
    assert found - known == set()


def test_the_static_report_is_self_contained_and_escaped(
    settings: Settings, store: Store, org: dict[str, int], tmp_path: Path
) -> None:
    from tasuki.console.report import write_report

    out = tmp_path / "report.html"
    assert write_report(settings, out, period="2026-10", language="en", store=store) == "2026-10"
    html = out.read_text(encoding="utf-8")
    assert "<script" not in html and "src=" not in html.replace("src=x", "")
    assert 'href="/' not in html and "http://" not in html  # no link back to a server
    for section in ('id="overview"', 'id="boundaries"', 'id="people"'):
        assert section in html
    assert "Aiko Mori" in html and "55%" in html
    assert OPS_TOKEN not in html


def test_stored_alarms_show_on_the_overview_and_people_pages(
    ops: FlaskClient, store: Store
) -> None:
    from tasuki.store.models import AlarmRow

    with store.session() as s:
        s.add(
            AlarmRow(
                system="local",
                pair_id="mk-mqls-vs-meetings",
                pair_label="MQLs vs MQL→meeting rate",
                department="MK",
                subject_kind="person",
                subject_id="u-mk1",
                period="2026-10",
                previous_period="2026-09",
                own_kpi_id="mk_mqls",
                own_label="MQLs",
                own_is_ratio=False,
                own_previous=10,
                own_current=15,
                own_threshold=0.1,
                neighbour_kpi_id="mk_mql_to_meeting",
                neighbour_label="MQL→meeting rate",
                neighbour_is_ratio=True,
                neighbour_previous=0.6,
                neighbour_current=0.3,
                neighbour_threshold=0.1,
            )
        )
    for path in ("/console/?period=2026-10", "/console/people?period=2026-10"):
        page = ops.get(path).get_data(as_text=True)
        assert 'class="alarm-row"' in page and "Aiko Mori" in page
        assert "MQLs: 10 → 15" in page and "60.0% → 30.0%" in page
    quiet = ops.get("/console/?period=2026-09").get_data(as_text=True)
    assert 'id="no-alarms"' in quiet
