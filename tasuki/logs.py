"""One logging setup for every tasuki process: serve, worker, scheduler, up, demo.

:func:`setup` is called once at process start. It puts one handler on the root logger, so
tasuki's own loggers, RQ's (``rq.worker``, ``rq.job``, ``rq.cron``: RQ adds no handler of its
own once one exists) and waitress's all come out the same way, on standard error:

- ``TASUKI_LOG_FORMAT=text`` (default): ``2026-11-20T09:00:00.123Z INFO worker tasuki.sync
  message  job_id=… record_id=…``;
- ``TASUKI_LOG_FORMAT=json``: one JSON object a line with ``timestamp``, ``level``, ``logger``,
  ``message``, ``process`` (serve, worker, …), ``pid`` and, where they apply, ``job_id`` (RQ's
  current job), ``provider``, ``delivery_id``, ``object``, ``record_id``, the access-log fields
  and ``exception``.

``TASUKI_LOG_LEVEL`` sets the level of tasuki's, RQ's and waitress's loggers. Every other
library stays at WARNING whatever the level: SQLAlchemy at INFO prints every statement with its
parameters and an HTTP client at DEBUG prints URLs, neither of which belongs in a log.

Secrets never appear: nothing tasuki logs carries one, only whitelisted fields of a record are
written (RQ attaches job arguments to its records; they are dropped), and as a last guard each
line has every secret value of the settings (``TASUKI_*`` secrets and tokens, passwords of the
store and Redis URLs) replaced by ``**********`` before it is written.

The context fields come from :func:`bind` (a :class:`contextvars.ContextVar`, set per request
by the webhook app and per job by :mod:`tasuki.ops.runs`) and from RQ's ``get_current_job``.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO
from urllib.parse import urlsplit

from rq import get_current_job

from tasuki.settings import Settings, masked_url

OWN_LOGGERS = ("tasuki", "worker", "webhooks", "connectors", "rules", "rq", "waitress")
"""Loggers ``TASUKI_LOG_LEVEL`` applies to; every other one logs WARNING and above only."""

LIBRARY_FLOOR = logging.WARNING
"""The least severe level a library outside :data:`OWN_LOGGERS` may log at."""

CONTEXT_FIELDS = ("job_id", "provider", "delivery_id", "object", "record_id")
"""Fields a record carries when they apply (from :func:`bind`, ``extra=`` or RQ)."""

EXTRA_FIELDS = (
    "method",
    "path",
    "status",
    "duration_ms",
    "remote_addr",
    "address",
    "threads",
    "store",
    "queue",
    "redis",
    "crm",
    "config",
    "run_id",
    "job",
)
"""Further ``extra=`` fields written when present: the access log's and the start line's."""

MASK = "**********"
"""What a secret value is replaced with."""

MIN_SECRET_LENGTH = 6
"""Secret values shorter than this are not searched for in log lines (they would mask
ordinary words); every secret tasuki is given is far longer in practice."""

_context: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "tasuki_log_context", default=None
)


class _ProcessHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The one handler :func:`setup` puts on the root logger; the root logger, not this module,
    remembers it, so setting up again replaces it and :func:`configured` finds it there."""


def bind(**fields: object) -> contextvars.Token[Mapping[str, str] | None]:
    """Add ``fields`` (None values are skipped) to the log context of the current thread or
    task; returns the token :func:`reset` takes."""
    merged = dict(_context.get() or {})
    merged.update({k: str(v) for k, v in fields.items() if v is not None})
    return _context.set(merged)


def reset(token: contextvars.Token[Mapping[str, str] | None]) -> None:
    """Undo the :func:`bind` that returned ``token``."""
    _context.reset(token)


def clear() -> None:
    """Forget every bound field (a server thread starting the next request)."""
    _context.set({})


@contextmanager
def bound(**fields: object) -> Iterator[None]:
    """``fields`` in the log context for the duration of the block."""
    token = bind(**fields)
    try:
        yield
    finally:
        reset(token)


def ids_field(ids: list[str] | tuple[str, ...]) -> str | None:
    """One id, or the first and how many more: a record id or delivery id field's value."""
    if not ids:
        return None
    return str(ids[0]) if len(ids) == 1 else f"{ids[0]} (+{len(ids) - 1})"


def secret_values(settings: Settings) -> list[str]:
    """Every secret value ``settings`` hold, longest first: what must never be logged."""
    found = {s.get_secret_value() for s in settings.secrets.values()}
    for s in (settings.webhook_secret, settings.ops_token, settings.metrics_token):
        if s is not None:
            found.add(s.get_secret_value())
    for url in (settings.database_url, settings.redis_url):
        if url:
            try:
                password = urlsplit(url).password
            except ValueError:
                password = None
            if password:
                found.add(password)
    return sorted((v for v in found if len(v) >= MIN_SECRET_LENGTH), key=len, reverse=True)


class _Context(logging.Filter):
    """Adds the bound context fields, RQ's current job id and the process name to a record."""

    def __init__(self, process: str) -> None:
        super().__init__()
        self.process = process

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_context.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        if getattr(record, "job_id", None) is None:
            job = get_current_job()
            if job is not None:
                setattr(record, "job_id", job.id)  # noqa: B010 - not a declared attribute
        setattr(record, "tasuki_process", self.process)  # noqa: B010
        return True


