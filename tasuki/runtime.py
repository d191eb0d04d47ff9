"""The resolved parts a process works with: settings, store, connector, queue connection.

Built once per process from the environment (:func:`current`), or handed in explicitly with
:func:`activate` (the demo and the tests). Jobs look their parts up here, so their own arguments
stay small and JSON-safe.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import redis

from tasuki.crm import Connector
from tasuki.settings import Settings, load_settings
from tasuki.store.db import Store, open_store

if TYPE_CHECKING:
    from rules import Rulebook
    from tasuki.calendar import BusinessCalendar


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


@dataclass
class Runtime:
    """One process's view of tasuki."""

    settings: Settings
    store: Store
    connector: Connector
    redis_connection: redis.Redis | None = None
    extras: dict[str, object] = field(default_factory=dict)

    @cached_property
    def rulebook(self) -> Rulebook:
        """The rules named in the config, validated (a bad file raises ConfigError)."""
        return load_rules(self.settings)

    @cached_property
    def calendar(self) -> BusinessCalendar:
        """The company's business calendar, for SLAs."""
        from tasuki.calendar import BusinessCalendar

        return BusinessCalendar.from_config(self.settings.config.calendar)

    def validate(self) -> None:
        """See :func:`validate`; the rulebook is kept for the jobs."""
        from tasuki import kpis

        _ = self.rulebook
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


_active: Runtime | None = None


def current() -> Runtime:
    """The runtime jobs use: the activated one, else one built from the environment."""
    global _active
    if _active is None:
        _active = build()
    return _active


def install(settings: Settings) -> Runtime:
    """Build the runtime from ``settings`` (checked already, see :mod:`tasuki.preflight`) and
    make it the one jobs use for the rest of this process: a long-running process's start."""
    global _active
    _active = build(settings)
    return _active


@contextmanager
def activate(rt: Runtime) -> Iterator[Runtime]:
    """Make ``rt`` the runtime jobs in this process use, for the duration of the block."""
    global _active
    previous, _active = _active, rt
    try:
        yield rt
    finally:
        _active = previous
