"""The demo: a synthetic The Model org in the embedded CRM, pushed through the real pipeline."""

from __future__ import annotations

from tasuki.errors import TasukiError


class DemoFailed(TasukiError):
    """A job of the demo failed; the message carries the job's error."""


__all__ = ["DemoFailed"]
