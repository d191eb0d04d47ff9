"""Probes of the services a deployment uses: ``tasuki check-config --with-services``.

Each probe reaches one service and changes nothing there: the store is connected to and its
schema version read (pending migrations are listed, never applied; a SQLite file that does not
exist yet is not created), Redis is pinged, the CRM is signed in to with one cheap
authenticated call. A failure is a :class:`~tasuki.errors.Problem` at ``environment:1:1``
naming the variable to look at, the same kind :mod:`tasuki.preflight` reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import redis
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import NullPool, create_engine, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from tasuki.errors import ConfigError, CrmError, Problem
from tasuki.people_file import people_file, read_people_file, resolve_people
from tasuki.preflight import database_problems
from tasuki.providers import unusable
from tasuki.settings import Settings, masked_url
from tasuki.startup import connector_for
from tasuki.store.db import alembic_config
from tasuki.store.models import Person

CONNECT_TIMEOUT_SECONDS = 5
"""How long a probe waits for the store or Redis to answer."""


@dataclass
class Findings:
    """What the probes found: a line per service that answered, a problem per one that did not."""

    lines: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def probe_all(settings: Settings) -> Findings:
    """Probe the store, Redis and the CRM that ``settings`` name."""
    found = Findings()
    probes = [probe_redis, probe_crm]
    if not database_problems(settings.database_url):  # an unusable URL is reported already
        probes[:0] = [probe_store, probe_people]
    for probe in probes:
        line, problems = probe(settings)
        if line:
            found.lines.append(line)
        found.problems += problems
    return found


def probe_store(settings: Settings) -> tuple[str | None, list[Problem]]:
    """Connect to the store and say which migrations it lacks; apply none, create nothing."""
    url = settings.database_url
    where = masked_url(url)
    scripts = ScriptDirectory.from_config(alembic_config(url))
    everything = [Path(s.path).stem for s in reversed(list(scripts.walk_revisions()))]
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        if not Path(str(parsed.database)).exists():
            return (
                f"store: {where} does not exist yet; created with all {len(everything)} "
                "migrations at the first start or by `tasuki db upgrade`",
                [],
            )
    postgres = parsed.get_backend_name() == "postgresql"
    connect_args = {"connect_timeout": CONNECT_TIMEOUT_SECONDS} if postgres else {}
    engine = create_engine(url, poolclass=NullPool, connect_args=connect_args)
    current = None
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
        pending = [
            Path(s.path).stem
            for s in reversed(list(scripts.iterate_revisions("heads", current or "base")))
        ]
    except SQLAlchemyError as exc:
        reason = getattr(exc, "orig", None) or exc
        return None, [unusable("TASUKI_DATABASE_URL", f"store at {where} unreachable: {reason}")]
    except CommandError as exc:
        return None, [
            unusable(
                "TASUKI_DATABASE_URL",
                f"store at {where} is at {current}, a migration this tasuki does not know "
                f"(a newer version migrated it?): {exc}",
            )
        ]
    finally:
        engine.dispose()
    if not pending:
        return f"store: {where} reachable, schema at {everything[-1]}", []
    return (
        f"store: {where} reachable; {len(pending)} migration(s) pending ({', '.join(pending)}), "
        "applied at the next start or by `tasuki db upgrade`",
        [],
    )


def probe_people(settings: Settings) -> tuple[str | None, list[Problem]]:
    """The people file's persons against the people the store knows (each must name one)."""
    path = people_file(settings)
    if path is None:
        return None, []
    try:
        entries = read_people_file(path, settings.config)
    except ConfigError:
        return None, []  # its own mistakes are reported by the file check
    parsed = make_url(settings.database_url)
    if parsed.get_backend_name() == "sqlite" and not Path(str(parsed.database)).exists():
        return None, []  # no store yet: nothing to name people against (and none created)
    postgres = parsed.get_backend_name() == "postgresql"
    connect_args = {"connect_timeout": CONNECT_TIMEOUT_SECONDS} if postgres else {}
    engine = create_engine(settings.database_url, poolclass=NullPool, connect_args=connect_args)
    try:
        with engine.connect() as conn:
            people = [
                (uid, email, name)
                for uid, email, name in conn.execute(
                    select(Person.user_id, Person.email, Person.name).where(
                        Person.system == settings.config.crm
                    )
                )
            ]
    except SQLAlchemyError:
        return None, []  # the store probe says why
    finally:
        engine.dispose()
    try:
        resolve_people(entries, people)
    except ConfigError as exc:
        return None, exc.problems
    return f"people: {path.name} names {len(entries)} membership(s) of known people", []


def probe_redis(settings: Settings) -> tuple[str | None, list[Problem]]:
    """Ping ``TASUKI_REDIS_URL`` (unset: nothing to probe)."""
    if settings.redis_url is None:
        return "redis: TASUKI_REDIS_URL is not set (the demo's in-process stand-in)", []
    where = masked_url(settings.redis_url)
    client = redis.Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_timeout=CONNECT_TIMEOUT_SECONDS,
    )
    try:
        client.ping()
    except redis.RedisError as exc:
        return None, [unusable("TASUKI_REDIS_URL", f"Redis at {where} unreachable: {exc}")]
    finally:
        client.close()
    return f"redis: {where} answers", []


def probe_crm(settings: Settings) -> tuple[str | None, list[Problem]]:
    """Sign in to the configured CRM with one cheap authenticated call."""
    crm = settings.config.crm
    if crm == "local":
        return "crm: the embedded CRM (nothing to sign in to)", []
    try:
        connector = connector_for(settings)
    except ConfigError:
        return f"crm: {crm} not signed in to: its variables are missing", []
    try:
        check = getattr(connector, "check_login", None)
        if check is None:
            return f"crm: {crm} connector offers no sign-in check", []
        said: str = check()
    except CrmError as exc:
        variables = "TASUKI_SALESFORCE_*" if crm == "salesforce" else "TASUKI_HUBSPOT_*"
        return None, [unusable(variables, f"{crm} sign-in failed: {exc}")]
    finally:
        close = getattr(connector, "close", None)
        if close is not None:
            close()
    return f"crm: {crm} {said}", []