def _redact(text: str, secrets: list[str]) -> str:
    for value in secrets:
        if value in text:
            text = text.replace(value, MASK)
    return text


def _timestamp(record: logging.LogRecord) -> str:
    at = datetime.fromtimestamp(record.created, UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in CONTEXT_FIELDS + EXTRA_FIELDS:
        value = getattr(record, key, None)
        if value is not None:
            out[key] = value
    return out


class TextFormatter(logging.Formatter):
    """``timestamp LEVEL process logger message  key=value…`` with secrets masked."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        process = getattr(record, "tasuki_process", "-")
        line = f"{_timestamp(record)} {record.levelname} {process} {record.name} "
        line += record.getMessage()
        fields = _fields(record)
        if fields:
            line += "  " + " ".join(f"{k}={v}" for k, v in fields.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        elif record.exc_text:
            line += "\n" + record.exc_text
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return _redact(line, self.secrets)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, whitelisted fields only, secrets masked in every value."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "timestamp": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": getattr(record, "tasuki_process", None),
            "pid": record.process,
        }
        doc.update(_fields(record))
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            doc["exception"] = record.exc_text
        for key, value in doc.items():
            if isinstance(value, str):
                doc[key] = _redact(value, self.secrets)
        return json.dumps(doc, ensure_ascii=False, default=str)


QUEUE_DEPTH_EVERY_SECONDS = 10.0
"""At most one "Task queue depth" line from waitress in this many seconds (:class:`QueueDepth`)."""


class QueueDepth(logging.Filter):
    """Waitress warns "Task queue depth is N" each time a request has to wait for a free
    thread: under a burst that is a line per request, which buries every other line and costs
    the busy server a write each time. This lets one through per ``every`` seconds, naming the
    deepest queue since the last line and how many such warnings it stands for."""

    def __init__(
        self, every: float = QUEUE_DEPTH_EVERY_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.every = every
        self.clock = clock
        self._lock = threading.Lock()
        self._next_at = float("-inf")
        self._deepest = 0
        self._folded = 0

    def filter(self, record: logging.LogRecord) -> bool:
        depth = record.args[0] if isinstance(record.args, tuple) and record.args else 0
        with self._lock:
            self._deepest = max(self._deepest, depth if isinstance(depth, int) else 0)
            self._folded += 1
            now = self.clock()
            if now < self._next_at:
                return False
            record.msg = "Task queue depth is %d (the deepest of %d such warnings in %d s)"
            record.args = (self._deepest, self._folded, self.every)
            self._next_at, self._deepest, self._folded = now + self.every, 0, 0
        return True


def level_name(settings: Settings, default: str = "INFO") -> str:
    """The level ``TASUKI_LOG_LEVEL`` names, or ``default`` when it is unset."""
    return settings.log_level or default


def setup(
    settings: Settings, process: str, *, default_level: str = "INFO", stream: TextIO | None = None
) -> logging.Handler:
    """Route every log record of this process through one handler on standard error (or
    ``stream``), in the format and at the level the settings name (``default_level`` when
    ``TASUKI_LOG_LEVEL`` is unset). Calling it again replaces the earlier setup."""
    level = logging.getLevelName(level_name(settings, default_level))
    assert isinstance(level, int)
    secrets = secret_values(settings)
    formatter: logging.Formatter = (
        JsonFormatter(secrets) if settings.log_format == "json" else TextFormatter(secrets)
    )
    handler = _ProcessHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(_Context(process))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _ProcessHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(max(level, LIBRARY_FLOOR))
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(level)
    # RQ's worker gives its loggers handlers of their own when it finds none above them, and
    # a logger of RQ's set up by an earlier worker in this process may have stopped propagating.
    for name in ("rq.worker", "rq.job", "rq.cron", "rq.scheduler"):
        rq_logger = logging.getLogger(name)
        for own in list(rq_logger.handlers):
            rq_logger.removeHandler(own)
        rq_logger.propagate = True
        rq_logger.setLevel(logging.NOTSET)
    queue_depth = logging.getLogger("waitress.queue")
    for earlier in [f for f in queue_depth.filters if isinstance(f, QueueDepth)]:
        queue_depth.removeFilter(earlier)
    queue_depth.addFilter(QueueDepth())
    logging.captureWarnings(True)
    return handler


def configured() -> bool:
    """True once :func:`setup` ran in this process (its handler is on the root logger)."""
    return any(isinstance(h, _ProcessHandler) for h in logging.getLogger().handlers)


def started(process: str, settings: Settings, **fields: str) -> None:
    """Log the line a process starts with: what it serves or works on, with passwords masked."""
    described: dict[str, str] = {**fields}
    described["store"] = masked_url(settings.database_url)
    described["queue"] = settings.config.queue_name
    described["redis"] = masked_url(settings.redis_url) if settings.redis_url else "in-process"
    described["crm"] = settings.config.crm
    described["config"] = str(settings.config_path)
    logging.getLogger("tasuki").info(
        "tasuki %s starting (pid %d)", process, os.getpid(), extra=described
    )
