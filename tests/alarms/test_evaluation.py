"""The alarm on constructed orgs, through the real KPI computation, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update

from tasuki import alarms
from tasuki.alarms.evaluation import improvement
from tasuki.kpis import book
from tasuki.settings import Settings
from tasuki.store.db import Store
from tasuki.store.models import AlarmRow, Person
from tests.alarms.support import NOW, Org, with_alarms

MK = "mk_mqls_vs_meetings"


def _fired(found: list[alarms.Alarm]) -> set[tuple[str, str, str]]:
    return {(a.pair_id, a.subject_kind, a.subject_id) for a in found}


def test_fires_where_mqls_rise_while_meetings_fall(
    store: Store, settings: Settings, alarm_org: Org
) -> None:
    found = alarms.evaluate(store, settings, "2026-10", now=NOW)
    # M2's MQLs and meeting rate both rose; IS set 11 meetings in both months; FS, CS: nothing.
    assert _fired(found) == {(MK, "department", "MK"), (MK, "person", "M1")}
    dept, m1 = found  # the department first, then its people
    assert (dept.subject_name, m1.subject_name) == ("MK", "佐藤 愛子")
    assert (dept.period, dept.previous_period) == ("2026-10", "2026-09")
    assert (dept.own.kpi_id, dept.neighbour.kpi_id) == ("mk_mqls", "mk_mql_to_meeting")
    assert (dept.own.previous, dept.own.current) == (20, 27)
    assert dept.own.absolute == 7 and dept.own.relative == pytest.approx(0.35)
    assert dept.neighbour.previous == pytest.approx(11 / 20)
    assert dept.neighbour.current == pytest.approx(11 / 27)
    assert dept.neighbour.relative == pytest.approx((11 / 27 - 0.55) / 0.55)  # −25.9 %
    assert (dept.own.threshold, dept.neighbour.threshold) == (0.1, 0.1)
    assert (m1.own.previous, m1.own.current) == (10, 15)
    assert m1.neighbour.previous == pytest.approx(0.6)
    assert m1.neighbour.current == pytest.approx(4 / 15)
    assert m1.explanation == (
        "2026-10 against 2026-09: MQLs: 10 → 15 (+5, +50%; alarm at 10% better), while "
        "MQL→meeting rate (IS on MK's leads): 60.0% → 26.7% (-33.3 pt, -56%; alarm at 10% worse)"
    )


def test_silent_where_both_rise(store: Store, settings: Settings, healthy_org: Org) -> None:
    assert alarms.evaluate(store, settings, "2026-10", now=NOW) == []
    with store.session() as session:
        assert alarms.raised(session, "2026-10") == []


def test_stored_once_per_period_subject_and_pair(
    store: Store, settings: Settings, alarm_org: Org
) -> None:
    first = alarms.evaluate(store, settings, "2026-10", now=NOW)
    again = alarms.evaluate(store, settings, "2026-10", now=NOW, compute=False)
    assert [a.id for a in again] == [a.id for a in first]
    assert [a.raised_at for a in again] == [a.raised_at for a in first]
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(AlarmRow)) == 2
        assert [a.key for a in alarms.raised(session, "2026-10", subject_kind="person")] == [
            f"{MK}:person:M1:2026-10"
        ]
        assert alarms.raised(session, "2026-09") == []


def test_an_alarm_that_no_longer_holds_is_removed(
    store: Store, settings: Settings, alarm_org: Org
) -> None:
    assert len(alarms.evaluate(store, settings, "2026-10", now=NOW)) == 2
    with store.session() as session:
        assert sorted(session.scalars(select(AlarmRow.subject_id))) == ["M1", "MK"]
    # IS turns M1's eleven October leads that had not met into meetings after all: M1's rate
    # rises to 100 % and MK's to 22/27.
    with store.session() as session:
        unmet = session.execute(
            text(
                "SELECT record_id FROM handoffs WHERE boundary = 'MK→IS' AND sender_id = 'M1' "
                "AND handed_at >= :start AND record_id NOT IN "
                "(SELECT 'L' || substr(record_id, 2) FROM handoffs WHERE boundary = 'IS→FS')"
            ),
            {"start": "2026-10-01"},
        ).scalars()
        leads = list(unmet)
    assert len(leads) == 11
    for lead in leads:
        alarm_org.meet(lead, "2026-10")
    assert alarms.evaluate(store, settings, "2026-10", now=NOW) == []
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(AlarmRow)) == 0


THRESHOLDS = """\
defaults: {{own_improves_by: {own}, neighbour_worsens_by: {neighbour}, min_events: {events}}}
alarms:
  - {{id: mk, department: MK, own: mk_mqls, neighbour: mk_mql_to_meeting}}
