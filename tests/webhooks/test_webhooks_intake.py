"""The shared intake path on its own: signatures, and record-then-enqueue in one transaction,
on SQLite and PostgreSQL with a real Redis queue."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from collections.abc import Iterator

import pytest
import redis
from pydantic import SecretStr
from rq import Queue
from sqlalchemy import select

from tasuki.errors import QueueUnavailable, StoreUnavailable
from tasuki.queue import enqueue_sync, job_queue
from tasuki.settings import Settings
from tasuki.store.db import Store, open_store
from tasuki.store.models import Delivery
from webhooks.intake import Admitted, Intake, Work, verify_hmac_sha256_hex

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
    assert intake.accept("zoom", "m-1", "worker.ingest_recording", kwargs) is True
    assert intake.accept("zoom", "m-1", "worker.ingest_recording", kwargs) is False
    [job_id] = queue.job_ids
    job = queue.fetch_job(job_id)
    assert job is not None and job.func_name == "worker.ingest_recording"
    assert job.kwargs == kwargs
