"""The README's examples stay true: its rules example is a valid rule file."""

from __future__ import annotations

from pathlib import Path

from rules import load_rulebook
from tasuki.catalog import catalog
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
