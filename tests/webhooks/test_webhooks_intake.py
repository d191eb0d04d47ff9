"""The shared intake path on its own: signatures, and record-then-enqueue in one transaction,
on SQLite and PostgreSQL with a real Redis queue."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import threading
from collections.abc import Iterator

import pytest
import redis
from pydantic import SecretStr
from rq import Queue
from sqlalchemy import select

import worker
from tasuki.errors import QueueUnavailable, StoreUnavailable
from tasuki.owed import Owing
from tasuki.queue import job_queue
from tasuki.settings import Settings
from tasuki.store.db import Store, open_store
from tasuki.store.models import Delivery, OwedWork
from webhooks.intake import Admitted, Intake, Work, _Ticket, verify_hmac_sha256_hex
from worker import enqueue_sync

KEY = SecretStr("k3y")
BODY = b'{"notices": []}'
GOOD = hmac.new(b"k3y", BODY, hashlib.sha256).hexdigest()


@pytest.fixture
def queue(settings: Settings, redis_url: str) -> Iterator[Queue]:
    q = job_queue(dataclasses.replace(settings, redis_url=redis_url))
    yield q
    q.empty()  # type: ignore[no-untyped-call]


@pytest.fixture
def intake(store: Store, queue: Queue) -> Intake:
    return Intake(store, queue)


def job_queue_at(queue: Queue, url: str) -> Queue:
    """``queue``'s name on the Redis at ``url`` (nothing listens on port 1: every call fails)."""
    return Queue(queue.name, connection=redis.Redis.from_url(url, socket_connect_timeout=0.2))


def _recorded(store: Store, provider: str = "test") -> list[str]:
    with store.session() as s:
        rows = s.scalars(select(Delivery.delivery_id).where(Delivery.provider == provider))
        return sorted(rows)


@pytest.mark.parametrize(
    ("signature", "ok"),
    [
        (GOOD, True),
        (GOOD.upper(), True),
        (f"sha256={GOOD}", True),
        (f" {GOOD} ", True),
        (None, False),
        ("", False),
        (GOOD[:-1], False),
        (GOOD[:-1] + ("0" if GOOD[-1] != "0" else "1"), False),
        (hmac.new(b"other", BODY, hashlib.sha256).hexdigest(), False),
        (hmac.new(b"k3y", BODY, hashlib.sha1).hexdigest(), False),
        ("é" * 64, False),
        ("\udcff" * 64, False),
    ],
)
def test_verify_hmac_sha256_hex(signature: str | None, ok: bool) -> None:
    assert verify_hmac_sha256_hex(KEY, BODY, signature) is ok


def test_admit_records_new_ids_and_calls_the_action_once_with_them(
    intake: Intake, store: Store
) -> None:
    calls: list[list[str]] = []
    first = intake.admit("test", ["a", "b", "a"], calls.append)
    assert first == Admitted(["a", "b"], 1)
    second = intake.admit("test", ["b", "c"], calls.append)
    assert second == Admitted(["c"], 1)
    assert calls == [["a", "b"], ["c"]]
    assert _recorded(store) == ["a", "b", "c"]


def test_admit_does_not_call_the_action_when_nothing_is_new(intake: Intake) -> None:
    intake.admit("test", ["a"], lambda _: None)
    calls: list[list[str]] = []
    assert intake.admit("test", ["a", "a"], calls.append) == Admitted([], 2)
    assert intake.admit("test", [], calls.append) == Admitted([], 0)
    assert calls == []


def test_delivery_ids_are_per_provider(intake: Intake) -> None:
    assert intake.admit("zoom", ["same"], lambda _: None).new == ["same"]
    assert intake.admit("miitel", ["same"], lambda _: None).new == ["same"]


@pytest.mark.parametrize(
    "failure",
    [QueueUnavailable("queue unreachable"), redis.ConnectionError("refused"), redis.TimeoutError()],
)
def test_a_queue_failure_rolls_the_ids_back(
    intake: Intake, store: Store, queue: Queue, failure: Exception
) -> None:
    def enqueue(new: list[str]) -> None:
        enqueue_sync(queue, "Lead", new)  # some work went in before the failure
        raise failure

    with pytest.raises(QueueUnavailable):
        intake.admit("test", ["a", "b"], enqueue)
    assert _recorded(store) == []
    # The provider's retry is new, not a duplicate.
    assert intake.admit("test", ["a", "b"], lambda _: None).new == ["a", "b"]


def test_any_other_failure_of_the_action_rolls_back_too(intake: Intake, store: Store) -> None:
    def enqueue(new: list[str]) -> None:
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError):
        intake.admit("test", ["a"], enqueue)
    assert _recorded(store) == []


def test_an_unreachable_store_is_store_unavailable(queue: Queue) -> None:
    gone = Intake(open_store("postgresql+psycopg://postgres@127.0.0.1:1/x", migrate=False), queue)
    calls: list[list[str]] = []
    with pytest.raises(StoreUnavailable, match="store unreachable"):
        gone.admit("test", ["a"], calls.append)
    assert calls == [] and queue.count == 0


