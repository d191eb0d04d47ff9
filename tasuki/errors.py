"""The one exception tree of tasuki.

::

    TasukiError
    ├── ConfigError            a configuration or rules file is wrong; carries every problem
    │                          as a Problem(file, line, column, message)
    ├── QueueUnavailable       the job queue cannot take work (the webhook answers 503)
    ├── StoreUnavailable       the store cannot be reached
    └── CrmError               a CRM call failed; carries url, status and the CRM's own body
        ├── CrmAuthError       401/403 on authentication (session expired, bad token)
        ├── CrmRateLimited     the CRM asked us to slow down; ``retry_after`` seconds
        ├── CrmUnavailable     5xx or a timeout: worth retrying later
        └── CrmRequestError    4xx the CRM will never accept as sent

HTTP status → class happens in one place, :func:`crm_error_for_status`.
"""

from __future__ import annotations

from dataclasses import dataclass


class TasukiError(Exception):
    """Base of every error tasuki raises on purpose."""


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong in a file, at a place a person can jump to."""

    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class ConfigError(TasukiError):
    """A configuration, rules or KPI file is wrong. All problems are collected, then raised once."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class QueueUnavailable(TasukiError):
    """The job queue cannot accept work right now."""


class StoreUnavailable(TasukiError):
    """The store cannot be reached."""


class CrmError(TasukiError):
    """A CRM call failed. ``body`` is the CRM's own answer, kept verbatim for the record."""

    def __init__(self, message: str, *, url: str = "", status: int = 0, body: str = "") -> None:
        self.url = url
        self.status = status
        self.body = body
        super().__init__(message)


class CrmAuthError(CrmError):
    """Authentication failed or the session expired."""


class CrmRateLimited(CrmError):
    """The CRM asked us to slow down."""

    def __init__(
        self,
        message: str,
        *,
        url: str = "",
        status: int = 429,
        body: str = "",
        retry_after: float = 10.0,
    ) -> None:
        super().__init__(message, url=url, status=status, body=body)
        self.retry_after = retry_after


class CrmUnavailable(CrmError):
    """The CRM is down or slow; the same call may succeed later."""


class CrmRequestError(CrmError):
    """The CRM refused the request as sent; retrying it unchanged will not help."""


_STATUS_TO_ERROR: dict[int, type[CrmError]] = {
    401: CrmAuthError,
    429: CrmRateLimited,
    500: CrmUnavailable,
    502: CrmUnavailable,
    503: CrmUnavailable,
    504: CrmUnavailable,
}


def crm_error_for_status(status: int) -> type[CrmError]:
    """The exception class for an HTTP status a CRM answered with."""
    if status in _STATUS_TO_ERROR:
        return _STATUS_TO_ERROR[status]
    if status >= 500:
        return CrmUnavailable
    return CrmRequestError
