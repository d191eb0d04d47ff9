"""Start-up: the composition root, the one module that turns settings into a working runtime.

A process starts by resolving its parts from the settings: the connector of the configured CRM
(an engine, ``connectors``), the rule engine's reader of the rules files (``rules``), the KPI
book's reader, the store and the queue connection. This module is where those engines and the
core meet; everything else receives the assembled :class:`~tasuki.runtime.Runtime` (a job
through :func:`tasuki.runtime.current`). It is named for the moment it serves, a process's
start, rather than for a technique: a command, a worker or the web app each begins here.

- :func:`assemble` builds a runtime from parts already open (the demo, the tests, a bench).
- :func:`build` resolves every part from settings (default: from the environment).
- :func:`install` builds it and makes it the process's runtime: ``tasuki worker``, ``serve``.
- :func:`current` is the CLI's: the runtime of this context, or (a one-off command) one built
  from the environment and kept for the rest of the command.
"""

from __future__ import annotations

import importlib

import redis

from connectors.local import LocalCrm
from rules import Rulebook, load_rulebook
from tasuki import runtime
from tasuki.catalog import catalog
from tasuki.crm import Connector
from tasuki.kpis.books import book as kpi_book
from tasuki.kpis.books import read_book
from tasuki.runtime import Runtime
from tasuki.settings import Settings, load_settings
from tasuki.store.db import Store, open_store


def connector_for(settings: Settings) -> Connector:
    """The connector for the configured CRM, built from settings and environment secrets."""
    crm = settings.config.crm
    if crm == "local":
        return LocalCrm(settings.data_dir / "crm.db")
    # Each CRM module offers connector_from_settings(settings); imported by name so a
    # deployment on one CRM never loads the other's client library.
    module = importlib.import_module(f"connectors.{crm}")
    built: Connector = module.connector_from_settings(settings)
    return built


def load_rules(settings: Settings) -> Rulebook:
    """The rules named in the config, validated (a bad file raises ConfigError)."""
    return load_rulebook(settings.rule_paths, catalog(settings.config))


def validate(settings: Settings) -> None:
    """Load every file the config names (rules, KPIs): a broken one raises ConfigError with all
    its problems now, before the process takes any work."""
    load_rules(settings)
    read_book(settings)


def assemble(
    settings: Settings,
    store: Store,
    connector: Connector,
    redis_connection: redis.Redis | None = None,
) -> Runtime:
    """A runtime of parts already open, reading rules and KPI files with the engines' readers."""
    return Runtime(
        settings,
        store,
        connector,
        redis_connection,
        read_rules=load_rules,
        read_kpis=kpi_book,
    )


def build(settings: Settings | None = None, *, connector: Connector | None = None) -> Runtime:
    """Resolve every part from ``settings`` (default: from the environment)."""
    settings = settings or load_settings()
    store = open_store(settings.database_url)
    return assemble(settings, store, connector or connector_for(settings))


def install(settings: Settings) -> Runtime:
    """Build the runtime from ``settings`` (checked already, see :mod:`tasuki.preflight`) and
    make it the one jobs use for the rest of this process: a long-running process's start."""
    return runtime.set_for_process(build(settings))


def current() -> Runtime:
    """The runtime of this context: the installed or activated one, else (a one-off CLI command,
    a job run by a worker started without ``tasuki worker``) one built from the environment and
    kept for the rest of this context."""
    return runtime.active() or runtime.set_for_process(build())
