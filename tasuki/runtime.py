"""The resolved parts a process works with: settings, store, connector, queue connection.

The runtime a job uses is held in a :class:`~contextvars.ContextVar` (as Flask's ``_cv_app`` and
rq's ``_current_job``), set in one place per process: :func:`install` at a long-running
process's start (``tasuki worker``, ``tasuki serve``), :func:`activate` for a block (the demo,
the tests, a CLI command running a job in-process), or, in a one-off CLI command that set none,
built from the environment at the first :func:`current`. Jobs look their parts up here, so their
own arguments stay small and JSON-safe. A thread started by the process begins with an empty
context: start it with ``contextvars.copy_context().run`` when it runs jobs.

Rules and KPI files are watched: :meth:`Runtime.refresh`, called as each job starts, compares
their size and modification time with those they were read at (a ``stat`` per file), hashes the
content only when one moved, and rebuilds the rulebook when the content changed. A worker
started before a rule change therefore judges with the new rule; a broken new file fails the
job with the file's problems (FILE:LINE:COL) instead of judging with stale rules.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import redis

from tasuki.crm import Connector
from tasuki.settings import Settings, load_settings
from tasuki.store.db import Store, open_store
from tasuki.yamlsource import Stamps, file_stamps

if TYPE_CHECKING:
    from rules import Rulebook
    from tasuki.calendar import BusinessCalendar

log = logging.getLogger(__name__)


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


def connector_for(settings: Settings) -> Connector:
    """The connector for the configured CRM, built from settings and environment secrets."""
    crm = settings.config.crm
    if crm == "local":
        from connectors.local import LocalCrm

        return LocalCrm(settings.data_dir / "crm.db")
    # Each CRM module offers connector_from_settings(settings); imported only when used.
    module = importlib.import_module(f"connectors.{crm}")
    built: Connector = module.connector_from_settings(settings)
    return built


@dataclass(frozen=True)
class _Loaded:
    """A rulebook and the stamps of the files it was read from."""

    rulebook: Rulebook
    stamps: Stamps
    fingerprint: str


@dataclass
class Runtime:
    """One process's view of tasuki."""

    settings: Settings
    store: Store
    connector: Connector
    redis_connection: redis.Redis | None = None
    extras: dict[str, object] = field(default_factory=dict)
    _rules: _Loaded | None = field(default=None, init=False, repr=False)
    _kpi_stamps: Stamps | None = field(default=None, init=False, repr=False)
    _kpi_digest: str = field(default="", init=False, repr=False)

    @property
    def rulebook(self) -> Rulebook:
        """The rules named in the config, validated (a bad file raises ConfigError); read once
        and again when :meth:`refresh` finds the files changed."""
        if self._rules is None:
            self._rules = self._load_rules()
        return self._rules.rulebook

    @property
    def rules_fingerprint(self) -> str:
        """The fingerprint of the rule set judging now (see :func:`rules_fingerprint`)."""
        _ = self.rulebook
        assert self._rules is not None
        return self._rules.fingerprint

    @property
    def kpi_fingerprint(self) -> str:
        """sha256 of the KPI files' content as last read (see :meth:`refresh`)."""
        if self._kpi_stamps is None:
            self._kpi_stamps = file_stamps(self.settings.kpi_paths)
            self._kpi_digest = content_digest(self.settings.kpi_paths)
        return self._kpi_digest

    def _load_rules(self) -> _Loaded:
        stamps = file_stamps(self.settings.rule_paths)  # before reading: a later write shows
        book = load_rules(self.settings)
        return _Loaded(book, stamps, rules_fingerprint(self.settings, book))

    def refresh(self) -> bool:
        """Pick up rules and KPI files changed on disk since they were read; True when either
        changed. Cheap when nothing moved (a ``stat`` per file). Raises ConfigError, with every
        problem, when a changed file is broken: the caller must not judge with stale rules."""
        changed = False
        loaded = self._rules
        if loaded is not None:
            stamps = file_stamps(self.settings.rule_paths)
            if stamps != loaded.stamps:
                if content_digest(self.settings.rule_paths) == loaded.rulebook.digest:
                    self._rules = _Loaded(loaded.rulebook, stamps, loaded.fingerprint)
                else:
                    fresh = self._load_rules()
                    log.info(
                        "rules files changed on disk: rule set %s replaces %s",
                        fresh.fingerprint[:12],
                        loaded.fingerprint[:12],
                    )
                    self._rules = fresh
                    changed = True
        if self._kpi_stamps is not None:
            stamps = file_stamps(self.settings.kpi_paths)
            if stamps != self._kpi_stamps:
                digest = content_digest(self.settings.kpi_paths)
                if digest != self._kpi_digest:
                    self._reload_kpis()
                    log.info("KPI files changed on disk: KPI book %s read", digest[:12])
                    changed = True
                self._kpi_stamps, self._kpi_digest = stamps, digest
        return changed

    def _reload_kpis(self) -> None:
        """Validate the changed KPI files now (a broken one fails the job with its problems)."""
        from tasuki import kpis

        kpis.book(self.settings)  # memoised by the files' stamps: this reads the new files

    @cached_property
    def calendar(self) -> BusinessCalendar:
        """The company's business calendar, for SLAs."""
        from tasuki.calendar import BusinessCalendar

        return BusinessCalendar.from_config(self.settings.config.calendar)

    def validate(self) -> None:
        """See :func:`validate`; the rulebook is kept for the jobs, the KPI files watched."""
        from tasuki import kpis

        _ = self.rulebook
        _ = self.kpi_fingerprint
        kpis.book(self.settings)

    @property
    def system(self) -> str:
        """The active CRM's key."""
        return self.connector.system


def validate(settings: Settings) -> None:
    """Load every file the config names (rules, KPIs): a broken one raises ConfigError with all
    its problems now, before the process takes any work."""
    from tasuki import kpis

    load_rules(settings)
    kpis.book(settings)


def load_rules(settings: Settings) -> Rulebook:
    """The rules named in the config, validated (a bad file raises ConfigError)."""
    from rules import load_rulebook
    from tasuki.catalog import catalog

    return load_rulebook(settings.rule_paths, catalog(settings.config))


def build(settings: Settings | None = None, *, connector: Connector | None = None) -> Runtime:
    """Resolve every part from ``settings`` (default: from the environment)."""
    settings = settings or load_settings()
    store = open_store(settings.database_url)
    return Runtime(settings, store, connector or connector_for(settings))


_current: ContextVar[Runtime] = ContextVar("tasuki.runtime")
"""The runtime jobs in this context use; the one piece of process state tasuki keeps."""


def current() -> Runtime:
    """The runtime jobs use: the installed or activated one, else (a one-off CLI command) one
    built from the environment and kept for the rest of this context."""
    try:
        return _current.get()
    except LookupError:
        rt = build()
        _current.set(rt)
        return rt


def install(settings: Settings) -> Runtime:
    """Build the runtime from ``settings`` (checked already, see :mod:`tasuki.preflight`) and
    make it the one jobs use for the rest of this process: a long-running process's start."""
    rt = build(settings)
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
