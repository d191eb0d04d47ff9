"""Every HubSpot call goes out through :class:`HubSpotApi`: rate limit, retries, error mapping.

The calls themselves are hubspot-api-client's (its generated API classes, pointed at a
configurable host); this module wraps each one. One attempt (:meth:`HubSpotApi._attempt`) knows
HubSpot's answers; which of them are tried again, how often and after what wait is one declared
tenacity policy (:meth:`HubSpotApi._policy`):

- before the call, one slot under the account's shared limits (:mod:`tasuki.ratelimit`): the
  burst window of the account's tier, plus the search window for search calls;
- a 429 ``TEN_SECONDLY_ROLLING``/``SECONDLY`` pauses every worker for the wait HubSpot gave and
  retries the call, POSTs included (urllib3's own retry leaves POST out, so it is switched off
  here); a 429 ``DAILY`` raises :class:`CrmRateLimited` until the account's midnight;
- 5xx, timeouts and dropped connections are retried with growing waits, then raise
  :class:`CrmUnavailable` (every POST tasuki sends is a read or an idempotent update);
- a 401 with OAuth refreshes the access token once;
- the ``X-HubSpot-RateLimit-Daily-Remaining`` header keeps the shared daily budget current;
- any other status raises the class :func:`tasuki.errors.crm_error_for_status` names, with
  HubSpot's own body.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import urllib3
from hubspot.crm.objects.exceptions import ApiException as ObjectsApiException
from hubspot.crm.owners.exceptions import ApiException as OwnersApiException
from hubspot.crm.pipelines.exceptions import ApiException as PipelinesApiException
from hubspot.crm.properties.exceptions import ApiException as PropertiesApiException
from hubspot.oauth.exceptions import ApiException as OauthApiException
from tenacity import RetryCallState, RetryError, Retrying, retry_if_exception_type

from tasuki.crm import CallCounter
from tasuki.errors import CrmError, CrmRateLimited, CrmUnavailable, crm_error_for_status
from tasuki.providers import TIERS
from tasuki.ratelimit import DailyBudget, SharedLimiter, Window

API_EXCEPTIONS: tuple[type[Exception], ...] = (
    ObjectsApiException,
    OwnersApiException,
    PipelinesApiException,
    PropertiesApiException,
    OauthApiException,
)
"""Each generated package of the client raises its own ApiException class."""

BURST_SECONDS = 10.0
"""HubSpot's burst limits count calls in a rolling ten seconds."""

WINDOW_MARGIN = 1.05
"""Windows are kept 5% longer than HubSpot's, so calls that leave together but arrive apart
(network jitter) never land in one of HubSpot's windows more than the limit allows."""

RETRY_WAITS = (0.5, 1.0, 2.0, 4.0, 8.0)
"""Waits before retrying a 5xx or a timeout; after the last, :class:`CrmUnavailable`."""

MAX_RATE_LIMIT_RETRIES = 20
"""429s of the burst or search policy one call may meet before it gives up."""


@dataclass(frozen=True)
class RateLimits:
    """The windows calls are drawn from: every call takes a ``burst`` slot, searches also a
    ``search`` slot."""

    burst: Window
    search: Window

    @classmethod
    def for_tier(cls, tier: str) -> RateLimits:
        """The windows for a tier name of :data:`TIERS`."""
        try:
            t = TIERS[tier]
        except KeyError as exc:
            known = ", ".join(TIERS)
            raise ValueError(f"unknown HubSpot tier {tier!r}; known: {known}") from exc
        return cls(
            burst=Window("burst", t.burst, BURST_SECONDS * WINDOW_MARGIN),
            search=Window("search", t.search_per_second, 1.0 * WINDOW_MARGIN),
        )


@dataclass(frozen=True)
class Answer:
    """A successful HubSpot answer: status (200, 201, 207 ...), parsed JSON body, headers."""

    status: int
    body: Any
    headers: Mapping[str, str]


