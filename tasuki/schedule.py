"""The scheduler's loop: RQ's cron jobs, kept running through Redis outages.

RQ's ``CronScheduler.start()`` ends at the first Redis error. tasuki drives the same
scheduler one tick at a time instead: a tick that fails on Redis is retried with exponential
backoff (tenacity, capped at :data:`MAX_BACKOFF_SECONDS`), logged, and never ends the process;
when Redis answers again a ``recover`` pass is queued at once, so the work Redis lost is back in
the queue within seconds rather than at the next minute. SIGTERM and SIGINT stop it between ticks.

RQ reads cron expressions on the host's clock; tasuki reads them in the company's time zone
(``calendar.timezone``), so ``45 2 * * *`` is 02:45 in Tokyo whether the host runs on UTC or
not: :class:`CompanyCronScheduler` registers :class:`ZonedCronJob`, whose only change to RQ's
``CronJob`` is how the next time is computed (:func:`next_fire`).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, tzinfo
from types import FrameType
from typing import Any

import redis
from croniter import croniter
from rq.cron import CronJob, CronScheduler
from rq.defaults import DEFAULT_RESULT_TTL
from rq.utils import now
from rq.webhook import Webhook
from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 5
"""Longest wait between two tries while Redis is unreachable: Redis's return is noticed (and
a recovery pass queued) within this long."""

MAX_TICK_SECONDS = 5
"""Longest wait between two ticks (RQ's own is 60 s): a tick is an enqueue check and a
heartbeat, and an outage is noticed within this long."""


def next_fire(expression: str, zone: tzinfo, after: datetime) -> datetime:
    """The first instant after ``after`` (aware) at which the cron ``expression`` fires, its
    fields read as wall-clock time in ``zone``; returned in UTC.

    A wall-clock time a daylight-saving change repeats fires once, at its first occurrence; one
    it skips fires when the clock reaches it by the old offset (an hour later).
    """
    local = croniter(expression, after.astimezone(zone).replace(tzinfo=None))
    while True:
        wall = local.get_next(datetime)
        # timestamp(), not astimezone(): before Python 3.12 the latter inverts fold in a gap.
        candidate = datetime.fromtimestamp(wall.replace(tzinfo=zone, fold=0).timestamp(), UTC)
        if candidate > after:
            return candidate


class ZonedCronJob(CronJob):
    """RQ's ``CronJob`` with its cron expression read in ``zone`` instead of the host's clock."""

    def __init__(self, zone: tzinfo, **options: Any) -> None:
        self.zone = zone  # before CronJob.__init__, which computes the first time
        super().__init__(**options)

    def get_next_enqueue_time(self) -> datetime:
        """The next time the expression fires in :attr:`zone` (interval jobs: RQ's own)."""
        if self.cron is None:
            return super().get_next_enqueue_time()
        return next_fire(self.cron, self.zone, self.latest_enqueue_time or now())


class CompanyCronScheduler(CronScheduler):
    """RQ's ``CronScheduler`` whose cron expressions are read in the company's time zone."""

    def __init__(
        self,
        connection: redis.Redis,
        zone: tzinfo,
        logging_level: str | int = logging.INFO,
        name: str = "",
    ) -> None:
        super().__init__(connection, logging_level=logging_level, name=name)
        self.zone = zone

    def register(
        self,
        func: Callable[..., Any],
        queue_name: str,
        args: tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
        interval: int | None = None,
        cron: str | None = None,
        job_timeout: int | None = None,
        result_ttl: int = DEFAULT_RESULT_TTL,
        ttl: int | None = None,
        failure_ttl: int | None = None,
        meta: dict[str, Any] | None = None,
        webhooks: Sequence[Webhook] | None = None,
        name: str = "",
    ) -> CronJob:
        """RQ's ``register``, the job a :class:`ZonedCronJob` in :attr:`zone`."""
        job = ZonedCronJob(
            self.zone,
            queue_name=queue_name,
            func=func,
            args=args,
            kwargs=kwargs,
            interval=interval,
            cron=cron,
            job_timeout=job_timeout,
            result_ttl=result_ttl,
            ttl=ttl,
            failure_ttl=failure_ttl,
            meta=meta,
            webhooks=webhooks,
            name=name,
        )
        self.get_jobs().append(job)
        self.log.info(
            "Registered %s to run on %s at %s (%s), next at %s",
            job.func_name,
            queue_name,
            cron or f"every {interval} s",
            self.zone,
            job.next_enqueue_time,
        )
        return job


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
