"""Preflight: every configuration file and the environment checked in one pass, before a start.

:func:`checked_settings` is the first thing ``tasuki serve``, ``worker``, ``scheduler`` and
``up`` do, and what ``tasuki check-config`` reports on. It reads the environment once
(:func:`~tasuki.settings.load_settings`), validates ``tasuki.yaml`` and every file it leads to
(:data:`FILE_CHECKS`: rules, KPIs, recordings, notifications, people, alarms; a later kind of
file is one more entry there),
then what the process needs from the environment (:class:`Needs`: the store's URL, Redis, the
configured CRM's sign-in, the secrets of the configured webhook receivers). Every problem, each
as ``FILE:LINE:COL: message``, is raised in one :class:`~tasuki.errors.ConfigError`. Nothing
here opens the store, Redis or a CRM (:mod:`tasuki.probes` does, for ``--with-services``).

One mistake does not hide another: when ``tasuki.yaml`` is wrong in a section the other files
do not depend on (calendar, schedules, writeback …) or has an unknown key, the other files are
still checked against it, that section at its default; only when its CRM, objects, departments,
related lookups or boundaries are wrong are the rules and KPI files read for their YAML alone.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from tasuki import kpis
from tasuki.alarms.schema import alarm_book
from tasuki.alarms.schema import config_path as alarms_path
from tasuki.errors import ConfigError, Problem
from tasuki.notify.schema import load_notification_book
from tasuki.people_file import people_file, read_people_file
from tasuki.providers import (
    RECEIVER_SECRETS,
    HubSpotSettings,
    SalesforceSettings,
    missing,
    unusable,
)
from tasuki.recordings.config import config_path as recordings_path
from tasuki.recordings.config import load_recordings_config
from tasuki.settings import (
    Config,
    Settings,
    builtin_path,
    check_config,
    config_location,
    load_settings,
    masked_url,
    parse_config,
)
from tasuki.startup import load_rules
from tasuki.yamlsource import Located, load


@dataclass(frozen=True)
class Needs:
    """What a process needs from the environment besides valid files."""

    process: str
    """The command, as messages name it (``tasuki worker``)."""
    crm: bool = False
    """The configured CRM's sign-in (the process builds a connector)."""
    receivers: bool = False
    """The secrets of every webhook receiver in use."""
    redis: bool = False
    """``TASUKI_REDIS_URL`` (the in-process stand-in is for the demo only)."""


SERVE = Needs("tasuki serve", crm=True, receivers=True, redis=True)
WORKER = Needs("tasuki worker", crm=True, redis=True)
SCHEDULER = Needs("tasuki scheduler", redis=True)
UP = Needs("tasuki up", crm=True, receivers=True, redis=True)
"""``tasuki up`` runs all three, so it needs what each does."""
DEMO = Needs("tasuki demo")
"""The demo brings its own CRM, queue and secrets."""
CHECK_CONFIG = Needs("tasuki check-config", crm=True, receivers=True)
"""A deployment's whole environment, Redis aside (unset it is noted: the demo runs without)."""


@dataclass(frozen=True)
class FileCheck:
    """One kind of file ``tasuki.yaml`` leads to, and how it is validated."""

    kind: str
    """What the files are, as the report names them (``rules``)."""
    files: Callable[[Settings], Sequence[Path]]
    """The files of this kind the settings lead to."""
    validate: Callable[[Settings], object]
    """Reads and validates them all; raises ConfigError with every problem."""
    named_by: str | None = None
    """The ``tasuki.yaml`` key listing the files: when it is wrong they are not looked for."""
    against_config: bool = True
    """Validated against ``tasuki.yaml``'s objects and boundaries: when those are wrong, the
    files are read for their YAML only."""


def _validate_rules(settings: Settings) -> object:
    return load_rules(settings)


def _validate_kpis(settings: Settings) -> object:
    return kpis.book(settings)


def _recordings_files(settings: Settings) -> list[Path]:
    return [recordings_path(settings)]


def _validate_recordings(settings: Settings) -> object:
    return load_recordings_config(settings)


