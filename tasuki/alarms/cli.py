"""``tasuki alarms``: the partial-optimisation alarms of a period, as a table, CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tasuki import alarms, kpis
from tasuki.alarms.alarm import Alarm
from tasuki.settings import load_settings
from tasuki.store.db import open_store

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
"""A CSV cell starting with one of these is a formula to a spreadsheet: CRM names are guarded."""


def csv_text(value: str) -> str:
    """``value`` safe in a spreadsheet: a leading formula character is quoted away with ``'``."""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def _local(at: datetime, tz: ZoneInfo) -> str:
    return at.astimezone(tz).isoformat(timespec="seconds")


CSV_COLUMNS = (
    "period",
    "previous_period",
    "department",
    "subject_kind",
    "subject",
    "alarm",
    "own_kpi",
    "own_previous",
    "own_current",
    "own_change",
    "own_relative_change",
    "own_threshold",
    "neighbour_kpi",
    "neighbour_previous",
    "neighbour_current",
    "neighbour_change",
    "neighbour_relative_change",
    "neighbour_threshold",
    "explanation",
    "raised_at",
)


def as_csv(alarms: Sequence[Alarm], tz: ZoneInfo) -> str:
    """The alarms as CSV (one row each, both figures and changes; names, not ids), text guarded
    against formula injection, times in the company's timezone with their offset."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for a in alarms:
        row: list[Any] = [a.period, a.previous_period, a.department, a.subject_kind]
        row += [csv_text(a.subject_name), csv_text(a.label)]
        for c in (a.own, a.neighbour):
            row += [csv_text(c.label), c.previous, c.current, c.absolute]
            row += ["" if c.relative is None else c.relative, c.threshold]
        row += [csv_text(a.explanation), _local(a.raised_at, tz)]
        writer.writerow(row)
    return out.getvalue()


def as_json(alarms: Sequence[Alarm], tz: ZoneInfo) -> str:
    """The alarms as a JSON list (:meth:`Alarm.as_dict`, times in the company's timezone)."""
    return json.dumps(
        [{**a.as_dict(), "raised_at": _local(a.raised_at, tz)} for a in alarms],
        ensure_ascii=False,
        indent=2,
    )


def as_table(alarms: Sequence[Alarm], period: str) -> Table:
    """The alarms as a table for people (CRM text escaped from rich's markup)."""
    before = alarms[0].previous_period if alarms else "the period before"
    table = Table(title=f"Partial-optimisation alarms, {period} against {before}")
    for col in ("dept", "who", "alarm", "own KPI (better)", "neighbour KPI (worse)"):
        table.add_column(col)
    for a in alarms:
        who = a.subject_name if a.subject_kind != "team" else f"team {a.subject_name}"
        table.add_row(
            a.department,
            escape(who),
            escape(a.label),
            escape(a.own.describe("better")),
            escape(a.neighbour.describe("worse")),
        )
    if not alarms:
        table.caption = "no alarm"
    return table


@click.group("alarms", invoke_without_command=True)
@click.option("--period", help="2026-11, FY2026-Q3 or FY2026 (default: the last closed period).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
    help="A table for people, CSV for spreadsheets, JSON for scripts.",
)
@click.option(
    "--evaluate/--stored",
    default=True,
    show_default=True,
    help="Recompute the period's KPIs and alarms first, or list the stored alarms as they are.",
)
@click.option(
    "--kind",
    "subject_kind",
    type=click.Choice(["department", "team", "person"]),
    help="Only alarms of departments, teams or people.",
)
@click.option("--department", type=click.Choice(["MK", "IS", "FS", "CS"]), help="Only one.")
@click.pass_context
def alarms_group(
    ctx: click.Context,
    period: str | None,
    fmt: str,
    evaluate: bool,
    subject_kind: str | None,
    department: str | None,
) -> None:
    """Partial-optimisation alarms: a department's own KPI better than in the period before
    while the neighbour KPI it feeds got worse (alarms.yaml sets the pairs and thresholds)."""
    if ctx.invoked_subcommand is not None:
        return

    settings = load_settings()
    store = open_store(settings.database_url)
    p = alarms.check_period(period) if period else alarms.last_closed_period(settings)
    tz = kpis.company_tz(settings)
    if evaluate:
        found = alarms.evaluate(store, settings, p)
        periods = sorted({a.period for a in found}) or [p]
    else:
        periods = [p]
    with store.session() as session:
        shown = [
            a
            for q in periods
            for a in alarms.raised(
                session,
                q,
                system=settings.config.crm,
                subject_kind=subject_kind,
                department=department,
            )
        ]
    for pair, at in alarms.unsettled(settings, p):
        click.echo(
            f"not judged yet for {p}: {pair.label} ({pair.id}); its cohort window runs out at "
            f"{at.astimezone(tz):%Y-%m-%d %H:%M} ({tz.key})",
            err=True,
        )
    if fmt == "json":
        click.echo(as_json(shown, tz))
    elif fmt == "csv":
        click.echo(as_csv(shown, tz), nl=False)
    else:
        Console().print(as_table(shown, ", ".join(periods)))


@alarms_group.command("check")
def check() -> None:
    """Validate alarms.yaml against the KPI files; every mistake at FILE:LINE:COL."""
    settings = load_settings()
    book = alarms.alarm_book(settings)
    click.echo(f"{book.file}: {len(book.pairs)} alarm pair(s), OK")
