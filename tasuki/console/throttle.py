"""The login form's rate limit, per client address, counted in Redis (or in memory without it).

Built on ``limits`` (the library Flask-Limiter wraps) and checked by the login view itself, so
that no other request pays for a limiter: Flask-Limiter hooks every request of the app, and the
app's busiest requests, webhooks, are signed and never limited by address.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from limits import RateLimitItem, parse_many
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

log = logging.getLogger(__name__)

LOGIN_LIMIT = "10 per minute;50 per hour"
"""Sign-in attempts one address may make (both windows count)."""

NAMESPACE = "tasuki-console"
"""Prefix of the counters' Redis keys."""


@dataclass
class LoginThrottle:
    """Counts sign-in attempts per address in the storage at ``uri``."""

    uri: str
    """``redis://…`` (shared by every server process) or ``memory://`` (this process)."""
    limits: list[RateLimitItem] = field(default_factory=lambda: parse_many(LOGIN_LIMIT))
    _storage: Storage = field(init=False, repr=False)
    _limiter: FixedWindowRateLimiter = field(init=False, repr=False)

    def __post_init__(self) -> None:
        storage = storage_from_string(self.uri)
        assert isinstance(storage, Storage)  # a synchronous URI (redis://, memory://)
        self._storage = storage
        self._limiter = FixedWindowRateLimiter(self._storage)

    def allows(self, address: str) -> bool:
        """Count one attempt from ``address``; False once any window is full. A storage that
        does not answer lets the attempt through (logged): Redis down must not lock everyone
        out of the console."""
        try:
            hits = [self._limiter.hit(item, NAMESPACE, "login", address) for item in self.limits]
        except Exception as exc:  # the storage's own errors: redis-py's, or a closed socket
            log.warning("the login limit lapses: %s: %s", type(exc).__name__, exc)
            return True
        return all(hits)