def _validate_notifications(settings: Settings) -> object:
    return load_notification_book(settings.notification_paths, settings.config)


def _people_files(settings: Settings) -> list[Path]:
    path = people_file(settings)
    return [] if path is None else [path]


def _validate_people(settings: Settings) -> object:
    path = people_file(settings)
    return [] if path is None else read_people_file(path, settings.config)


def _alarm_files(settings: Settings) -> list[Path]:
    return [alarms_path(settings)]


def _validate_alarms(settings: Settings) -> object:
    try:
        kpis.book(settings)
    except ConfigError:
        return None  # the pairs name KPIs: checked once the KPI files' own problems are fixed
    return alarm_book(settings)


FILE_CHECKS: list[FileCheck] = [
    FileCheck("rules", lambda s: s.rule_paths, _validate_rules, named_by="rules"),
    FileCheck("kpis", lambda s: s.kpi_paths, _validate_kpis, named_by="kpis"),
    FileCheck("recordings", _recordings_files, _validate_recordings, against_config=False),
    FileCheck(
        "notifications",
        lambda s: s.notification_paths,
        _validate_notifications,
        named_by="notifications",
    ),
    FileCheck("people", _people_files, _validate_people),
    FileCheck("alarms", _alarm_files, _validate_alarms),
]
"""Every kind of file besides ``tasuki.yaml``, checked in this order."""


@dataclass
class Report:
    """What a preflight found."""

    settings: Settings | None
    """The settings, when ``tasuki.yaml`` could be used at all (even with problems)."""
    problems: list[Problem] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    """Every file read, ``tasuki.yaml`` first."""
    notes: list[str] = field(default_factory=list)
    """What is worth knowing but wrong in nothing."""


def preflight(needs: Needs, env: Mapping[str, str] | None = None) -> Report:
    """Check every file and what ``needs`` asks of the environment; every problem collected."""
    env = os.environ if env is None else env
    config_path = config_location(env)
    report = Report(settings=None, files=[config_path])
    try:
        doc = load(config_path)
    except ConfigError as exc:
        report.problems += exc.problems
        report.notes.append("no other file was checked: tasuki.yaml itself could not be read")
        return report
    checked = check_config(doc)
    report.problems += checked.problems
    config, partial = checked.usable, checked.usable is None
    if config is None:
        config = _stand_in(doc)
        report.notes.append(
            "the rules and KPI files were read for their YAML only: they are checked against "
            "tasuki.yaml's CRM, objects and boundaries, which have problems"
        )
    try:
        settings = load_settings(env, config=config)
    except ConfigError as exc:  # a variable that makes no settings at all
        report.problems += exc.problems
        # The files need only the config and its place; the environment is not checked further.
        only_config = {k: v for k, v in env.items() if k == "TASUKI_CONFIG"}
        settings, env_checked = load_settings(only_config, config=config), False
    else:
        env_checked = True
    for check in FILE_CHECKS:
        if check.named_by is not None and check.named_by in checked.defaulted:
            continue  # the list itself is wrong: reported in tasuki.yaml, nothing to look for
        files = list(check.files(settings))
        report.files += files
        report.problems += _file_problems(check, settings, files, yaml_only=partial)
    if env_checked:
        # Without a usable config the CRM and receivers in use are unknown.
        wanted = replace(needs, crm=False, receivers=False) if partial else needs
        report.problems += environment_problems(settings, wanted)
        report.notes += _environment_notes(settings)
        report.settings = None if partial else settings
    return report


def checked_settings(needs: Needs, env: Mapping[str, str] | None = None) -> Settings:
    """The settings, once every file and the environment passed :func:`preflight`; else one
    :class:`ConfigError` with every problem (the CLI prints them and exits 2)."""
    report = preflight(needs, env)
    if report.problems:
        raise ConfigError(report.problems)
    assert report.settings is not None
    return report.settings


