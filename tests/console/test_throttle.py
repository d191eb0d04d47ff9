"""The login limit on its own: counted per address in Redis, and lapsing (logged) when Redis
does not answer."""

from __future__ import annotations

import logging
import uuid

import pytest

from tasuki.console.throttle import LoginThrottle


def test_the_eleventh_attempt_in_a_minute_is_refused_per_address(redis_url: str) -> None:
    throttle = LoginThrottle(redis_url)
    me, other = f"10.0.0.{uuid.uuid4().int % 250}", f"2001:db8::{uuid.uuid4().hex[:4]}"
    assert [throttle.allows(me) for _ in range(11)] == [True] * 10 + [False]
    assert throttle.allows(other) is True  # another address counts on its own
    # Counted in Redis: another server process sees the same count.
    assert LoginThrottle(redis_url).allows(me) is False


def test_redis_down_lets_the_attempt_through_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    throttle = LoginThrottle("redis://127.0.0.1:1/0")
    with caplog.at_level(logging.WARNING, logger="tasuki.console.throttle"):
        assert throttle.allows("10.0.0.1") is True
    assert "the login limit lapses" in caplog.text
