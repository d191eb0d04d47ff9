"""A CRM's rate limits, shared through Redis by every worker on every host.

A CRM counts calls per account, not per process, so N workers must draw from one budget. Each
limit is a sliding window kept in a Redis sorted set (one member per call, scored by the time it
was granted); one Lua script checks every window a call counts against and, only when all have
room, records the call in all of them, so a call refused by one window takes no slot in another.
Time is Redis's own clock (``TIME``): hosts with drifting clocks still agree on every window.

When the CRM answers "too many requests" anyway (another app on the same account spent the
budget), :meth:`SharedLimiter.pause` holds every worker off for the wait the CRM asked for.
A daily allowance that resets at midnight is not a sliding window: :class:`DailyBudget` keeps the
remaining count the CRM reports in its response headers.

Why not the ``limits`` package: its Redis moving window takes whole seconds only (tests would
have to sleep through real 10-second windows), it checks windows one at a time (a call refused
by the search window has already consumed a burst slot), and it has no shared pause.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import redis

from tasuki.errors import CrmUnavailable

KEY_PREFIX = "tasuki:ratelimit"
"""Redis key prefix of every limiter key."""

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local paused = tonumber(redis.call('GET', KEYS[1]) or '0')
if paused > now then return paused - now end
local wait = 0
for i = 2, #KEYS do
  local window = tonumber(ARGV[(i - 2) * 2 + 1])
  local limit = tonumber(ARGV[(i - 2) * 2 + 2])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  local used = redis.call('ZCARD', KEYS[i])
  if used >= limit then
    local oldest = redis.call('ZRANGE', KEYS[i], used - limit, used - limit, 'WITHSCORES')
    local w = tonumber(oldest[2]) + window - now
    if w < 1 then w = 1 end
    if w > wait then wait = w end
  end
end
if wait > 0 then return wait end
local member = ARGV[#ARGV]
for i = 2, #KEYS do
  redis.call('ZADD', KEYS[i], now, member)
  redis.call('PEXPIRE', KEYS[i], ARGV[(i - 2) * 2 + 1])
end
return 0
"""

_PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local untilms = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if untilms > current then
  redis.call('SET', KEYS[1], untilms, 'PX', tonumber(ARGV[1]) + 1000)
  return untilms - now
end
return current - now
"""


@dataclass(frozen=True)
class Window:
    """At most ``calls`` calls in any span of ``seconds`` seconds."""

    name: str
    calls: int
    seconds: float

    @property
    def millis(self) -> int:
        """The span in whole milliseconds (at least 1)."""
        return max(1, round(self.seconds * 1000))


class SharedLimiter:
    """Sliding-window limits and a pause, shared by every process that uses the same
    ``namespace`` on the same Redis.

    ``sleep`` is injectable so tests can count waits; ``jitter`` spreads workers that wake at
    the same moment.
    """

    def __init__(
        self,
        conn: redis.Redis,
        namespace: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
        jitter: float = 0.05,
    ) -> None:
        self.conn = conn
        self.namespace = namespace
        self._sleep = sleep
        self._jitter = jitter
        self._acquire = conn.register_script(_ACQUIRE)
        self._pause = conn.register_script(_PAUSE)
        self.waited = 0.0
        """Seconds this limiter object has slept waiting for room (for reports and benches)."""

    def _key(self, name: str) -> str:
        return f"{KEY_PREFIX}:{self.namespace}:{name}"

    def try_acquire(self, windows: Sequence[Window]) -> float:
        """Take one call's slot in every window and return 0, or take nothing and return the
        seconds until a slot may be free."""
        keys = [self._key("pause")] + [self._key(w.name) for w in windows]
        args: list[int | str] = []
        for w in windows:
            args += [w.millis, w.calls]
        args.append(uuid.uuid4().hex)
        try:
            wait_ms = int(self._acquire(keys=keys, args=args))
        except redis.RedisError as exc:
            raise CrmUnavailable(f"rate limiter unreachable: {type(exc).__name__}: {exc}") from exc
        return wait_ms / 1000

    def acquire(self, windows: Sequence[Window], *, timeout: float = 600.0) -> None:
        """Block until one call fits in every window (and no pause is on), then take its slot.

        Raises :class:`CrmUnavailable` when no room comes within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            wait = self.try_acquire(windows)
            if wait <= 0:
                return
            if time.monotonic() + wait > deadline:
                raise CrmUnavailable(f"no room under the rate limit within {timeout:.0f}s")
            wait += random.uniform(0, self._jitter * wait)
            self.waited += wait
            self._sleep(wait)

    def pause(self, seconds: float) -> float:
        """Hold every process off for ``seconds`` (a longer pause already on is kept); returns
        the pause now in force, in seconds."""
        try:
            left = int(self._pause(keys=[self._key("pause")], args=[max(1, round(seconds * 1000))]))
        except redis.RedisError as exc:
            raise CrmUnavailable(f"rate limiter unreachable: {type(exc).__name__}: {exc}") from exc
        return left / 1000


class DailyBudget:
    """The calls a CRM says are left for its day, shared through Redis.

    The CRM's own count is the truth (other apps spend the same allowance), so this only keeps
    the latest figure it reported, until the CRM's day ends.
    """

    def __init__(self, conn: redis.Redis, namespace: str) -> None:
        self.conn = conn
        self.key = f"{KEY_PREFIX}:{namespace}:daily"

    def record(self, remaining: int, limit: int, seconds_left_in_day: float) -> None:
        """Keep the remaining count the CRM reported, until its day ends."""
        ttl = max(1, round(seconds_left_in_day * 1000))
        try:
            self.conn.set(self.key, f"{remaining}/{limit}", px=ttl)
        except redis.RedisError:
            pass  # a lost figure only means the next response reports it again

    def exhaust(self, seconds_left_in_day: float) -> None:
        """The CRM refused a call on its daily limit: nothing is left until its day ends."""
        self.record(0, 0, seconds_left_in_day)

    def remaining(self) -> tuple[int, int] | None:
        """(remaining, limit) as last reported today, or ``None`` when nothing was reported."""
        try:
            raw = self.conn.get(self.key)
        except redis.RedisError:
            return None
        if raw is None:
            return None
        left, _, limit = (raw.decode() if isinstance(raw, bytes) else str(raw)).partition("/")
        return int(left), int(limit or 0)

    def seconds_until_reset(self) -> float:
        """Seconds until the recorded figure expires (0 when nothing is recorded)."""
        try:
            ttl = int(self.conn.pttl(self.key))
        except redis.RedisError:
            return 0.0
        return max(0.0, ttl / 1000)
