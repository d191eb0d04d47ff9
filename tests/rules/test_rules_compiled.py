"""Compiled rule packs (rules/compiler.py) give the interpreted engine's verdicts, to the bit.

Hypothesis generates handoffs whose fields hold every kind of value a CRM sends (empty, blank,
full-width blanks, short and long text in ASCII and Japanese, numbers, booleans, lists, ISO
dates and times, naive and aware, and unreadable ones), with and without related records and
artifacts, and every verdict of the compiled functions is compared with
``Rulebook.evaluate_interpreted`` on the default pack and on a pack using every check type,
combinations, ``when`` on rule sets and rules, fractional weights and rule sets for any object.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules import Artifact, HandoffContext, Rulebook, load_rulebook
from tasuki.settings import builtin_path
from tests.rules.rules_support import CALENDAR, CATALOG, TOKYO, handoff, rulebook_from

EVERY_CHECK = """
version: 1
rule_sets:
  - boundary: MK→IS
    rules:
      - {id: a1, check: required, field: lead.company, message: m, weight: 0.1}
      - {id: a2, check: length, field: lead.inquiry, min: 3, max: 12, message: m, weight: 0.7}
      - {id: a3, check: length, field: lead.name, max: 4, optional: true, message: m}
      - {id: a4, check: length, field: lead.status, min: 0, max: 3, message: m, severity: warn}
      - {id: a5, check: pattern, field: lead.email, regex: '^[a-z]+@', ignore_case: true,
         message: m}
      - {id: a6, check: pattern, field: lead.phone, regex: '\\d{3}', optional: true, message: m}
      - {id: a7, check: one_of, field: lead.lead_source, values: [Web, Event, 3, true],
         message: m, weight: 0.3}
      - {id: a8, check: one_of, field: lead.status, values: [open, closed], optional: true,
         message: m}
      - {id: a9, check: related, object: account, message: m, severity: warn}
      - {id: a10, check: related, object: account, message: m,
         require: {check: one_of, field: account.is_target, values: [true]}}
      - {id: a11, check: any, message: m, of: [{check: required, field: account.industry},
         {check: not, of: {check: length, field: lead.company, min: 4}}]}
      - {id: a12, check: all, message: m, of: [{check: required, field: lead.owner},
         {check: range, field: lead.tasuki_score, min: 10, max: 90}]}
      - {id: a13, check: sla, start: lead.mql_at, end: lead.first_touch_at,
         within: 2 business hours, message: m, weight: 2.5}
      - {id: a14, check: date_order, first: lead.created_at, then: lead.mql_at, message: m}
      - {id: a15, check: date_order, first: lead.created_at, then: lead.modified_at,
         strict: false, by: day, message: m, severity: warn}
      - {id: a16, check: expression, expr: 'lead.tasuki_score is None or lead.tasuki_score > 5',
         message: m}
      - {id: a17, check: required, field: deal.amount, message: m,
         when: {check: required, field: lead.account_id}}
  - boundary: MK→IS
    object: lead
    when: {check: any, of: [{check: range, field: lead.tasuki_score, min: 50},
           {check: pattern, field: lead.company, regex: '株式会社'}]}
    rules:
      - {id: b1, check: date_window, field: lead.first_touch_at, from: lead.mql_at,
         min: 1 hour, max: 3 business days, message: m}
      - {id: b2, check: date_window, field: now, max: 30 days, message: m, weight: 0.2}
      - {id: b3, check: artifact, kind: call, before: 2 days, after: 1 business day,
         hosts: ['*.miitel.jp'], url_field: lead.inquiry, message: m}
      - {id: b4, check: sla, end: lead.first_touch_at, within: 90 minutes, message: m}
  - boundary: IS→FS
    object: deal
    rules:
      - {id: c1, check: url, field: deal.call_recording_url, hosts: [zoom.us], message: m}
      - {id: c2, check: not, of: {check: required, field: deal.reject_reason}, message: m,
         when: {check: one_of, field: deal.fs_acceptance, values: [Accepted]}}
      - {id: c3, check: artifact, message: m}
  - boundary: CS→FS
    rules:
      - {id: d1, check: required, field: deal.need, severity: warn, message: m}
      - {id: d2, check: length, field: deal.need, max: 3, severity: warn, message: m}
