"""``tasuki rules``: lint rules files, run rule test files, explain one handoff's verdict.

- ``tasuki rules check [PATH...]``: exit 0 when every file is valid, 1 with every problem as
  FILE:LINE:COL otherwise (no PATH: the rules named in tasuki.yaml).
- ``tasuki rules test PATH...``: run rule test files; a pass/fail table; exit 1 on any failure.
- A PATH may be ``builtin:NAME``, a file shipped with tasuki (``builtin:rules/default_tests``).
- ``tasuki rules explain --boundary IS→FS --record ID``: the latest stored handoff of that
  record across that boundary: its stored verdict and the rule set that judged it, and rule by
  rule what the files give now, with why (``--format table|csv|json``).
- ``tasuki rules apply [--dry-run]``: every stored handoff judged under the files as they are
  now; what changes (by rule, by outcome), then stored and written back to the CRM.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import select, tuple_

import worker
from rules.engine import RuleStatus, load_rulebook
from rules.schema import normalize_boundary
from rules.testcases import CaseResult, load_test_file, run_test_file
from tasuki import rulechanges, startup
from tasuki.calendar import BusinessCalendar
from tasuki.catalog import catalog
from tasuki.configure import CONFIG_FILE
from tasuki.display import FORMATS, local_time, named, render
from tasuki.errors import ConfigError
from tasuki.handoffs import context_for
from tasuki.settings import load_settings
from tasuki.store.models import Handoff, Person, Record, utcnow
from tasuki.verdicts import Outcome

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

_OUTCOME_STYLE = {Outcome.PASSED: "green", Outcome.WARNED: "yellow", Outcome.FAILED: "red"}
_STATUS_STYLE = {
    RuleStatus.KEPT: "green",
    RuleStatus.BROKEN: "red",
    RuleStatus.NOT_APPLICABLE: "dim",
}


@click.group("rules")
def rules_group() -> None:
    """Handoff rules: lint, test, explain, apply a change to the stored verdicts."""


def _report_problems(exc: ConfigError) -> None:
    for problem in exc.problems:
        click.echo(str(problem), err=True)
    click.echo(f"{len(exc.problems)} problem(s)", err=True)


@rules_group.command("check")
@click.argument("paths", nargs=-1, type=CONFIG_FILE)
def check_command(paths: tuple[Path, ...]) -> None:
    """Validate rules files completely; every problem as FILE:LINE:COL: message."""
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


_FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="How to print the listing.",
)


def _people(session: Session, system: str, ids: set[str | None]) -> dict[str, str]:
    """Display names of CRM users: ``Name [id]``."""
    wanted = {i for i in ids if i}
    found = {
        p.user_id: p.name
        for p in session.scalars(
            select(Person).where(Person.system == system, Person.user_id.in_(wanted))
        )
    }
    return {i: named(found.get(i), i) for i in wanted}


def _record_names(session: Session, system: str, keys: set[tuple[str, str]]) -> dict[str, str]:
    """Display names of records by id: ``Name [id]`` (the logical ``name`` or ``company``)."""
    out: dict[str, str] = {}
    keys_list = sorted(keys)
    for start in range(0, len(keys_list), 500):
        chunk = keys_list[start : start + 500]
        for r in session.scalars(
            select(Record).where(
                Record.system == system, tuple_(Record.object, Record.record_id).in_(chunk)
            )
        ):
            name = r.fields.get("name") or r.fields.get("company")
            out[r.record_id] = named(str(name) if name else None, r.record_id)
    return {rid: out.get(rid, rid) for _, rid in keys}


@rules_group.command("explain")
@click.option("--boundary", required=True, help="The boundary, e.g. IS→FS (or IS->FS).")
@click.option("--record", "record_id", required=True, help="The CRM id of the handed-over record.")
@click.option(
    "--now",
    type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"]),
    default=None,
    help="Judge as of this time, in the company's timezone (default: now).",
)
@_FORMAT
def explain_command(boundary: str, record_id: str, now: datetime | None, fmt: str) -> None:
    """One stored handoff: its stored verdict with the rule set that judged it, and rule by
    rule what the rules files give now (with why)."""
    normal = normalize_boundary(boundary)
    if normal is None:
        raise click.BadParameter(f"{boundary!r}; write e.g. IS→FS", param_hint="--boundary")
    rt = startup.current()
    tz = rt.calendar.tz
    at = now.replace(tzinfo=tz) if now else datetime.now(UTC)
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
        people = _people(session, rt.system, {handoff.sender_id, handoff.receiver_id})
        record = _record_names(session, rt.system, {(handoff.object, record_id)})[record_id]
        stored = handoff.verdict
        stored_view = None
        if stored is not None:
            stored_view = {
                "outcome": stored.outcome,
                "score": stored.score,
                "violations": [v.rule_id for v in stored.violations],
                "evaluated_at": local_time(stored.evaluated_at, tz),
                "rule_set": stored.fingerprint or None,
            }
    rulebook, calendar = rt.rulebook, rt.calendar
    fingerprint = rt.rules_fingerprint
    verdict = rulebook.evaluate(context, calendar)
    rows = [
        {
            "rule": r.rule.id,
            "severity": r.rule.severity.value,
            "result": r.status.value,
            "why": r.reason,
            "message": r.rule.message if r.status is RuleStatus.BROKEN else "",
        }
        for r in rulebook.explain(context, calendar)
    ]
    columns = ["rule", "severity", "result", "why", "message"]
    changed = stored is None or stored.fingerprint != fingerprint
    if fmt == "json":
        click.echo(
            json.dumps(
                {
                    "boundary": normal,
                    "object": context.object,
                    "record": record,
                    "handed_at": local_time(handoff.handed_at, tz),
                    "sender": people.get(handoff.sender_id or ""),
                    "receiver": people.get(handoff.receiver_id or ""),
                    "stored": stored_view,
                    "rules_changed_since": changed,
                    "now": {
                        "as_of": local_time(at, tz),
                        "rule_set": fingerprint,
                        "outcome": verdict.outcome.value,
                        "score": verdict.score,
                    },
                    "rules": rows,
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    if fmt == "csv":
        click.echo(render(rows, columns, fmt), nl=False)
        return
    console = Console(highlight=False)
    sender = people.get(handoff.sender_id or "", "–")
    receiver = people.get(handoff.receiver_id or "", "–")
    console.print(
        f"[bold]{normal}[/] {context.object} {escape(record)}, handed over "
        f"{local_time(handoff.handed_at, tz)} ({escape(sender)} → {escape(receiver)})"
    )
    if stored is None:
        console.print("Stored verdict: none yet")
    else:
        style = _OUTCOME_STYLE.get(Outcome(stored.outcome), "")
        console.print(
            f"Stored verdict: [{style}]{stored.outcome}[/], score {stored.score}, judged "
            f"{local_time(stored.evaluated_at, tz)} by rule set "
            f"{stored.fingerprint[:12] or '(not recorded)'}"
        )
    style = _OUTCOME_STYLE[verdict.outcome]
    if changed:
        console.print(
            f"The rules files changed since (rule set now {fingerprint[:12]}); as of "
            f"{local_time(at, tz)} they would give: "
            f"[{style}]{verdict.outcome.value}[/], score {verdict.score}"
        )
    else:
        console.print(
            f"Rules files unchanged since (rule set {fingerprint[:12]}); as of "
            f"{local_time(at, tz)}: [{style}]{verdict.outcome.value}[/], score {verdict.score}"
        )
    table = Table()
    for col in columns:
        table.add_column(col)
    for row in rows:
        status = RuleStatus(row["result"])
        table.add_row(
            escape(row["rule"]),
            row["severity"],
            f"[{_STATUS_STYLE[status]}]{row['result']}[/]",
            escape(row["why"]),
            escape(row["message"]),
        )
    console.print(table)


@rules_group.command("apply")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Say which stored verdicts the current rules files change; write nothing, call nobody.",
)
@click.option("--show", default=20, show_default=True, help="Changed handoffs listed one by one.")
def apply_command(dry_run: bool, show: int) -> None:
    """Judge every stored handoff under the rules files as they are now; print what changes (N
    verdicts, by rule, old → new), then store the new verdicts and write them back to the CRM."""
    rt = startup.current()
    tz = rt.calendar.tz
    now = utcnow()
    err = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("Judging stored handoffs", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        judge = rulechanges.preview if dry_run else rulechanges.apply
        change = judge(rt, now, progress)
    console = Console(highlight=False)
    judged_by = ", ".join(
        f"{(k[:12] or '(not recorded)')} {n}" for k, n in change.judged_by.most_common()
    )
    console.print(
        f"Rule set now: {change.fingerprint[:12]} "
        f"({', '.join(str(p) for p in rt.settings.rule_paths)})"
    )
    console.print(
        f"Judged {change.judged} stored handoff(s) as of {local_time(now, tz)}; "
        f"their stored verdicts came from rule set(s): {judged_by or '–'}"
    )
    verb = "would change" if dry_run else "changed"
    console.print(f"[bold]{len(change.flips)} verdict(s) {verb}[/]")
    if change.flips:
        by_rule = Table(title="By rule")
        for col in ("rule", "old → new", "handoffs"):
            by_rule.add_column(col, justify="right" if col == "handoffs" else "left")
        for rule_id, what, n in change.by_rule:
            by_rule.add_row(escape(rule_id), what, str(n))
        console.print(by_rule)
        by_outcome = Table(title="By outcome")
        for col in ("boundary", "old → new", "handoffs"):
            by_outcome.add_column(col, justify="right" if col == "handoffs" else "left")
        for boundary, old, new, n in change.by_outcome:
            by_outcome.add_row(boundary, f"{old} → {new}", str(n))
        console.print(by_outcome)
        if show:
            with rt.store.session() as session:
                names = _record_names(
                    session, rt.system, {(f.object, f.record_id) for f in change.flips[:show]}
                )
            listed = Table(title=f"Changed handoffs (first {min(show, len(change.flips))})")
            for col in ("boundary", "record", "handed over", "old → new", "rules"):
                listed.add_column(col)
            for f in change.flips[:show]:
                listed.add_row(
                    f.boundary,
                    escape(names[f.record_id]),
                    local_time(f.handed_at, tz),
                    f"{f.old_outcome or '(none)'} {f.old_score if f.old_score is not None else ''}"
                    f" → {f.new_outcome} {f.new_score}",
                    escape("; ".join(f"{r}: {w}" for r, w in f.rules)),
                )
            console.print(listed)
    if dry_run:
        console.print(
            "Dry run: nothing stored, nothing written to the CRM. "
            f"{rulechanges.written_records(rt, change)} CRM record(s) would get new verdict "
            "fields (history is not written: `tasuki sync --write-history`); `tasuki rules "
            "apply` stores and writes them."
        )
        return
    figures = worker.write_back()
    console.print(
        f"Stored. Written back to the CRM: {figures.get('records', 0)} record(s), "
        f"{figures.get('fields', 0)} field(s) in {figures.get('calls', 0)} call(s)"
        + (f", {figures['rejected']} rejected" if figures.get("rejected") else "")
        + ("" if "records" in figures else " (a write-back pass already running takes these on)")
    )
