"""Configuration commands: ``tasuki check-config`` and ``tasuki init``, and file arguments.

- ``tasuki check-config [--with-services]``: every file and the environment in one pass
  (:mod:`tasuki.preflight`), every problem as ``FILE:LINE:COL: message``, exit 2 on any; no
  database needed. ``--with-services`` also reaches the store (pending migrations listed, not
  applied), Redis and the CRM sign-in (:mod:`tasuki.probes`).
- ``tasuki init [DIR]``: a starting ``tasuki.yaml`` with the rules, rule tests, KPI and
  recordings files beside it, copies of the shipped defaults, for the admin's own git repo;
  refuses to overwrite anything.
- :data:`CONFIG_FILE`: the click type of every file argument, so ``builtin:rules/default`` works
  wherever a path does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tasuki.errors import ConfigError
from tasuki.preflight import CHECK_CONFIG, preflight
from tasuki.probes import probe_all
from tasuki.settings import builtin_path, resolve_ref

if TYPE_CHECKING:
    _PathParam = click.ParamType[Path, str | Path]
else:  # click before 8.2 has no type parameters
    _PathParam = click.ParamType


class ConfigFile(_PathParam):
    """A file argument: a path, or ``builtin:NAME`` for a file shipped in ``tasuki/defaults``
    (``builtin:rules/default`` is ``tasuki/defaults/rules/default.yaml``)."""

    name = "file"

    def convert(
        self, value: str | Path, param: click.Parameter | None, ctx: click.Context | None
    ) -> Path:
        """The path ``value`` names; a ``builtin:`` file that is not shipped is refused."""
        if isinstance(value, Path):
            return value
        text = str(value)
        path = resolve_ref(text, Path.cwd())
        if text.startswith("builtin:") and not path.is_file():
            shipped = sorted(
                str(p.relative_to(builtin_path(""))).removesuffix(".yaml")
                for p in builtin_path("").rglob("*.yaml")
            )
            self.fail(f"{text}: no such shipped file; shipped: {', '.join(shipped)}", param, ctx)
        return path


CONFIG_FILE = ConfigFile()


@click.command("check-config")
@click.option(
    "--with-services",
    is_flag=True,
    help="Also reach the store (migrations pending, none applied), Redis and the CRM sign-in.",
)
def check_config_command(with_services: bool) -> None:
    """Validate tasuki.yaml (TASUKI_CONFIG), every rules, KPI and recordings file, and the
    variables the configured CRM and receivers need, in one pass; exit 2 with every problem as
    FILE:LINE:COL. Needs no database."""
    report = preflight(CHECK_CONFIG)
    problems = list(report.problems)
    for note in report.notes:
        click.echo(f"note: {note}")
    if with_services and report.settings is None:
        click.echo("note: services not reached: tasuki.yaml must be usable first")
    elif with_services and report.settings is not None:
        found = probe_all(report.settings)
        for line in found.lines:
            click.echo(line)
        problems += found.problems
    if problems:
        raise ConfigError(problems)
    click.echo(f"ok: {len(report.files)} files checked ({', '.join(map(str, report.files))})")


@dataclass(frozen=True)
class Starter:
    """One file ``tasuki init`` writes: where, from which shipped file."""

    target: str
    shipped: str


STARTER_FILES = (
    Starter("tasuki.yaml", "tasuki.yaml"),
    Starter("rules/default.yaml", "rules/default.yaml"),
    Starter("rules/default_tests.yaml", "rules/default_tests.yaml"),
    Starter("kpis/default.yaml", "kpis/default.yaml"),
    Starter("recordings.yaml", "recordings.yaml"),
    Starter("notifications.yaml", "notifications.yaml"),
)
"""What ``tasuki init`` writes, relative to its folder."""

_HEADER = """\
# tasuki.yaml, written by `tasuki init` from the defaults shipped with tasuki. Keep this folder
# in git, point TASUKI_CONFIG at this file and run `tasuki check-config` after each change. Every
# value here is validated at start; a mistake is reported as FILE:LINE:COL and the process
# refuses to start. The rules, KPI and recordings files beside it are yours to change too.
"""

_OWN_FILES = {
    "rules: [builtin:rules/default.yaml]": "rules: [rules/default.yaml]",
    "kpis: [builtin:kpis/default.yaml]": "kpis: [kpis/default.yaml]",
    "notifications: [builtin:notifications.yaml]": "notifications: [notifications.yaml]",
}


def starter_text(starter: Starter) -> str:
    """The text ``tasuki init`` writes for ``starter``: the shipped file, and for tasuki.yaml its
    own header and its rules and KPI lists pointing at the copies."""
    text = builtin_path(starter.shipped).read_text(encoding="utf-8")
    if starter.target != "tasuki.yaml":
        return text
    _, body = text.split("\n\n", 1)  # the shipped header speaks of the embedded default
    for shipped, own in _OWN_FILES.items():
        if shipped not in body:
            raise AssertionError(f"the shipped tasuki.yaml no longer says {shipped!r}")
        body = body.replace(shipped, own)
    return f"{_HEADER}\n{body}"


def write_starter(folder: Path) -> list[Path]:
    """Write :data:`STARTER_FILES` into ``folder``; nothing at all when any of them exists
    (:class:`click.ClickException` naming them)."""
    targets = [folder / s.target for s in STARTER_FILES]
    present = [t for t in targets if t.exists()]
    if present:
        raise click.ClickException(
            f"not overwriting {', '.join(map(str, present))}: move them away or pick another folder"
        )
    for starter, target in zip(STARTER_FILES, targets, strict=True):
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(starter_text(starter), encoding="utf-8")
    return targets


@click.command("init")
@click.argument(
    "folder", default=".", type=click.Path(file_okay=False, path_type=Path), required=False
)
def init_command(folder: Path) -> None:
    """Write a starting tasuki.yaml, rules, rule tests, KPI and recordings files into FOLDER
    (default: here), copies of the shipped defaults for your own repo; overwrites nothing."""
    written = write_starter(folder)
    for path in written:
        click.echo(f"wrote {path}")
    config = (folder / "tasuki.yaml").resolve()
    click.echo(
        f"next: export TASUKI_CONFIG={config}; tasuki check-config; "
        f"tasuki rules test {folder / 'rules' / 'default_tests.yaml'}"
    )
