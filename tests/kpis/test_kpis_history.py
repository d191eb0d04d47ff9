"""Figures that hold over time: quarters and fiscal years computed whole, targets that apply from
a period on, closed periods that keep their attainment unless deliberately restated."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tasuki import kpis
from tasuki.kpis.computation import restatement
from tasuki.settings import Settings, builtin_path, load_settings
from tasuki.store.db import Store
from tasuki.store.models import KpiValue

NOW = datetime(2026, 11, 30, 0, 30, tzinfo=UTC)
DECEMBER = datetime(2026, 12, 2, 0, 30, tzinfo=UTC)
"""November is closed."""


def figures(store: Store, period: str) -> dict[tuple[str, str, str], tuple[Any, ...]]:
    with store.session() as s:
        rows = s.scalars(select(KpiValue).where(KpiValue.period == period)).all()
    return {
        (v.kpi_id, v.subject_kind, v.subject_id): (v.value, v.numerator, v.denominator, v.target)
        for v in rows
    }


def test_a_quarter_and_a_fiscal_year_are_their_months_together(
    store: Store, settings: Settings, org: object
) -> None:
    months = ["2026-10", "2026-11", "2026-12"]
    kpis.compute(store, settings, now=NOW, periods=[*months, "FY2026-Q3", "FY2026"])
    q, fy = figures(store, "FY2026-Q3"), figures(store, "FY2026")
    # MQLs: M1 handed L3 in October and L1, L2, L6 in November; M2 L4 in November.
    assert q[("mk_mqls", "person", "M1")][:3] == (4.0, 4.0, 4.0)
    assert q[("mk_mqls", "org", "org")][0] == 5.0
    # Meetings: I1 sent D1, D4, D5, D6 in November and D2 in December; I2 sent D3.
    assert q[("is_meetings", "person", "I1")][0] == 5.0
    assert q[("is_meetings", "department", "IS")][0] == 6.0
    # A rate is the ratio of the summed parts, not a mean of monthly rates: M1's MQLs that
    # became a meeting within 30 days: October L3 no (0/1); November L1 yes, L2 and L6 no (1/3).
    assert q[("mk_mql_to_meeting", "person", "M1")][:3] == (0.25, 1.0, 4.0)
    # Deals I1 sourced, closed: D9 won in October; D1, D7 won and D8 lost in November: 3 of 4.
    assert q[("is_sourced_win_rate", "person", "I1")][:3] == (0.75, 3.0, 4.0)
    # The fiscal year has no other events: the same figures.
    for key in [("mk_mqls", "org", "org"), ("is_sourced_win_rate", "person", "I1")]:
        assert fy[key][:3] == q[key][:3]
    # Every count and sum over the quarter is its months added up, for every subject.
    per_month = [figures(store, m) for m in months]
    for key, row in q.items():
        if key[0] in ("mk_mqls", "is_meetings", "fs_won_revenue"):
            assert row[0] == sum(m.get(key, (0.0,))[0] or 0.0 for m in per_month), key
    # A monthly goal over a quarter: a count's target is three months' worth, a rate's is kept.
    assert q[("mk_mqls", "person", "M1")][3] == 60
    assert q[("mk_mql_to_meeting", "person", "M1")][3] == 0.4


def _book(tmp_path: Path, name: str, replace: dict[str, str], extra: str = "") -> Path:
    text = builtin_path("kpis/default.yaml").read_text(encoding="utf-8")
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / name
    path.write_text(text + extra, encoding="utf-8")
    return path


def _with_book(settings: Settings, path: Path) -> Settings:
    config = settings.config.model_copy(update={"kpis": [str(path)]})
    return load_settings({"TASUKI_DATA_DIR": str(settings.data_dir)}, config=config)


def test_a_target_changed_in_december_leaves_novembers_attainment_as_it_was(
    store: Store, settings: Settings, org: object, tmp_path: Path
) -> None:
    m1 = ("mk_mqls", "person", "M1")
    kpis.compute(store, settings, now=DECEMBER, periods=["2026-11"])
    assert figures(store, "2026-11")[m1] == (3.0, 3.0, 3.0, 20.0)
    summary = {p.person_id: p for p in kpis.person_summary(store, settings, "2026-11", DECEMBER)}
    attained = summary["M1"].own[0].attainment
    assert attained == pytest.approx(3 / 20)

    # The way to change a target: from a period on.
    dated = _with_book(
        settings,
        _book(
            tmp_path,
            "dated.yaml",
            {
                "targets:\n  people: {}\n  teams: {}": "targets:\n  - from: 2026-12\n"
                "    departments: {MK: {mk_mqls: 30}}"
            },
        ),
    )
    kpis.compute(store, dated, now=DECEMBER, periods=["2026-11", "2026-12"])
    assert figures(store, "2026-11")[m1][3] == 20.0
    assert figures(store, "2026-12").get(m1, (None, None, None, 30.0))[3] == 30.0
    assert kpis.person_summary(store, dated, "2026-12", DECEMBER)[0].own[0].target == 30.0

    # Editing the goal in place: November is closed and keeps the target it was computed with.
    edited = _with_book(
        settings, _book(tmp_path, "edited.yaml", {"own: {mk_mqls: 20}": "own: {mk_mqls: 25}"})
    )
    kpis.compute(store, edited, now=DECEMBER, periods=["2026-11"])
    assert figures(store, "2026-11")[m1] == (3.0, 3.0, 3.0, 20.0)
    summary = {p.person_id: p for p in kpis.person_summary(store, edited, "2026-11", DECEMBER)}
    assert summary["M1"].own[0].attainment == attained

    # A deliberate restatement: the diff first, nothing written by it …
    diff = restatement(store, edited, "2026-11", now=DECEMBER)
    assert (m1, (3.0, 20.0), (3.0, 25.0)) in diff
    assert all(old is not None and new is not None and old[1] != new[1] for _, old, new in diff)
    assert figures(store, "2026-11")[m1][3] == 20.0
    # … then written when asked.
    kpis.compute(store, edited, now=DECEMBER, periods=["2026-11"], restate=True)
    assert figures(store, "2026-11")[m1][3] == 25.0
    assert restatement(store, edited, "2026-11", now=DECEMBER) == []
