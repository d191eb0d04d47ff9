"""Cron schedules run in the company's time zone, whatever the host's clock says."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import fakeredis
import pytest
from rq.cron import CronJob

import worker
from tasuki.schedule import CompanyCronScheduler, next_fire

TOKYO = ZoneInfo("Asia/Tokyo")


@pytest.fixture(params=["UTC", "America/New_York", "Asia/Tokyo"])
def host_zone(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The host's clock set to each of a few zones (TZ), restored afterwards."""
    zone: str = request.param
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    yield zone
    monkeypatch.undo()
    time.tzset()


def test_a_nightly_job_fires_at_0245_in_tokyo_on_any_host(host_zone: str) -> None:
    cron = CompanyCronScheduler(fakeredis.FakeRedis(), TOKYO)
    job = cron.register(worker.recompute_closed_period, "q", cron="45 2 * * *")
    wall = job.next_enqueue_time
    assert wall is not None
    assert (wall.astimezone(TOKYO).hour, wall.astimezone(TOKYO).minute) == (2, 45)
    # Fired at 2026-03-02 02:45 JST (17:45 UTC the day before): next 24 hours later.
    job.set_enqueue_time(datetime(2026, 3, 1, 17, 45, tzinfo=UTC))
    assert job.next_enqueue_time == datetime(2026, 3, 2, 17, 45, tzinfo=UTC)


def test_rq_alone_would_read_the_host_clock(host_zone: str) -> None:
    """What the company zone fixes: RQ's own job fires at 02:45 on the host's clock."""
    job = CronJob("q", func=worker.recompute_closed_period, cron="45 2 * * *")
    job.set_enqueue_time(datetime(2026, 3, 1, 17, 45, tzinfo=UTC))
    assert job.next_enqueue_time is not None
    in_tokyo = job.next_enqueue_time.astimezone(TOKYO)
    assert ((in_tokyo.hour, in_tokyo.minute) == (2, 45)) == (host_zone == "Asia/Tokyo")


@pytest.mark.parametrize(
    ("expression", "zone", "after", "fires"),
    [
        # 12:00 UTC is 21:00 in Tokyo: the next 02:45 JST is 17:45 UTC the same UTC day.
        ("45 2 * * *", "Asia/Tokyo", "2026-03-01T12:00Z", "2026-03-01T17:45Z"),
        ("15 * * * *", "Asia/Tokyo", "2026-03-01T12:15Z", "2026-03-01T13:15Z"),
        ("0 9 * * mon", "Asia/Tokyo", "2026-03-01T00:00Z", "2026-03-02T00:00Z"),
        # A time the spring change skips fires an hour later; a repeated one fires once.
        ("30 2 * * *", "America/New_York", "2026-03-08T00:00Z", "2026-03-08T07:30Z"),
        ("30 1 * * *", "America/New_York", "2026-11-01T00:00Z", "2026-11-01T05:30Z"),
        ("30 1 * * *", "America/New_York", "2026-11-01T05:30Z", "2026-11-02T06:30Z"),
    ],
)
def test_next_fire_reads_the_expression_in_the_zone(
    expression: str, zone: str, after: str, fires: str
) -> None:
    got = next_fire(expression, ZoneInfo(zone), datetime.fromisoformat(after))
    assert got == datetime.fromisoformat(fires)
    assert got.tzinfo is UTC
