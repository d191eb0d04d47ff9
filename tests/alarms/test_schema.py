"""alarms.yaml: the shipped pairs, and every mistake of a file reported at once, placed."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tasuki.alarms import alarm_book, load_alarm_book
from tasuki.cli import main
from tasuki.errors import ConfigError
from tasuki.kpis import book
from tasuki.kpis.periods import PeriodKind
from tasuki.settings import Settings, builtin_path
from tests.alarms.support import with_alarms


def test_the_shipped_pairs_cover_the_four_departments(settings: Settings) -> None:
    pairs = alarm_book(settings).pairs
    assert [(p.department, p.own, p.neighbour) for p in pairs] == [
        ("MK", "mk_mqls", "mk_mql_to_meeting"),
        ("IS", "is_meetings", "is_meetings_accepted"),
        ("FS", "fs_won_revenue", "fs_early_retention"),
        ("CS", "cs_retention", "cs_expansion_conversion"),
    ]
    kpis = book(settings).kpis
    assert all(p.own in kpis and p.neighbour in kpis for p in pairs)
    assert {(p.own_improves_by, p.neighbour_worsens_by, p.min_events) for p in pairs} == {
        (0.1, 0.1, 5)
    }
    assert {p.subjects for p in pairs} == {("department", "person")}


BROKEN = """\
defaults:
  own_improves_by: ten%
  colour: red
alarms:
  - id: mk
    department: MK
    own: mk_mqls
    neighbour: mk_mql_to_meetings
  - id: mk
    department: IS
    own: is_meetings
    neighbour: is_meetings
  - id: fs
    department: SALES
    own: fs_won_revenue
    neighbour: fs_early_retention
    neighbour_worsens_by: 150%
  - id: q
    department: MK
    own: mk_quarterly
    neighbour: mk_mql_to_meeting
"""


def test_every_mistake_is_reported_at_once_with_its_place(
    settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "alarms.yaml"
    path.write_text(BROKEN, encoding="utf-8")
    kpis = dict(book(settings).kpis)
    kpis["mk_quarterly"] = kpis["mk_mqls"].model_copy(
        update={"id": "mk_quarterly", "period": PeriodKind.QUARTER}
    )
    with pytest.raises(ConfigError) as caught:
        load_alarm_book(path, kpis, PeriodKind.MONTH)
    found = {(p.line, p.column): p.message for p in caught.value.problems}
    assert all(p.file == str(path) for p in caught.value.problems)
    assert "not a percentage" in found[(2, 20)]
    assert "unknown setting" in found[(3, 3)]
    assert "unknown KPI 'mk_mql_to_meetings'" in found[(8, 16)]
    assert "duplicate alarm id 'mk' (first at line 5)" in found[(9, 9)]
    assert "own and neighbour are the same KPI" in found[(12, 16)]
    assert "department" in found[(14, 17)]
    assert "neighbour_worsens_by" in found[(17, 27)]
    assert "per quarter" in found[(21, 16)] and "per month" in found[(21, 16)]
    assert len(found) == 8


def test_the_alarms_file_beside_tasuki_yaml_is_the_one_read(
    settings: Settings, tmp_path: Path
) -> None:
    text = (
        "alarms:\n  - {id: is_only, department: IS, own: is_meetings, neighbour: is_fs_pass_rate,"
    )
    text += " own_improves_by: 25%, subjects: [team]}\n"
    pairs = alarm_book(with_alarms(settings, tmp_path, text)).pairs
    assert [(p.id, p.own_improves_by, p.neighbour_worsens_by, p.subjects) for p in pairs] == [
        ("is_only", 0.25, 0.1, ("team",))
    ]


def test_check_names_file_line_and_column(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "tasuki.yaml"
    config.write_text(builtin_path("tasuki.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "alarms.yaml").write_text(BROKEN, encoding="utf-8")
    monkeypatch.setenv("TASUKI_CONFIG", str(config))
    monkeypatch.setenv("TASUKI_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(main, ["alarms", "check"])
    assert result.exit_code == 2
    assert f"{tmp_path / 'alarms.yaml'}:8:16: unknown KPI 'mk_mql_to_meetings'" in result.output
    assert "unknown KPI 'mk_quarterly'" in result.output  # not in the shipped book
    assert "8 problem(s)" in result.output


def test_the_readme_alarms_example_loads(settings: Settings, tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    start = text.index("```yaml\ndefaults:\n  own_improves_by") + len("```yaml\n")
    (tmp_path / "alarms.yaml").write_text(text[start : text.index("```", start)], "utf-8")
    b = book(settings)
    pairs = load_alarm_book(tmp_path / "alarms.yaml", b.kpis, b.period).pairs
    assert [(p.own, p.neighbour, p.own_improves_by, p.neighbour_worsens_by) for p in pairs] == [
        ("mk_mqls", "mk_mql_to_meeting", 0.1, 0.05)
    ]