"""

_TEXT = st.sampled_from(
    [
        "",
        " ",
        "\u3000",
        "\t\n",
        "x",
        "abcd",
        "Web",
        "true",
        "TRUE",
        "3",
        "3.0",
        "1,200",
        "open",
        "株式会社サンプル",
        "が",
        "か\u3099か\u3099か\u3099",
        "  padded  ",
        "abc@example.jp",
        "ABC@x",
        "03-1234-5678",
        "a" * 30,
        "https://zoom.us/rec/1",
        "https://app.miitel.jp/v1/calls/1",
        "ftp://zoom.us/x",
        "next week",
    ]
)
_INSTANT = st.builds(
    lambda days, minutes, form: _written(
        datetime(2025, 3, 10, 9, 0, tzinfo=TOKYO) + timedelta(days=days, minutes=minutes), form
    ),
    st.integers(-10, 10),
    st.integers(0, 24 * 60),
    st.sampled_from(["aware", "utc", "naive", "date", "dt"]),
)
VALUE = st.one_of(
    st.none(),
    _TEXT,
    _INSTANT,
    st.booleans(),
    st.integers(-5, 120),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6),
    st.sampled_from([[], ["a"], {}, {"k": 1}]),
)


def _written(at: datetime, form: str) -> Any:
    if form == "aware":
        return at.isoformat()
    if form == "utc":
        return at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if form == "naive":
        return at.replace(tzinfo=None).isoformat()
    if form == "date":
        return at.date().isoformat()
    return at


def _record(obj: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(list(CATALOG[obj])), VALUE, max_size=12)


@st.composite
def contexts(draw: st.DrawFn) -> HandoffContext:
    boundary, obj = draw(
        st.sampled_from(
            [
                ("MK→IS", "lead"),
                ("MK->IS", "lead"),
                ("mk→is", "deal"),
                ("IS→FS", "deal"),
                ("FS→CS", "deal"),
                ("CS→FS", "deal"),
                ("XX→YY", "lead"),
            ]
        )
    )
    related = {}
    if draw(st.booleans()):
        related["account"] = draw(_record("account"))
    if draw(st.booleans()):
        related["deal" if obj == "lead" else "lead"] = draw(
            _record("deal" if obj == "lead" else "lead")
        )
    artifacts = draw(
        st.lists(
            st.builds(
                lambda kind, url, hours: Artifact(
                    kind, url, datetime(2025, 3, 10, 1, 0, tzinfo=UTC) + timedelta(hours=hours)
                ),
                st.sampled_from(["call", "meeting"]),
                st.sampled_from(["https://x.miitel.jp/c/1", "https://zoom.us/r/2", "nope"]),
                st.integers(-100, 100),
            ),
            max_size=2,
        )
    )
    at = f"2025-03-{draw(st.integers(3, 14)):02d} {draw(st.integers(0, 23)):02d}:00"
    now = f"2025-03-{draw(st.integers(14, 28)):02d} 12:00"
    return handoff(
        boundary, obj, draw(_record(obj)), at=at, now=now, related=related, artifacts=artifacts
    )


@pytest.fixture(scope="module")
def every_check(tmp_path_factory: pytest.TempPathFactory) -> Rulebook:
    return rulebook_from(tmp_path_factory.mktemp("compiled"), EVERY_CHECK)


@pytest.fixture(scope="module")
def default_pack() -> Rulebook:
    return load_rulebook([builtin_path("rules/default.yaml")], CATALOG)


_SETTINGS = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(ctx=contexts())
def test_every_check_type_judges_as_interpreted(every_check: Rulebook, ctx: HandoffContext) -> None:
    assert every_check.evaluate(ctx, CALENDAR) == every_check.evaluate_interpreted(ctx, CALENDAR)


@_SETTINGS
@given(ctx=contexts())
def test_the_default_pack_judges_as_interpreted(
    default_pack: Rulebook, ctx: HandoffContext
) -> None:
    assert default_pack.evaluate(ctx, CALENDAR) == default_pack.evaluate_interpreted(ctx, CALENDAR)


def test_generated_handoffs_reach_every_outcome(every_check: Rulebook) -> None:
    """The comparison above is not vacuous: the generated handoffs pass, warn and fail."""
    seen: set[str] = set()

    @settings(max_examples=300, deadline=None)
    @given(ctx=contexts())
    def collect(ctx: HandoffContext) -> None:
        seen.add(every_check.evaluate(ctx, CALENDAR).outcome.value)

    collect()
    assert seen == {"passed", "warned", "failed"}


def test_the_bench_contexts_judge_as_interpreted(default_pack: Rulebook) -> None:
    import bench.rules as bench

    for ctx in bench.make_contexts(3000):
        assert default_pack.evaluate(ctx, CALENDAR) == default_pack.evaluate_interpreted(
            ctx, CALENDAR
        )


def test_a_compiled_boundary_shows_its_source(every_check: Rulebook, tmp_path: Path) -> None:
    verdict = every_check.evaluate(handoff("MK→IS", "lead", {}), CALENDAR)
    assert verdict.outcome.value == "failed"
    assert "def judge_MK_IS(ctx, calendar)" in (every_check._judges["MK→IS"].__doc__ or "")
