"""The scheduler's loop: RQ's cron jobs, kept running through Redis outages.

RQ's ``CronScheduler.start()`` ends at the first Redis error. tasuki drives the same
scheduler one tick at a time instead: a tick that fails on Redis is retried with exponential
backoff (tenacity, capped at :data:`MAX_BACKOFF_SECONDS`), logged, and never ends the process;
when Redis answers again a ``recover`` pass is queued at once, so the work Redis lost is back in
the queue within seconds rather than at the next minute. SIGTERM and SIGINT stop it between ticks.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType

import redis
from rq.cron import CronScheduler
from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 5
"""Longest wait between two tries while Redis is unreachable: Redis's return is noticed (and
a recovery pass queued) within this long."""

MAX_TICK_SECONDS = 5
"""Longest wait between two ticks (RQ's own is 60 s): a tick is an enqueue check and a
heartbeat, and an outage is noticed within this long."""


class Scheduler:
    """One ``CronScheduler`` driven tick by tick; ``on_reconnect`` runs when Redis is back."""

    def __init__(self, cron: CronScheduler, on_reconnect: Callable[[], object]) -> None:
        self.cron = cron
        self.on_reconnect = on_reconnect
        self.stopping = threading.Event()
        self.failures = 0
        self.ticks = 0

    def stop(self, signum: int | None = None, _frame: FrameType | None = None) -> None:
        """Ask the loop to end after the current tick."""
        if signum is not None:
            log.info("scheduler: signal %s, stopping", signum)
        self.stopping.set()

    def _sleep(self, seconds: float) -> None:
        self.stopping.wait(seconds)

    def _log_retry(self, state: RetryCallState) -> None:
        self.failures += 1
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0
        log.warning("scheduler: Redis unreachable (%s); trying again in %.0f s", exc, wait)

    def _tick(self) -> float:
        """Enqueue the due jobs and send a heartbeat; the seconds until the next one is due."""
        if self.failures:
            log.info("scheduler: Redis answers again after %d failed tries", self.failures)
            self.failures = 0
            self.cron.register_birth()
            self.on_reconnect()
        if self.cron.enqueue_jobs():
            self.cron.save()
        self.cron.heartbeat()
        self.ticks += 1
        return min(float(self.cron.calculate_sleep_interval()), MAX_TICK_SECONDS)

    def run(self) -> None:
        """Tick until stopped; a Redis error is retried, never the end of the process."""
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        retrying = Retrying(
            retry=retry_if_exception_type(redis.RedisError),
            wait=wait_exponential(multiplier=1, min=1, max=MAX_BACKOFF_SECONDS),
            sleep=self._sleep,
            stop=lambda _state: self.stopping.is_set(),
            before_sleep=self._log_retry,
            reraise=True,
        )
        log.info("scheduler %s: starting", self.cron.name)
        try:
            self.cron.register_birth()
        except redis.RedisError as exc:
            log.warning("scheduler: Redis unreachable at start (%s)", exc)
            self.failures += 1
        while not self.stopping.is_set():
            try:
                wait = retrying(self._tick)
            except redis.RedisError:
                break  # stopped while Redis was down
            self.stopping.wait(wait)
        try:
            self.cron.register_death()
        except redis.RedisError:
            log.warning("scheduler: could not unregister (Redis unreachable)")
        log.info("scheduler %s: stopped", self.cron.name)
