"""Which days the handoff meeting is held and which handoffs each one covers."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tasuki.calendar import BusinessCalendar
from tasuki.errors import ConfigError
from tasuki.meeting import MeetingSchedule, NotAMeetingDay, meeting_boundary
from tasuki.settings import MeetingConfig, builtin_path, load_settings

TOKYO = ZoneInfo("Asia/Tokyo")
BASE = builtin_path("tasuki.yaml").read_text(encoding="utf-8")


def _at(d: str, hm: str = "10:00") -> datetime:
    return datetime.combine(date.fromisoformat(d), time.fromisoformat(hm), tzinfo=TOKYO)


@pytest.fixture
def schedule() -> MeetingSchedule:
    return MeetingSchedule(BusinessCalendar(), MeetingConfig())


@pytest.mark.parametrize(
    ("day", "previous"),
    [
        # A normal Wednesday: Tuesday's meeting to Wednesday's.
        ("2026-06-17", "2026-06-16"),
        # Monday after a weekend: Friday after 10:00, the weekend, Monday before 10:00.
        ("2026-06-15", "2026-06-12"),
        # Thursday after Golden Week (Apr 29 Showa Day; May 3-6 holidays, May 6 substitute):
        # from Friday May 1.
        ("2026-05-07", "2026-05-01"),
        # Tuesday after Marine Day (Monday 2026-07-20): from Friday.
        ("2026-07-21", "2026-07-17"),
        # Thursday after Silver Week (Sep 21-23, Monday to Wednesday).
        ("2026-09-24", "2026-09-18"),
    ],
)
def test_each_meeting_covers_the_time_since_the_previous_one(
    schedule: MeetingSchedule, day: str, previous: str
) -> None:
    d = date.fromisoformat(day)
    assert schedule.previous_meeting(d) == date.fromisoformat(previous)
    w = schedule.window(d)
    assert (w.start, w.end) == (_at(previous), _at(day))
    assert w.start.tzinfo is not None
    assert _at(previous, "10:00") in w and _at(day, "09:59") in w
    assert _at(previous, "09:59") not in w and _at(day, "10:00") not in w


def test_the_windows_of_consecutive_meetings_meet_without_gap(schedule: MeetingSchedule) -> None:
    days = [date(2026, 4, 27) + timedelta(days=i) for i in range(15)]  # across Golden Week
    meetings = [d for d in days if schedule.is_meeting_day(d)]
    assert len(meetings) == 7
    windows = [schedule.window(d) for d in meetings]
    assert all(a.end == b.start for a, b in zip(windows, windows[1:], strict=False))


@pytest.mark.parametrize("day", ["2026-06-13", "2026-06-14", "2026-05-05", "2026-07-20"])
def test_no_meeting_on_a_weekend_or_holiday(schedule: MeetingSchedule, day: str) -> None:
    with pytest.raises(NotAMeetingDay, match="not a business day.*next one is on"):
        schedule.window(date.fromisoformat(day))


@pytest.mark.parametrize(
    ("now", "meeting"),
    [
        (_at("2026-06-16", "09:59"), "2026-06-16"),  # before today's meeting
        (_at("2026-06-16", "10:00"), "2026-06-17"),  # it has started: tomorrow's
        (_at("2026-06-12", "18:00"), "2026-06-15"),  # Friday evening: Monday's
        (_at("2026-06-13", "08:00"), "2026-06-15"),  # Saturday
        (_at("2026-07-17", "12:00"), "2026-07-21"),  # Friday before Marine Day: Tuesday's
        (datetime(2026, 6, 16, 0, 30, tzinfo=ZoneInfo("UTC")), "2026-06-16"),  # 09:30 JST
    ],
)
def test_the_next_meeting(schedule: MeetingSchedule, now: datetime, meeting: str) -> None:
    assert schedule.next_meeting(now) == date.fromisoformat(meeting)


def test_meeting_times_come_from_the_config() -> None:
    s = MeetingSchedule(
        BusinessCalendar(),
        MeetingConfig(time=time(16, 0), duration_minutes=45, deliver_at=time(15, 30)),
    )
    d = date(2026, 6, 15)
    assert s.starts_at(d) == _at("2026-06-15", "16:00")
    assert s.ends_at(d) == _at("2026-06-15", "16:45")
    assert s.deliver_at(d) == _at("2026-06-15", "15:30")
    assert s.window(d).start == _at("2026-06-12", "16:00")
    assert s.next_meeting(_at("2026-06-15", "12:00")) == d


def _settings(tmp_path: Path, block: str) -> dict[str, str]:
    path = tmp_path / "tasuki.yaml"
    path.write_text(BASE + "\n" + block, encoding="utf-8")
    return {"TASUKI_CONFIG": str(path), "TASUKI_DATA_DIR": str(tmp_path / "data")}


def test_a_meeting_block_in_tasuki_yaml(tmp_path: Path) -> None:
    env = _settings(
        tmp_path,
        'meeting:\n  time: "16:00"\n  boundary: FS->CS\n  deliver_at: "15:30"\n'
        "  slack_channel: '#cs-handoffs'\n  email_to: [cs@example.co.jp]\n",
    )
    config = load_settings(env).config
    assert config.meeting.time == time(16, 0)
    assert config.meeting.slack_channel == "#cs-handoffs"
    assert meeting_boundary(config).id == "FS→CS"
    assert meeting_boundary(load_settings({}).config).id == "IS→FS"


@pytest.mark.parametrize(
    ("block", "line", "message"),
    [
        ("meeting:\n  time: 10:00\n", 2, 'write the time in quotes, e.g. "10:00"'),
        ("meeting:\n  boundary: MK→CS\n", 2, "no boundary MK→CS; known: MK→IS, IS→FS, FS→CS"),
        ("meeting:\n  email_to: [not-an-address]\n", 2, "is not an e-mail address"),
        ("meeting:\n  record_url: javascript:x{id}\n", 2, "http(s) URL with {id}"),
    ],
)
def test_a_wrong_meeting_block_names_its_line(
    tmp_path: Path, block: str, line: int, message: str
) -> None:
    env = _settings(tmp_path, block)
    with pytest.raises(ConfigError) as err:
        load_settings(env)
    first = BASE.count("\n") + 1
    (problem,) = err.value.problems
    assert problem.file == env["TASUKI_CONFIG"]
    assert problem.line == first + line
    assert message in problem.message
