"""The ``tasuki`` command. Each feature keeps its own subcommands and registers them here."""

from __future__ import annotations

import contextvars
import sys

import click

from rules.cli import rules_group
from tasuki.alarms.cli import alarms_group
from tasuki.commands import register_core
from tasuki.configure import check_config_command, init_command
from tasuki.console.cli import report_command, users_group
from tasuki.errors import ConfigError, TasukiError
from tasuki.kpis.cli import kpi_group
from tasuki.notify.cli import notify_group
from tasuki.ops.cli import register_ops
from tasuki.recordings.cli import artifacts_group, handoff_group
from tasuki.up import up_command
from webhooks.serve import serve_command


class _Group(click.Group):
    """Turns tasuki's own errors into a clear message and a non-zero exit, without a traceback.

    Each command runs in a context of its own: the runtime it sets (:func:`tasuki.startup.current`
    builds one from the environment at first use) is the command's, and ends with it."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return contextvars.copy_context().run(super().invoke, ctx)
        except ConfigError as exc:
            click.echo(str(exc), err=True)
            click.echo(f"{len(exc.problems)} problem(s); refusing to start.", err=True)
            sys.exit(2)
        except TasukiError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)


@click.group(cls=_Group)
@click.version_option(package_name="tasuki")
def main() -> None:
    """tasuki: handoff rules, cross-department KPIs and CRM write-back for The Model."""


def _register() -> None:
    """Attach each feature's command group (one line per feature)."""
    register_core(main)
    main.add_command(check_config_command)
    main.add_command(init_command)
    main.add_command(rules_group)
    main.add_command(artifacts_group)
    main.add_command(handoff_group)
    main.add_command(serve_command)
    main.add_command(kpi_group)
    main.add_command(alarms_group)
    main.add_command(notify_group)
    register_ops(main)  # runs, jobs
    main.add_command(up_command)
    main.add_command(users_group)  # console users
    main.add_command(report_command)


_register()
