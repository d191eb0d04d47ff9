"""Notices for the same records merge into one waiting job, on a real Redis."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from rq import Queue
from rq.job import JobStatus

from tasuki.queue import job_queue
from tasuki.settings import Settings
from worker import enqueue_sync


@pytest.fixture
def queue(settings: Settings, redis_url: str) -> Iterator[Queue]:
    q = job_queue(dataclasses.replace(settings, redis_url=redis_url))
    yield q
    q.empty()  # type: ignore[no-untyped-call]


def test_a_burst_merges_and_a_change_during_a_running_sync_gets_one_follow_up(
    queue: Queue,
) -> None:
    first = enqueue_sync(queue, "Lead", ["L1"])
    assert first is not None
    assert enqueue_sync(queue, "Lead", ["L1"]) is None  # merged into the waiting job
    first.set_status(JobStatus.STARTED)
    follow_up = enqueue_sync(queue, "Lead", ["L1"])
    assert follow_up is not None and follow_up.id == f"{first.id}-next"
    assert enqueue_sync(queue, "Lead", ["L1"]) is None  # merged into the follow-up
    follow_up.set_status(JobStatus.STARTED)
    third = enqueue_sync(queue, "Lead", ["L1"])
    assert third is not None and third.id.startswith(first.id) and third.id != follow_up.id
    other = enqueue_sync(queue, "Lead", ["L2"])  # other records: their own job
    assert other is not None and other.id != first.id
    for job in (first, follow_up, third, other):
        job.delete()