"""


@pytest.mark.parametrize(
    ("own", "neighbour", "events", "fired"),
    [
        # MK: +35 % / −25.9 %; M1: +50 % / −55.6 % (both on 10+ events).
        ("10%", "10%", 5, {"MK", "M1"}),
        ("40%", "10%", 5, {"M1"}),
        ("0.5", "10%", 5, {"M1"}),  # exactly the threshold: raised
        ("51%", "10%", 5, set()),
        ("10%", "30%", 5, {"M1"}),
        ("10%", "56%", 5, set()),
        ("10%", "10%", 11, {"MK"}),  # M1 handed over 10 MQLs in September: too few to judge
    ],
)
def test_thresholds_are_respected(
    store: Store,
    settings: Settings,
    alarm_org: Org,
    tmp_path: Path,
    own: str,
    neighbour: str,
    events: int,
    fired: set[str],
) -> None:
    text = THRESHOLDS.format(own=own, neighbour=neighbour, events=events)
    custom = with_alarms(settings, tmp_path / "config", text)
    found = alarms.evaluate(store, custom, "2026-10", now=NOW)
    assert {a.subject_id for a in found} == fired
    assert all(a.pair_id == "mk" for a in found)


def test_per_team_when_asked(
    store: Store, settings: Settings, alarm_org: Org, tmp_path: Path
) -> None:
    with store.session() as session:
        session.execute(update(Person).where(Person.user_id == "M1").values(team="Inbound"))
        session.execute(update(Person).where(Person.user_id == "M2").values(team="Events"))
    text = "alarms: [{id: mk, department: MK, own: mk_mqls, neighbour: mk_mql_to_meeting,"
    text += " subjects: [team]}]\n"
    found = alarms.evaluate(store, with_alarms(settings, tmp_path / "c", text), "2026-10", now=NOW)
    assert [(a.subject_kind, a.subject_name) for a in found] == [("team", "Inbound")]


def test_a_quarter_is_judged_on_the_kpis_own_periods(
    store: Store, settings: Settings, alarm_org: Org
) -> None:
    # The shipped KPIs are monthly: a quarter names the month it starts with.
    found = alarms.evaluate(store, settings, "FY2026-Q3", now=NOW)
    assert {a.period for a in found} == {"2026-10"}


def test_an_unreadable_period_is_refused(store: Store, settings: Settings) -> None:
    with pytest.raises(alarms.AlarmPeriodError, match="not a period"):
        alarms.evaluate(store, settings, "2026-13", now=NOW)


def test_last_closed_period(settings: Settings) -> None:
    assert alarms.last_closed_period(settings, NOW) == "2026-11"
    # 2026-10-31T15:00Z is already November in Tokyo.
    at = datetime.fromisoformat("2026-10-31T15:00+00:00")
    assert alarms.last_closed_period(settings, at) == "2026-10"


def test_improvement_follows_the_kpis_direction(settings: Settings) -> None:
    kpis = book(settings).kpis
    assert improvement(kpis["mk_mqls"], 10, 15) == pytest.approx(0.5)
    # Hours to first touch: lower is better.
    assert improvement(kpis["is_first_touch_hours"], 10, 5) == pytest.approx(0.5)
    assert improvement(kpis["mk_mqls"], 0, 3) == math.inf
    assert improvement(kpis["mk_mqls"], 0, 0) == 0


def test_a_cohort_still_maturing_is_not_judged(
    store: Store, settings: Settings, alarm_org: Org
) -> None:
    # On 2026-11-16 October's last MQLs have not had their 30 days to become meetings: the MK
    # pair waits until 2026-11-30T15:00Z (midnight, December 1st in Tokyo).
    early = datetime.fromisoformat("2026-11-16T00:00+00:00")
    waiting = alarms.unsettled(settings, "2026-10", early)
    assert [(p.id, at.isoformat()) for p, at in waiting] == [(MK, "2026-11-30T15:00:00+00:00")]
    assert alarms.evaluate(store, settings, "2026-10", now=early) == []
    assert alarms.unsettled(settings, "2026-10", NOW) == []
    assert len(alarms.evaluate(store, settings, "2026-10", now=NOW)) == 2
    # Judged again before it settles (a store restored, a clock wrong): what is stored stays.
    assert len(alarms.evaluate(store, settings, "2026-10", now=early)) == 2


def test_evaluate_recent_judges_the_last_two_closed_periods(
    store: Store, settings: Settings, alarm_org: Org
) -> None:
    # At NOW the last closed month is November (no MQL there: MK's count falls to 0) and
    # October before it, where the alarm holds.
    found = alarms.evaluate_recent(store, settings, now=NOW, compute=True)
    assert {(a.period, a.subject_id) for a in found} == {("2026-10", "MK"), ("2026-10", "M1")}