def _stand_in(doc: Located) -> Config:
    """The shipped config with the rules and KPI lists of ``doc`` (when they are lists of
    text): only to find the files to read for their YAML."""
    shipped = parse_config(load(builtin_path("tasuki.yaml")))
    data: Any = doc.data if isinstance(doc.data, dict) else {}
    lists = {
        key: data[key]
        for key in ("rules", "kpis")
        if isinstance(data.get(key), list) and all(isinstance(x, str) for x in data[key])
    }
    return shipped.model_copy(update=lists)


def _file_problems(
    check: FileCheck, settings: Settings, files: list[Path], *, yaml_only: bool
) -> list[Problem]:
    if yaml_only and check.against_config:
        problems = []
        for path in files:
            try:
                load(path)
            except ConfigError as exc:
                problems += exc.problems
        return problems
    try:
        check.validate(settings)
    except ConfigError as exc:
        return exc.problems
    return []


def environment_problems(settings: Settings, needs: Needs) -> list[Problem]:
    """What the environment lacks for ``needs``: each a problem at ``environment:1:1`` naming
    the variable."""
    problems = database_problems(settings.database_url)
    if needs.redis and not settings.redis_url:
        problems.append(missing("TASUKI_REDIS_URL", f"{needs.process} needs Redis"))
    if needs.crm:
        problems += crm_problems(settings)
    if needs.receivers:
        problems += receiver_problems(settings)
    return problems


def database_problems(url: str) -> list[Problem]:
    """A store URL tasuki cannot use (not a URL, not SQLite or PostgreSQL, no driver)."""
    shown = masked_url(url)
    try:
        parsed = make_url(url)
        dialect = parsed.get_dialect()
        dialect.import_dbapi()
    except ArgumentError:
        return [unusable("TASUKI_DATABASE_URL", f"{shown} is not a database URL")]
    except NoSuchModuleError:
        return [unusable("TASUKI_DATABASE_URL", f"{shown}: not SQLite or PostgreSQL")]
    except ImportError as exc:
        return [unusable("TASUKI_DATABASE_URL", f"{shown}: its driver is not installed ({exc})")]
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        return [unusable("TASUKI_DATABASE_URL", f"{shown}: tasuki stores on SQLite or PostgreSQL")]
    return []


def crm_problems(settings: Settings) -> list[Problem]:
    """What stops the configured CRM's sign-in (nothing for the embedded CRM)."""
    crm = settings.config.crm
    if crm == "salesforce":
        return settings.salesforce.login_problems()
    if crm == "hubspot":
        return settings.hubspot.login_problems()
    return []


def receiver_problems(settings: Settings) -> list[Problem]:
    """The secrets and URLs of the receivers in use: ``/webhooks/local`` always, the CRM's own,
    and each one ``receivers:`` lists."""
    crm = settings.config.crm
    needed: list[tuple[str, bool, str]] = [
        (
            "TASUKI_WEBHOOK_SECRET",
            settings.webhook_secret is not None,
            "/webhooks/local checks signatures with it",
        )
    ]
    if crm == "salesforce":
        needed.append(
            (
                SalesforceSettings.variable("org_id"),
                settings.salesforce.org_id is not None,
                "crm is salesforce: Outbound Messages are taken from this org only",
            )
        )
    if crm == "hubspot":
        needed += [
            (
                HubSpotSettings.variable("client_secret"),
                settings.hubspot.client_secret is not None,
                "crm is hubspot: webhook signatures are checked with it",
            ),
            (
                "TASUKI_PUBLIC_URL",
                settings.public_url is not None,
                "crm is hubspot: its signatures cover the URL HubSpot calls",
            ),
        ]
    for receiver in settings.config.receivers:
        name = RECEIVER_SECRETS[receiver]
        needed.append((name, settings.secret(name) is not None, f"receivers lists {receiver}"))
    return [missing(variable, why) for variable, present, why in needed if not present]


def _environment_notes(settings: Settings) -> list[str]:
    if settings.redis_url is None:
        return [
            "TASUKI_REDIS_URL is not set: fine for `tasuki demo`; serve, worker, scheduler and "
            "up refuse to start without it"
        ]
    return []
