"""``tasuki rules``: lint rules files, run rule test files, explain one handoff's verdict.

- ``tasuki rules check [PATH...]``: exit 0 when every file is valid, 1 with every problem as
  FILE:LINE:COL otherwise (no PATH: the rules named in tasuki.yaml).
- ``tasuki rules test PATH...``: run rule test files; a pass/fail table; exit 1 on any failure.
- A PATH may be ``builtin:NAME``, a file shipped with tasuki (``builtin:rules/default_tests``).
- ``tasuki rules explain --boundary IS→FS --record ID``: the latest stored handoff of that
  record across that boundary, judged rule by rule, with why.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rules.engine import RuleStatus, load_rulebook
from rules.schema import normalize_boundary
from rules.testcases import CaseResult, load_test_file, run_test_file
from tasuki.configure import CONFIG_FILE
from tasuki.errors import ConfigError
from tasuki.verdicts import Outcome

_OUTCOME_STYLE = {Outcome.PASSED: "green", Outcome.WARNED: "yellow", Outcome.FAILED: "red"}
_STATUS_STYLE = {
    RuleStatus.KEPT: "green",
    RuleStatus.BROKEN: "red",
    RuleStatus.NOT_APPLICABLE: "dim",
}


@click.group("rules")
def rules_group() -> None:
    """Handoff rules: lint, test, explain."""


def _report_problems(exc: ConfigError) -> None:
    for problem in exc.problems:
        click.echo(str(problem), err=True)
    click.echo(f"{len(exc.problems)} problem(s)", err=True)


@rules_group.command("check")
@click.argument("paths", nargs=-1, type=CONFIG_FILE)
def check_command(paths: tuple[Path, ...]) -> None:
    """Validate rules files completely; every problem as FILE:LINE:COL: message."""
    from tasuki.catalog import catalog
    from tasuki.settings import load_settings

    settings = load_settings()
    files = list(paths) or settings.rule_paths
    try:
        rulebook = load_rulebook(files, catalog(settings.config))
    except ConfigError as exc:
        _report_problems(exc)
        sys.exit(1)
    click.echo(
        f"ok: {len(rulebook.rules)} rules in {len(rulebook.rule_sets)} rule sets "
        f"({', '.join(str(f) for f in files)})"
    )


@rules_group.command("test")
@click.argument("paths", nargs=-1, required=True, type=CONFIG_FILE)
def test_command(paths: tuple[Path, ...]) -> None:
    """Run rule test files (a record, its artifacts, the expected verdict) and show a table."""
    from tasuki.calendar import BusinessCalendar
    from tasuki.catalog import catalog
    from tasuki.settings import load_settings

    settings = load_settings()
    config = settings.config
    calendar = BusinessCalendar.from_config(config.calendar)
    objects = {b.id: b.object for b in config.boundaries}
    results: list[CaseResult] = []
    problems: list[ConfigError] = []
    for path in paths:
        try:
            test_file = load_test_file(
                path, catalog(config), objects, calendar, settings.rule_paths
            )
        except ConfigError as exc:
            problems.append(exc)
            continue
        results.extend(run_test_file(test_file, calendar))
    if problems:
        _report_problems(ConfigError([p for e in problems for p in e.problems]))
        sys.exit(1)
    console = Console()
    table = Table(title="Rule tests")
    for col in ("file", "test", "result", "verdict", "why it failed"):
        table.add_column(col)
    for r in results:
        v = r.verdict
        table.add_row(
            escape(f"{Path(r.case.file).name}:{r.case.line}"),
            escape(r.case.name),
            "[green]pass[/]" if r.passed else "[red]FAIL[/]",
            f"[{_OUTCOME_STYLE[v.outcome]}]{v.outcome.value}[/] {v.score}",
            escape("; ".join(r.failures)),
        )
    console.print(table)
    failed = sum(not r.passed for r in results)
    console.print(f"{len(results) - failed} passed, {failed} failed")
    if failed:
        sys.exit(1)


@rules_group.command("explain")
@click.option("--boundary", required=True, help="The boundary, e.g. IS→FS (or IS->FS).")
@click.option("--record", "record_id", required=True, help="The CRM id of the handed-over record.")
@click.option(
    "--now",
    type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"]),
    default=None,
    help="Judge as of this UTC time (default: now).",
)
def explain_command(boundary: str, record_id: str, now: datetime | None) -> None:
    """The verdict of one stored handoff, rule by rule, with why."""
    from sqlalchemy import select

    from tasuki.handoffs import context_for
    from tasuki.runtime import build
    from tasuki.store.models import Handoff

    normal = normalize_boundary(boundary)
    if normal is None:
        raise click.BadParameter(f"{boundary!r}; write e.g. IS→FS", param_hint="--boundary")
    at = now.replace(tzinfo=UTC) if now else datetime.now(UTC)
    rt = build()
    with rt.store.session() as session:
        handoff = session.scalars(
            select(Handoff)
            .where(
                Handoff.system == rt.system,
                Handoff.boundary == normal,
                Handoff.record_id == record_id,
            )
            .order_by(Handoff.handed_at.desc())
            .limit(1)
        ).first()
        if handoff is None:
            click.echo(f"no handoff of record {record_id} across {normal} in the store", err=True)
            sys.exit(1)
        context = context_for(session, rt.settings.config, handoff, at)
    rulebook, calendar = rt.rulebook, rt.calendar
    verdict = rulebook.evaluate(context, calendar)
    console = Console()
    style = _OUTCOME_STYLE[verdict.outcome]
    console.print(
        f"[bold]{normal}[/] {context.object} {escape(record_id)}, handed over "
        f"{handoff.handed_at.astimezone(calendar.tz):%Y-%m-%d %H:%M} "
        f"({escape(str(context.sender_id))} → {escape(str(context.receiver_id))}), "
        f"judged as of {at.astimezone(calendar.tz):%Y-%m-%d %H:%M}: "
        f"[{style}]{verdict.outcome.value}[/], score {verdict.score}"
    )
    table = Table()
    for col in ("rule", "severity", "result", "why", "message"):
        table.add_column(col)
    for r in rulebook.explain(context, calendar):
        table.add_row(
            escape(r.rule.id),
            r.rule.severity.value,
            f"[{_STATUS_STYLE[r.status]}]{r.status.value}[/]",
            escape(r.reason),
            escape(r.rule.message) if r.status is RuleStatus.BROKEN else "",
        )
    console.print(table)
