"""The write-back lock: one pass at a time, and never blocked by a holder that died.

(Four real workers sharing one burst are in ``tests/reliability/test_scale_out.py``; here the
lock alone, on the real Redis.)
"""

from __future__ import annotations

import uuid

import redis
from rq import Queue

from tasuki.passes import lock_key, one_at_a_time


def _queue(redis_url: str) -> Queue:
    return Queue(f"passes-{uuid.uuid4().hex[:8]}", connection=redis.Redis.from_url(redis_url))


def test_the_lock_is_held_for_the_block_and_released_after(redis_url: str) -> None:
    queue = _queue(redis_url)
    key = lock_key(queue, "write_back")
    with one_at_a_time(queue, "write_back", 30) as held:
        assert held
        holder = queue.connection.get(key)
        assert isinstance(holder, bytes) and holder.startswith(b"process-")
        assert 0 < queue.connection.pttl(key) <= 3600 * 1000
    assert queue.connection.get(key) is None


def test_a_lock_whose_holder_is_not_running_is_taken_over(redis_url: str) -> None:
    queue = _queue(redis_url)
    key = lock_key(queue, "write_back")
    queue.connection.set(key, "write_back-of-a-killed-worker")  # no such job runs
    with one_at_a_time(queue, "write_back", 30) as held:
        assert held
        assert queue.connection.get(key) != b"write_back-of-a-killed-worker"
    assert queue.connection.get(key) is None


def test_locks_of_two_deployments_are_apart(redis_url: str) -> None:
    one, other = _queue(redis_url), _queue(redis_url)
    assert lock_key(one, "write_back") != lock_key(other, "write_back")
    with (
        one_at_a_time(one, "write_back", 30) as first,
        one_at_a_time(other, "write_back", 30) as second,
    ):
        assert first and second
