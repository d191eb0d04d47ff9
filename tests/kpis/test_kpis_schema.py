"""KPI files: the shipped set loads; every mistake is reported with file, line and column."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasuki import kpis
from tasuki.catalog import catalog
from tasuki.errors import ConfigError
from tasuki.kpis import load_kpibook
from tasuki.kpis.schema import KpiKind
from tasuki.settings import Settings


def _load(tmp_path: Path, settings: Settings, text: str) -> kpis.KpiBook:
    path = tmp_path / "kpis.yaml"
    path.write_text(text, encoding="utf-8")
    cfg = settings.config
    return load_kpibook(
        [path], catalog(cfg), {b.id: b.object for b in cfg.boundaries}, related=cfg.related
    )


def test_the_default_set_covers_every_kind_and_department(settings: Settings) -> None:
    book = kpis.book(settings)
    assert {k.kind for k in book.kpis.values()} >= {
        KpiKind.COUNT,
        KpiKind.SUM,
        KpiKind.RATE,
        KpiKind.SLA,
        KpiKind.HANDOFF_PASS_RATE,
    }
    assert set(book.goals) == {"MK", "IS", "FS", "CS"}
    assert all(g.own and g.neighbour for g in book.goals.values())
    assert (book.period, book.fiscal_year_start) == ("month", 4)


BROKEN = """\
period: month
kpis:
  - id: a
    label: A
    kind: count
    events: {handoffs: MK→XX}
    credit: sender
  - id: b
    label: B
    kind: rate
    events: {handoffs: IS→FS}
    credit: sender
    success: {field: no_such_field, equals: x}
  - id: c
    label: C
    kind: sum
    events: {records: deal, at: close_date}
    credit: owner
  - id: d
    label: D
    kind: rate
    events: {handoffs: FS→CS}
    credit: sender
    success: {related: planet, field: status, equals: Active}
goals:
  MK: {own: {a: 1, ghost: 2}}
"""


def test_every_problem_is_reported_at_once_with_its_place(
    tmp_path: Path, settings: Settings
) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, settings, BROKEN)
    file = str(tmp_path / "kpis.yaml")
    assert all(p.file == file for p in caught.value.problems)
    found = {(p.line, p.column): p.message for p in caught.value.problems}
    assert found[(6, 24)] == "unknown boundary 'MK→XX'; configured: MK→IS, IS→FS, FS→CS"
    assert found[(13, 22)].startswith("deal.no_such_field is not mapped; known: account_id, ")
    assert "value (the field summed) goes with kind sum" in found[(14, 5)]
    assert found[(24, 24)].startswith("deal has no related 'planet'")
    assert found[(26, 20)] == "unknown KPI 'ghost'"
    assert len(found) == 5


def test_cross_checks_place_each_problem(tmp_path: Path, settings: Settings) -> None:
    text = BROKEN.replace("    kind: sum\n", "    kind: sum\n    value: amount\n")
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, settings, text)
    found = {(p.line, p.column): p.message for p in caught.value.problems}
    assert found[(6, 24)].startswith("unknown boundary 'MK→XX'")
    assert found[(13, 22)].startswith("deal.no_such_field is not mapped")
    assert found[(25, 24)].startswith("deal has no related 'planet'")
    assert found[(27, 20)] == "unknown KPI 'ghost'"
    assert len(found) == 4


def test_an_unconfigured_boundary_needs_its_object(tmp_path: Path, settings: Settings) -> None:
    text = """\
kpis:
  - {id: x, label: X, kind: count, events: {handoffs: CS→FS}, credit: sender}
"""
    with pytest.raises(ConfigError, match="CS→FS is not configured"):
        _load(tmp_path, settings, text)
    ok = text.replace("{handoffs: CS→FS}", "{handoffs: CS→FS, object: deal}")
    assert _load(tmp_path, settings, ok).event_objects == {"x": "deal"}


def test_a_yaml_syntax_error_is_placed(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, settings, "kpis: [\n  - id: x\n")
    assert caught.value.problems[0].line >= 1
    assert "YAML syntax" in caught.value.problems[0].message


DATED_TARGETS = """\
kpis:
  - id: mqls
    label: MQLs
    kind: count
    events: {handoffs: MK→IS}
    credit: sender
    warned_counts_as: failed
  - id: passing
    label: Passing
    kind: handoff_pass_rate
    events: {handoffs: MK→IS}
    credit: sender
    warned_counts_as: failed
goals:
  MK: {own: {mqls: 20}}
targets:
  - {from: 2026-12, departments: {MK: {mqls: 30}}}
  - {from: FY2026-Q5, people: {"005A": {nope: 3}}}
"""


def test_dated_targets_and_warned_counts_as_are_checked(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, settings, DATED_TARGETS)
    shown = [(p.line, p.message) for p in err.value.problems]
    assert shown[0][0] == 2 and "warned_counts_as goes with kind handoff_pass_rate" in shown[0][1]
    assert any(line == 18 and "not a period" in msg for line, msg in shown)
    good = DATED_TARGETS.replace("    warned_counts_as: failed\n  - id: passing", "  - id: passing")
    good = good.replace('  - {from: FY2026-Q5, people: {"005A": {nope: 3}}}\n', "")
    book = _load(tmp_path, settings, good)
    assert book.kpis["passing"].passing == ("passed",)
    assert [c.from_ for c in book.target_changes] == ["2026-12"]