class _Retryable(Exception):
    """An answer the retry policy may try again: HubSpot's status and body."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"HubSpot answered {status}: {text[:200]}")
        self.status = status
        self.text = text


class _Throttled(_Retryable):
    """A 429 of the burst or search window; ``wait``: what HubSpot asked for."""

    def __init__(self, status: int, text: str, wait: float) -> None:
        super().__init__(status, text)
        self.wait = wait


class _Failed(_Retryable):
    """A 5xx, a timeout or a dropped connection (status 0)."""


class _Expired(_Retryable):
    """A 401: the OAuth access token may have expired."""


class HubSpotApi:
    """Sends calls built with hubspot-api-client under the shared limits, with retries."""

    def __init__(
        self,
        limiter: SharedLimiter,
        budget: DailyBudget,
        limits: RateLimits,
        calls: CallCounter,
        *,
        timeout: float = 30.0,
        day_zone: str = "UTC",
        sleep: Callable[[float], None] = time.sleep,
        refresh_token: Callable[[], None] | None = None,
    ) -> None:
        self.limiter = limiter
        self.budget = budget
        self.limits = limits
        self.calls = calls
        self.timeout = timeout
        self.day_zone = ZoneInfo(day_zone)
        self._sleep = sleep
        self._refresh = refresh_token
        self.retries: dict[str, int] = {"rate_limited": 0, "unavailable": 0}

    def seconds_to_midnight(self) -> float:
        """Seconds until the account's day ends (HubSpot resets daily limits at midnight)."""
        now = datetime.now(self.day_zone)
        midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        return max(1.0, (midnight - now).total_seconds())

    def send(
        self, kind: str, url: str, call: Callable[[float], Any], *, search: bool = False
    ) -> Answer:
        """Run ``call(timeout)`` (a client method called with ``_preload_content=False``) under
        the limits, retrying what HubSpot asks to retry (:meth:`_policy`); counts every attempt
        as a ``kind`` call."""
        windows = [self.limits.burst, self.limits.search] if search else [self.limits.burst]
        try:
            for attempt in self._policy():
                with attempt:
                    return self._attempt(kind, url, call, windows, search=search)
        except RetryError as exc:
            last = exc.last_attempt.exception()
            if isinstance(last, _Throttled):
                raise CrmRateLimited(
                    f"HubSpot kept answering 429 ({exc.last_attempt.attempt_number} attempts): "
                    f"{_message(last.text)}",
                    url=url,
                    body=last.text,
                    retry_after=10.0,
                ) from last
            if isinstance(last, _Failed):
                raise CrmUnavailable(
                    f"HubSpot unavailable after {exc.last_attempt.attempt_number} attempts: "
                    f"{_message(last.text)}",
                    url=url,
                    status=last.status,
                    body=last.text,
                ) from last
            assert isinstance(last, _Expired)
            raise error_for(401, url, last.text) from last
        raise AssertionError("tenacity ends with an answer or an error")  # pragma: no cover

    def _policy(self) -> Retrying:
        """The declared retry policy: a burst/search 429 is retried at once (the shared limiter
        already holds every worker for HubSpot's wait) up to :data:`MAX_RATE_LIMIT_RETRIES`
        times; a 5xx, timeout or dropped connection after :data:`RETRY_WAITS`; a 401 once, after
        the OAuth token is refreshed. Anything else, and a 429 ``DAILY``, is not retried."""
        counts = {_Throttled: 0, _Failed: 0, _Expired: 0}

        def note(state: RetryCallState) -> None:
            failure = state.outcome.exception() if state.outcome else None
            if isinstance(failure, _Retryable):
                counts[type(failure)] += 1

        def stop(state: RetryCallState) -> bool:
            return (
                counts[_Throttled] > MAX_RATE_LIMIT_RETRIES
                or counts[_Failed] > len(RETRY_WAITS)
                or counts[_Expired] > (1 if self._refresh is not None else 0)
            )

        def wait(state: RetryCallState) -> float:
            failure = state.outcome.exception() if state.outcome else None
            if isinstance(failure, _Failed):
                return RETRY_WAITS[min(counts[_Failed], len(RETRY_WAITS)) - 1]
            return 0.0

        def before_sleep(state: RetryCallState) -> None:
            failure = state.outcome.exception() if state.outcome else None
            if isinstance(failure, _Throttled):
                self.retries["rate_limited"] += 1
                self.limiter.pause(failure.wait)
            elif isinstance(failure, _Failed):
                self.retries["unavailable"] += 1
            elif isinstance(failure, _Expired) and self._refresh is not None:
                self._refresh()

        return Retrying(
            retry=retry_if_exception_type(_Retryable),
            after=note,
            stop=stop,
            wait=wait,
            before_sleep=before_sleep,
            sleep=self._sleep,
        )

    def _attempt(
        self,
        kind: str,
        url: str,
        call: Callable[[float], Any],
        windows: list[Window],
        *,
        search: bool,
    ) -> Answer:
        """One call under the daily budget and the shared windows; HubSpot's answer, or the
        error saying whether it may be retried."""
        left = self.budget.remaining()
        if left is not None and left[0] <= 0:
            raise CrmRateLimited(
                "HubSpot daily limit spent", url=url, retry_after=self.budget.seconds_until_reset()
            )
        self.limiter.acquire(windows)
        self.calls.add(kind)
        try:
            response = call(self.timeout)
            status, data, headers = response.status, response.data, response.headers
            response.release_conn()
        except API_EXCEPTIONS as exc:
            status = int(getattr(exc, "status", 0) or 0)
            data = getattr(exc, "body", None) or b""
            headers = getattr(exc, "headers", None) or {}
        except urllib3.exceptions.HTTPError as exc:
            status, data, headers = 0, str(exc).encode(), {}
        self._note_budget(headers)
        if 200 <= status < 300:
            return Answer(status, _json(data), headers)
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
        if status == 429:
            body = _json(data) or {}
            policy = str(body.get("policyName", "")) if isinstance(body, dict) else ""
            if policy == "DAILY":
                wait = self.seconds_to_midnight()
                self.budget.exhaust(wait)
                raise CrmRateLimited(
                    "HubSpot daily limit reached", url=url, body=text, retry_after=wait
                )
            raise _Throttled(status, text, _wait_from(headers, search=search))
        if status == 401:
            raise _Expired(status, text)
        if status == 0 or status >= 500:
            raise _Failed(status, text)
        raise error_for(status, url, text)

    def _note_budget(self, headers: Mapping[str, str]) -> None:
        remaining = _header(headers, "X-HubSpot-RateLimit-Daily-Remaining")
        limit = _header(headers, "X-HubSpot-RateLimit-Daily")
        if remaining is not None and remaining.isdigit():
            daily = int(limit) if limit and limit.isdigit() else 0
            self.budget.record(int(remaining), daily, self.seconds_to_midnight())


def error_for(status: int, url: str, text: str) -> CrmError:
    """The tasuki error for a HubSpot error answer, with HubSpot's category and message."""
    return crm_error_for_status(status)(
        f"HubSpot answered {status}: {_message(text)}", url=url, status=status, body=text
    )


def _message(text: str) -> str:
    """HubSpot's own message in an error body (``CATEGORY: message``), else the body's start."""
    body = _json(text.encode())
    if isinstance(body, dict) and body.get("message"):
        category = body.get("category") or body.get("status") or ""
        return f"{category}: {body['message']}" if category else str(body["message"])
    return text[:300]


def _wait_from(headers: Mapping[str, str], *, search: bool) -> float:
    retry_after = _header(headers, "Retry-After")
    if retry_after:
        try:
            return max(0.05, float(retry_after))
        except ValueError:
            pass
    interval = _header(headers, "X-HubSpot-RateLimit-Interval-Milliseconds")
    if interval and interval.isdigit():
        return max(0.05, int(interval) / 1000)
    return 1.0 if search else BURST_SECONDS


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    return None if value is None else str(value)


def _json(data: Any) -> Any:
    if not data:
        return None
    try:
        return json.loads(data)
    except (ValueError, TypeError):
        return None
