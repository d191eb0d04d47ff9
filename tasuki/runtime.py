"""The resolved parts a process works with (settings, store, connector, queue connection), and
the one place jobs find them: the runtime held in a :class:`~contextvars.ContextVar`.

This module is core: it builds nothing from settings. The composition root,
:mod:`tasuki.startup`, assembles a :class:`Runtime` (the connector of the configured CRM, the
rule engine's reader) and sets it once per process: :func:`tasuki.startup.install` at a
long-running process's start (``tasuki worker``, ``tasuki serve``), :func:`activate` for a block
(the demo, the tests, a CLI command running a job in-process). Jobs look their parts up with
:func:`current`, so their own arguments stay small and JSON-safe (as Flask's ``_cv_app`` and
rq's ``_current_job``). A thread started by the process begins with an empty context: start it
with ``contextvars.copy_context().run`` when it runs jobs.

Rules and KPI files are watched: :meth:`Runtime.refresh`, called as each job starts, compares
their size and modification time with those they were read at (a ``stat`` per file), hashes the
content only when one moved, and reads the changed files again. A worker started before a rule
change therefore judges with the new rule; a broken new file fails the job with the file's
problems (FILE:LINE:COL) instead of judging with stale rules. The KPI files are watched the
same way: a changed book is read (and validated) as the job starts.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

import redis

from tasuki.calendar import BusinessCalendar
from tasuki.crm import Connector
from tasuki.errors import TasukiError
from tasuki.settings import Settings
from tasuki.store.db import Store
from tasuki.yamlsource import Stamps, file_stamps

if TYPE_CHECKING:
    # The rule engine's type, named for mypy only: the core never imports the engine, the
    # composition root hands the runtime a reader that returns one.
    from rules import Rulebook
    from tasuki.kpis.schema import KpiBook

log = logging.getLogger(__name__)

T = TypeVar("T")


class NoRuntime(TasukiError):
    """No runtime is active in this context: a process sets one at start
    (:func:`tasuki.startup.install`) or for a block (:func:`activate`)."""


class NoReader(TasukiError):
    """The runtime was assembled without a reader for these files: assemble it with
    :func:`tasuki.startup.assemble`, which gives it the rule engine's and the KPI book's."""


def content_digest(paths: Sequence[Path]) -> str:
    """sha256 of the files' content, each prefixed by its length (the rulebook's own digest)."""
    digest = hashlib.sha256()
    for p in paths:
        try:
            content = Path(p).read_bytes()
        except OSError:
            content = b""
        digest.update(len(content).to_bytes(8, "big") + content)
    return digest.hexdigest()


def rules_fingerprint(settings: Settings, rulebook: Rulebook) -> str:
    """What a verdict records as the rule set that judged it: the rules files' content and the
    parts of the config judging reads (business calendar, boundaries, related records), so a
    new holiday, which moves an SLA, counts as a change of the rule set."""
    cfg = settings.config
    digest = hashlib.sha256(rulebook.digest.encode())
    digest.update(cfg.calendar.model_dump_json().encode())
    for b in cfg.boundaries:
        digest.update(b.model_dump_json().encode())
    digest.update(repr(sorted((k, sorted(v.items())) for k, v in cfg.related.items())).encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class _Read(Generic[T]):
    """What was read from a set of files, the files' stamps before reading (a write during the
    read shows as a change next time) and the digest of their content."""

    value: T
    stamps: Stamps
    digest: str


@dataclass
class Runtime:
    """One process's view of tasuki: its parts, and the rules and KPI book it read."""

    settings: Settings
    store: Store
    connector: Connector
    redis_connection: redis.Redis | None = None
    extras: dict[str, object] = field(default_factory=dict)
    read_rules: Callable[[Settings], Rulebook] | None = field(default=None, kw_only=True)
    """How the rules files become a rulebook (the rule engine's loader, given by
    :func:`tasuki.startup.assemble`)."""
    read_kpis: Callable[[Settings], KpiBook] | None = field(default=None, kw_only=True)
    """How the KPI files become a KPI book (:func:`tasuki.kpis.book`)."""
    _rules: _Read[Rulebook] | None = field(default=None, init=False, repr=False)
    _rules_print: str = field(default="", init=False, repr=False)
    _kpis: _Read[KpiBook] | None = field(default=None, init=False, repr=False)

    @property
    def rulebook(self) -> Rulebook:
        """The rules named in the config, validated (a bad file raises ConfigError); read once
        and again when :meth:`refresh` finds the files changed."""
        if self._rules is None:
            self._rules = self._read_rules()
            self._rules_print = rules_fingerprint(self.settings, self._rules.value)
        return self._rules.value

    @property
    def rules_fingerprint(self) -> str:
        """The fingerprint of the rule set judging now (see :func:`rules_fingerprint`)."""
        _ = self.rulebook
        return self._rules_print

    @property
    def kpi_book(self) -> KpiBook:
        """The KPI book named in the config, validated; read once and again when
        :meth:`refresh` finds the files changed."""
        if self._kpis is None:
            self._kpis = self._read_kpis()
        return self._kpis.value

    @property
    def kpi_fingerprint(self) -> str:
        """sha256 of the KPI files' content as last read (see :meth:`refresh`)."""
        _ = self.kpi_book
        assert self._kpis is not None
        return self._kpis.digest

    def _read_rules(self) -> _Read[Rulebook]:
        if self.read_rules is None:
            raise NoReader("this runtime has no rules reader")
        stamps = file_stamps(self.settings.rule_paths)
        book = self.read_rules(self.settings)
        return _Read(book, stamps, book.digest)

    def _read_kpis(self) -> _Read[KpiBook]:
        if self.read_kpis is None:
            raise NoReader("this runtime has no KPI book reader")
        paths = self.settings.kpi_paths
        stamps = file_stamps(paths)
        return _Read(self.read_kpis(self.settings), stamps, content_digest(paths))

    def refresh(self) -> bool:
        """Pick up rules and KPI files changed on disk since they were read; True when either
        changed. Cheap when nothing moved (a ``stat`` per file). Raises ConfigError, with every
        problem, when a changed file is broken: the caller must not judge with stale rules."""
        changed = False
        rules = self._rules
        if rules is not None:
            stamps = file_stamps(self.settings.rule_paths)
            if stamps != rules.stamps:
                if content_digest(self.settings.rule_paths) == rules.digest:
                    self._rules = _Read(rules.value, stamps, rules.digest)
                else:
                    fresh = self._read_rules()
                    fingerprint = rules_fingerprint(self.settings, fresh.value)
                    log.info(
                        "rules files changed on disk: rule set %s replaces %s",
                        fingerprint[:12],
                        self._rules_print[:12],
                    )
                    self._rules, self._rules_print = fresh, fingerprint
                    changed = True
        kpis = self._kpis
        if kpis is not None:
            stamps = file_stamps(self.settings.kpi_paths)
            if stamps != kpis.stamps:
                digest = content_digest(self.settings.kpi_paths)
                if digest == kpis.digest:
                    self._kpis = _Read(kpis.value, stamps, digest)
                else:
                    self._kpis = self._read_kpis()  # a broken file raises: the old book stays
                    log.info("KPI files changed on disk: KPI book %s read", digest[:12])
                    changed = True
        return changed

    @cached_property
    def calendar(self) -> BusinessCalendar:
        """The company's business calendar, for SLAs."""
        return BusinessCalendar.from_config(self.settings.config.calendar)

    def validate(self) -> None:
        """Read the rules and KPI files now (a broken one raises ConfigError with all its
        problems) and keep them for the jobs; from then on the files are watched."""
        _ = self.rulebook
        _ = self.kpi_book

    @property
    def system(self) -> str:
        """The active CRM's key."""
        return self.connector.system


_current: ContextVar[Runtime] = ContextVar("tasuki.runtime")
"""The runtime jobs in this context use; the one piece of process state tasuki keeps."""


def current() -> Runtime:
    """The runtime jobs in this context use (:class:`NoRuntime` when none was set)."""
    try:
        return _current.get()
    except LookupError:
        raise NoRuntime(
            "no runtime is active here: a process installs one at start (tasuki.startup)"
        ) from None


def active() -> Runtime | None:
    """The runtime of this context, or None: for code that works with or without one."""
    return _current.get(None)


def set_for_process(rt: Runtime) -> Runtime:
    """Make ``rt`` the runtime for the rest of this context (the process's, at its start); the
    composition root's :func:`tasuki.startup.install` is the one caller."""
    _current.set(rt)
    return rt


@contextmanager
def activate(rt: Runtime) -> Iterator[Runtime]:
    """Make ``rt`` the runtime jobs in this context use, for the duration of the block."""
    token = _current.set(rt)
    try:
        yield rt
    finally:
        _current.reset(token)
