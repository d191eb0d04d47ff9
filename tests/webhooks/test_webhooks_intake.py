"""The shared intake path on its own: signatures, the journal (one Redis call per request) and
its move into the store, on SQLite and PostgreSQL with a real Redis queue."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from pydantic import SecretStr
from rq import Queue
from sqlalchemy import delete, select

import worker
from tasuki.deliveries import Journal, Notice
from tasuki.errors import QueueUnavailable
from tasuki.queue import job_queue
from tasuki.settings import Settings
from tasuki.store.db import Store, open_store
from tasuki.store.models import Delivery, OwedWork, StoreIdentity
from webhooks.intake import Intake, verify_hmac_sha256_hex

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


def _sync_rows(store: Store) -> dict[str, str | None]:
    with store.session() as s:
        rows = s.execute(select(OwedWork.record_id, OwedWork.job_id).where(OwedWork.kind == "sync"))
        return {rid: job for rid, job in rows}


def _queued(queue: Queue) -> dict[str, list[str]]:
    """The ids each queued sync job takes, by job id."""
    jobs = [queue.fetch_job(j) for j in queue.job_ids]
    return {j.id: j.kwargs["ids"] for j in jobs if j is not None}


def test_take_records_in_redis_and_the_store_gets_it_with_one_sync_per_object(
    intake: Intake, store: Store, queue: Queue
) -> None:
    work = [
        Notice("d1", [("Lead", "L1"), ("Lead", "L2")]),
        Notice("d2", [("Opportunity", "O1"), ("Lead", "L1")]),
        Notice("d3", []),  # an echo: recorded, nothing to do
        Notice("d1", [("Lead", "L9")]),  # a repeat inside the request: the first one counts
    ]
    taken = intake.take("test", work)
    assert (taken.accepted, taken.duplicates, taken.ignored) == (2, 1, 1)
    # The answer came from Redis alone: nothing in the store, nothing queued yet.
    assert _recorded(store) == [] and queue.count == 0
    assert intake.journal.backlog() == 1 and intake.journal.wait(0)

    stored = intake.store_waiting()
    assert (stored.entries, stored.deliveries, stored.new, stored.jobs) == (1, 3, 3, 2)
    assert _recorded(store) == ["d1", "d2", "d3"]
    jobs = [queue.fetch_job(j) for j in queue.job_ids]
    assert sorted((j.kwargs["object"], j.kwargs["ids"]) for j in jobs if j) == [
        ("Lead", ["L1", "L2"]),
        ("Opportunity", ["O1"]),
    ]
    # Each record owes its sync to the job queued for it; the stream is empty.
    owed = _sync_rows(store)
    assert {rid: owed[rid] for rid in ("L1", "L2", "O1")} == {
        rid: j.id for j in jobs if j for rid in j.kwargs["ids"]
    }
    assert intake.journal.backlog() == 0


def test_a_retry_is_a_duplicate_before_and_after_the_store_has_it(
    intake: Intake, store: Store, queue: Queue
) -> None:
    assert intake.take("test", [Notice("d1", [("Lead", "L1")])]).accepted == 1
    assert intake.take("test", [Notice("d1", [("Lead", "L1")])]).duplicates == 1
    intake.store_waiting()
    assert intake.take("test", [Notice("d1", [("Lead", "L1")])]).duplicates == 1
    assert intake.store_waiting().entries == 0 and queue.count == 1


def test_redis_forgetting_a_delivery_id_still_does_the_work_once(
    intake: Intake, store: Store, queue: Queue
) -> None:
    """Redis restarted without its data forgets which ids it saw: the provider's retry is
    taken again, and the store, which remembers, makes it a duplicate there (no second sync)."""
    intake.take("test", [Notice("d1", [("Lead", "L1")])])
    intake.store_waiting()
    queue.connection.delete(intake.journal.seen_key("test", "d1"))
    assert intake.take("test", [Notice("d1", [("Lead", "L1")])]).accepted == 1
    stored = intake.store_waiting()
    assert (stored.deliveries, stored.new, stored.jobs) == (1, 0, 0)
    assert queue.count == 1 and _recorded(store) == ["d1"]


def test_delivery_ids_are_per_provider(intake: Intake, store: Store) -> None:
    assert intake.take("zoom", [Notice("same")]).ignored == 1
    assert intake.take("miitel", [Notice("same")]).ignored == 1
    intake.store_waiting()
    assert _recorded(store, "zoom") == _recorded(store, "miitel") == ["same"]


def test_a_delivery_is_stored_at_its_arrival_not_when_taken(intake: Intake, store: Store) -> None:
    before = datetime.now(UTC)
    intake.take("test", [Notice("d1")])
    after = datetime.now(UTC)
    intake.store_waiting()
    with store.session() as s:
        at = s.scalar(select(Delivery.received_at))
    assert at is not None
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    # Redis's clock, in milliseconds.
    assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= at <= after


def test_accept_queues_one_job_per_new_delivery_with_its_debt(
    intake: Intake, store: Store, queue: Queue
) -> None:
    kwargs = {"provider": "zoom", "payload": {"id": 1}}
    assert intake.accept("zoom", "m-1", worker.ingest_recording, kwargs) is True
    assert intake.accept("zoom", "m-1", worker.ingest_recording, kwargs) is False
    intake.store_waiting()
    [job_id] = queue.job_ids
    job = queue.fetch_job(job_id)
    assert job is not None and job.func_name == "worker.ingest_recording"
    assert job.kwargs == kwargs
    with store.session() as s:
        (debt,) = s.scalars(select(OwedWork).where(OwedWork.kind == "recording"))
    assert debt.object == "zoom" and debt.job_id == job_id
    assert debt.payload == {"func": "worker.ingest_recording", "kwargs": kwargs}


def test_redis_down_is_queue_unavailable_with_nothing_recorded(store: Store, queue: Queue) -> None:
    down = Intake(store, job_queue_at(queue, "redis://127.0.0.1:1/0"))
    with pytest.raises(QueueUnavailable, match="queue unreachable") as failed:
        down.take("test", [Notice("a", [("Lead", "L1")])])
    assert isinstance(failed.value.__cause__, redis.ConnectionError)
    assert Intake(store, queue).journal.backlog() == 0 and _recorded(store) == []
    # The provider's retry, once Redis answers, is new.
    assert Intake(store, queue).take("test", [Notice("a", [("Lead", "L1")])]).accepted == 1


def test_a_store_down_keeps_the_deliveries_in_redis_until_it_answers(
    store: Store, queue: Queue
) -> None:
    gone = open_store("postgresql+psycopg://postgres@127.0.0.1:1/x", migrate=False)
    serving = Intake(gone, queue)
    assert serving.take("test", [Notice("a", [("Lead", "L1")])]).accepted == 1  # still a 200
    with pytest.raises(Exception, match="127.0.0.1"):
        serving.store_waiting()
    assert serving.journal.backlog() == 1 and queue.count == 0  # nothing lost, nothing queued
    # The store is back (the same journal's consumer takes its own unacknowledged entry).
    back = Intake(store, queue)
    back.journal = Journal(queue, consumer=serving.journal.consumer)
    assert back.store_waiting().new == 1
    assert _recorded(store) == ["a"] and list(_queued(queue).values()) == [["L1"]]


def test_a_killed_takers_entries_are_claimed_and_their_work_done_once(
    intake: Intake, store: Store, queue: Queue
) -> None:
    """A taker that read entries and died before acknowledging them (here: read and left) is
    taken over once its entries are idle past the claim time; a taker that stored them and died
    before acknowledging leaves nothing to do twice (the store says they are not new)."""
    for i in range(3):
        intake.take("test", [Notice(f"d{i}", [("Lead", f"L{i}")])])
    dead = Journal(queue, consumer="dead-taker")
    dead._ensure_group()
    assert len(dead._read(own_pending=False, claim_after_ms=60_000)) == 3  # read, never acked
    live = Journal(queue, consumer="live-taker")
    assert live.take(store, worker.sync_job).entries == 0  # not idle long enough yet
    assert live.take(store, worker.sync_job, claim_after_ms=0).new == 3
    assert live.backlog() == 0
    # The dead taker's own late retry of the same entries finds nothing new.
    assert dead.take(store, worker.sync_job, claim_after_ms=0).new == 0
    assert sorted(i for ids in _queued(queue).values() for i in ids) == ["L0", "L1", "L2"]


def test_many_threads_with_overlapping_deliveries_accept_each_once(
    intake: Intake, store: Store, queue: Queue
) -> None:
    """The journal under real concurrency: 12 threads, 40 requests each, drawing from 60
    delivery ids, while a taker stores what arrives; every id is accepted exactly once, every
    record owed and queued once."""
    accepted: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    taker = threading.Thread(target=intake.keep_storing, args=(stop,))
    taker.start()

    def sender(seed: int) -> None:
        for k in range(40):
            i = (seed * 7 + k * 13) % 60
            taken = intake.take("test", [Notice(f"d{i}", [("Lead", f"L{i}")])])
            if taken.accepted:
                with lock:
                    accepted.append(f"d{i}")

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    taker.join()
    intake.store_waiting()  # whatever arrived after the taker's last pass
    assert sorted(accepted) == sorted(set(accepted)) == _recorded(store)
    assert sorted(_sync_rows(store)) == sorted(f"L{i[1:]}" for i in accepted)
    queued = [rid for ids in _queued(queue).values() for rid in ids]
    assert sorted(queued) == sorted(_sync_rows(store))


def test_a_store_made_anew_beside_the_same_redis_takes_the_deliveries_again(
    intake: Intake, store: Store, queue: Queue, tmp_path: Path
) -> None:
    """Redis remembers ids per store: after ``make clean`` (or a restore), the old Redis's
    memory of deliveries the new store never had does not turn them away."""
    intake.take("test", [Notice("d1", [("Lead", "L1")])])
    intake.store_waiting()
    fresh = open_store(f"sqlite:///{tmp_path / 'fresh.db'}")
    assert fresh.identity() != store.identity()
    again = Intake(fresh, queue)
    assert again.take("test", [Notice("d1", [("Lead", "L1")])]).accepted == 1
    assert again.store_waiting().new == 1 and _recorded(fresh) == ["d1"]
    # The first store's memory is untouched: its retries are still duplicates.
    assert intake.take("test", [Notice("d1", [("Lead", "L1")])]).duplicates == 1


def test_a_store_whose_identity_row_was_emptied_gets_a_new_one(store: Store) -> None:
    with store.engine.begin() as conn:
        conn.execute(delete(StoreIdentity))
    first = store.identity()
    assert len(first) == 32 and store.identity() == first


def test_a_waiting_taker_is_woken_by_an_append_from_another_connection(
    intake: Intake, queue: Queue, redis_url: str
) -> None:
    """The taker runs in a process of its own: Redis wakes it, not an event of the server's.
    An append on another connection ends the wait at once; with nothing appended it times out."""
    assert intake.store_waiting().entries == 0
    assert intake.journal.wait(0.3) is False
    elsewhere = Intake(intake.store, job_queue_at(queue, redis_url))
    appended = threading.Timer(0.1, elsewhere.take, ("test", [Notice("w1", [("Lead", "L1")])]))
    appended.start()
    try:
        assert intake.journal.wait(5.0) is True
    finally:
        appended.join()
    assert intake.journal.backlog() == 1
    assert intake.store_waiting().new == 1


def test_a_taker_stops_when_the_server_that_started_it_is_gone(intake: Intake) -> None:
    """``keep_storing`` asks ``alive`` each time it wakes (the taker process asks whether its
    parent is still the server): once false, it returns without a stop event."""
    calls: list[int] = []

    def alive() -> bool:
        calls.append(1)
        return len(calls) < 3

    intake.keep_storing(threading.Event(), alive=alive)
    assert len(calls) == 3