def test_take_queues_one_sync_per_object_for_the_new_deliveries(
    intake: Intake, queue: Queue
) -> None:
    work = [
        Work("d1", [("Lead", "L1"), ("Lead", "L2")]),
        Work("d2", [("Opportunity", "O1"), ("Lead", "L1")]),
        Work("d3", []),  # an echo: recorded, nothing to do
        Work("d1", [("Lead", "L9")]),  # a repeat inside the request: the first one counts
    ]
    taken = intake.take("test", work)
    assert (taken.accepted, taken.duplicates, taken.ignored) == (2, 1, 1)
    jobs = [queue.fetch_job(j) for j in taken.jobs]
    assert [(j.kwargs["object"], j.kwargs["ids"]) for j in jobs if j] == [
        ("Lead", ["L1", "L2"]),
        ("Opportunity", ["O1"]),
    ]
    assert queue.count == 2


def test_accept_queues_one_job_per_new_delivery(intake: Intake, queue: Queue) -> None:
    kwargs = {"provider": "zoom", "payload": {"id": 1}}
    assert intake.accept("zoom", "m-1", worker.ingest_recording, kwargs) is True
    assert intake.accept("zoom", "m-1", worker.ingest_recording, kwargs) is False
    [job_id] = queue.job_ids
    job = queue.fetch_job(job_id)
    assert job is not None and job.func_name == "worker.ingest_recording"
    assert job.kwargs == kwargs


def _sync_rows(store: Store) -> dict[str, str | None]:
    with store.session() as s:
        rows = s.execute(select(OwedWork.record_id, OwedWork.job_id).where(OwedWork.kind == "sync"))
        return {rid: job for rid, job in rows}


def test_a_batch_commits_together_and_queues_one_sync_per_object(
    intake: Intake, store: Store, queue: Queue
) -> None:
    """Requests that arrive together are one batch: their new ids, the syncs their records owe
    (one job per object, for all of them) and their jobs in one Redis call; an id named by two
    requests of the batch counts for the first."""
    records = {"d1": [("Lead", "L1")], "d2": [("Lead", "L2"), ("Account", "A1")], "d3": []}

    def ticket(ids: list[str]) -> _Ticket:
        return _Ticket("test", ids, records=lambda new: [r for i in new for r in records[i]])

    first, second, third = ticket(["d1"]), ticket(["d2", "d1"]), ticket(["d3"])
    intake.group._run_batch([first, second, third])
    assert (first.new, second.new, third.new) == (["d1"], ["d2"], ["d3"])
    assert all(t.error is None and t.done.is_set() for t in (first, second, third))
    jobs = {j.kwargs["object"]: j for j in map(queue.fetch_job, queue.job_ids) if j is not None}
    assert {o: j.kwargs["ids"] for o, j in jobs.items()} == {
        "Account": ["A1"],
        "Lead": ["L1", "L2"],
    }
    # Each record owes its sync to the job that was queued for it.
    assert _sync_rows(store) == {
        "A1": jobs["Account"].id,
        "L1": jobs["Lead"].id,
        "L2": jobs["Lead"].id,
    }
    assert first.queued == [jobs["Lead"].id]
    assert sorted(q for q in second.queued if q) == sorted([jobs["Account"].id, jobs["Lead"].id])
    assert third.queued == [] and _recorded(store) == ["d1", "d2", "d3"]


def test_one_requests_fault_in_a_batch_fails_that_request_alone(
    intake: Intake, store: Store, queue: Queue
) -> None:
    def broken(_new: list[str]) -> list[Owing]:
        raise RuntimeError("a bug in one receiver")

    good = _Ticket("test", ["ok"], records=lambda _new: [("Lead", "L1")])
    bad = _Ticket("test", ["bad"], owes=broken)
    intake.group._run_batch([good, bad])
    assert good.error is None and good.new == ["ok"] and queue.count == 1
    assert isinstance(bad.error, RuntimeError)
    assert _recorded(store) == ["ok"]  # the faulty request's id was not kept: its retry is new


def test_a_queue_failure_fails_the_whole_batch_and_forgets_its_ids(
    intake: Intake, store: Store, queue: Queue
) -> None:
    down = Intake(store, job_queue_at(queue, "redis://127.0.0.1:1/0"))
    tickets = [
        _Ticket("test", [f"d{i}"], records=lambda new: [("Lead", n) for n in new]) for i in range(3)
    ]
    down.group._run_batch(tickets)
    assert all(isinstance(t.error, QueueUnavailable) for t in tickets)
    assert _recorded(store) == []  # every provider's retry is new
    assert sorted(_sync_rows(store)) == ["d0", "d1", "d2"]  # the owed syncs stay, for recovery


def test_many_threads_with_overlapping_deliveries_accept_each_once(
    intake: Intake, store: Store, queue: Queue
) -> None:
    """Group commit under real concurrency: 12 threads, 40 requests each, drawing from 60
    delivery ids; every id is accepted exactly once, every record owed and queued."""
    accepted: list[str] = []
    lock = threading.Lock()

    def sender(seed: int) -> None:
        for k in range(40):
            i = (seed * 7 + k * 13) % 60
            taken = intake.take("test", [Work(f"d{i}", [("Lead", f"L{i}")])])
            if taken.accepted:
                with lock:
                    accepted.append(f"d{i}")

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(accepted) == sorted(set(accepted)) == _recorded(store)
    assert sorted(_sync_rows(store)) == sorted(f"L{i[1:]}" for i in accepted)
    queued = [rid for j in map(queue.fetch_job, queue.job_ids) if j for rid in j.kwargs["ids"]]
    assert sorted(queued) == sorted(_sync_rows(store))
