"""The README's examples stay true: its rules and KPI examples load, and the demo prints the
figures it quotes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from rules import load_rulebook
from tasuki.catalog import catalog
from tasuki.cli import main
from tasuki.settings import load_settings

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_rules_example_loads(tmp_path: Path) -> None:
    text = README.read_text(encoding="utf-8")
    start = text.index("```yaml\nrule_sets:") + len("```yaml\n")
    example = tmp_path / "rules.yaml"
    example.write_text(text[start : text.index("```", start)], encoding="utf-8")
    book = load_rulebook([example], catalog(load_settings({}).config))
    assert book.digest


def test_the_readme_kpi_example_loads(tmp_path: Path) -> None:
    from tasuki.kpis import load_kpibook

    text = README.read_text(encoding="utf-8")
    start = text.index("```yaml\nkpis:") + len("```yaml\n")
    example = tmp_path / "kpis.yaml"
    example.write_text(text[start : text.index("```", start)], encoding="utf-8")
    config = load_settings({}).config
    book = load_kpibook(
        [example],
        catalog(config),
        {b.id: b.object for b in config.boundaries},
        related=config.related,
    )
    assert set(book.kpis) == {"mk_mqls", "mk_mql_to_meeting"}


DEMO_FIGURES = re.compile(
    r"`tasuki demo --until (?P<until>\d{4}-\d{2}-\d{2})` always gives\s+the same figures: "
    r"(?P<notices>[\d,]+) change notices, (?P<handoffs>[\d,]+) handoffs, and\s+"
    r"(?P<fields>[\d,]+) fields written to (?P<records>[\d,]+) records in\s+"
    r"(?P<calls>[\d,]+) write calls \(the minimum\)"
)


def _printed(output: str, pattern: str) -> int:
    found = re.search(pattern, output)
    assert found is not None, f"the demo no longer prints {pattern!r}"
    return int(found.group(1))


def test_the_readme_demo_figures_are_what_the_demo_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    claimed = DEMO_FIGURES.search(README.read_text(encoding="utf-8"))
    assert claimed is not None, "the README's demo figures sentence changed shape"
    monkeypatch.setenv("TASUKI_DATA_DIR", str(tmp_path / "data"))
    for name in ("TASUKI_CONFIG", "TASUKI_DATABASE_URL", "TASUKI_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    done = CliRunner().invoke(main, ["demo", "--until", claimed["until"]], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    printed = {
        "notices": _printed(done.output, r"(\d+) change notices in"),
        "handoffs": _printed(done.output, r"(\d+) handoffs judged and written back"),
        "fields": _printed(done.output, r"fields changed\s*│\s*(\d+)"),
        "records": _printed(done.output, r"records written\s*│\s*(\d+)"),
        "calls": _printed(done.output, r"write API calls made\s*│\s*(\d+)"),
    }
    minimum = _printed(done.output, r"minimum possible write calls\s*│\s*(\d+)")
    assert printed == {k: int(claimed[k].replace(",", "")) for k in printed}
    assert printed["calls"] == minimum
