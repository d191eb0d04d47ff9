"""``tasuki users`` (who may sign in to the console) and ``tasuki report`` (a static snapshot)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from tasuki.console.accounts import (
    Role,
    add_user,
    list_users,
    login_link_token,
    remove_user,
    set_password,
)
from tasuki.console.periods import UnknownPeriod
from tasuki.console.report import write_report
from tasuki.settings import load_settings
from tasuki.store.db import Store, open_store


def _store() -> Store:
    return open_store(load_settings().database_url)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    value: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


@click.group("users")
def users_group() -> None:
    """Console users: local accounts (scrypt-hashed passwords) and OpenID Connect users."""


@users_group.command("add")
@click.argument("username")
@click.option(
    "--role",
    type=click.Choice([r.value for r in Role]),
    default=Role.VIEWER.value,
    show_default=True,
    help="viewer reads everything; ops also runs operations.",
)
@click.option("--email", default="", help="Their address at the identity provider.")
@click.option("--oidc", is_flag=True, help="No password: they sign in through OpenID Connect.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def users_add(username: str, role: str, email: str, oidc: bool, password_stdin: bool) -> None:
    """Add a console user (asks for the password unless --oidc)."""
    password = None if oidc else _password(password_stdin)
    store = _store()
    user = add_user(store, username, Role(role), password, email)
    how = f"OpenID Connect as {user.email}" if oidc else "a password"
    click.echo(f"Added {user.username} ({user.role}), signing in with {how}.")


@users_group.command("password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def users_password(username: str, password_stdin: bool) -> None:
    """Set a new password for a local account."""
    store = _store()
    set_password(store, username, _password(password_stdin))
    click.echo(f"New password set for {username}.")


@users_group.command("remove")
@click.argument("username")
def users_remove(username: str) -> None:
    """Disable a console user: they can no longer sign in, their session ends."""
    store = _store()
    remove_user(store, username)
    click.echo(f"Disabled {username}.")


@users_group.command("list")
def users_list() -> None:
    """Every console user with their role and last sign-in."""
    store = _store()
    for u in list_users(store):
        kind = "password" if u.password_hash else "oidc"
        last = u.last_login_at.isoformat(timespec="minutes") if u.last_login_at else "never"
        state = " (disabled)" if u.disabled else ""
        click.echo(f"{u.username}\t{u.role}\t{kind}\t{u.email}\tlast sign-in {last}{state}")


@users_group.command("link")
@click.argument("username")
def users_link(username: str) -> None:
    """Print a one-time sign-in link for USERNAME (valid 15 minutes)."""
    settings = load_settings()
    store = open_store(settings.database_url)
    base = settings.public_url or "http://127.0.0.1:8080"
    click.echo(f"{base}/console/login/link/{login_link_token(store, username)}")


@click.command("report")
@click.option("--period", default=None, help="2026-11, FY2026-Q3 or FY2026; default: last closed.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--lang", type=click.Choice(["ja", "en"]), default="ja", show_default=True)
def report_command(period: str | None, output: Path, lang: str) -> None:
    """Write a self-contained HTML snapshot of the overview, boundaries and people pages."""
    settings = load_settings()
    try:
        written = write_report(settings, output, period=period, language=lang)
    except UnknownPeriod as exc:
        raise click.BadParameter(str(exc), param_hint="--period") from exc
    click.echo(f"Report of {written}: {output}")
