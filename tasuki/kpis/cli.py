"""``tasuki kpi``: show the figures, explain one, push them to the CRM.

Periods are typed as ``2026-11``, ``2026-Q3`` (a calendar quarter), ``FY2026-Q3`` or ``FY2026``
and computed whole; without ``--period`` the last closed period is shown, ``--period current``
(or ``--mtd``) shows the running one, labelled "month to date". Times are in the company's
timezone with its zone (``JST``), people by name with their id in brackets.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

import click
from sqlalchemy import func, or_, select

from tasuki import kpis
from tasuki.display import FORMATS, local_time, named, render
from tasuki.errors import TasukiError
from tasuki.kpis.computation import restatement
from tasuki.kpis.periods import bounds, label, parse_period, previous, spanning
from tasuki.settings import Settings
from tasuki.startup import build
from tasuki.store.models import Person
from tasuki.writeback import write_back


class KpiUsageError(TasukiError):
    """A KPI command was given something it cannot work with (unknown KPI, bad period)."""


def _period(rt_settings: object, period: str | None, mtd: bool = False) -> tuple[str, bool]:
    """The period asked for, as stored, and whether it is the running one."""
    assert isinstance(rt_settings, Settings)
    book = kpis.book(rt_settings)
    current = kpis.current_period(rt_settings)
    if mtd or (period or "").strip().lower() == "current":
        return current, True
    if period is None:
        tz = kpis.company_tz(rt_settings)
        return previous(current, book.period, book.fiscal_year_start, tz), False
    try:
        p = parse_period(period, book.fiscal_year_start)
    except ValueError as exc:
        raise KpiUsageError(str(exc)) from exc
    return p, p == current


PERIOD_HELP = "2026-11, 2026-Q3, FY2026-Q3, FY2026 or current (default: the last closed period)."


def _person(rt: Any, text: str) -> tuple[str, str]:
    """The CRM user ``text`` names (id, e-mail or name) as (id, name); an unknown or ambiguous
    person ends the command with exit code 2 and the candidates."""
    with rt.store.session() as s:
        exact = s.execute(
            select(Person.user_id, Person.name).where(
                Person.system == rt.system, Person.user_id == text
            )
        ).all()
        found = (
            exact
            or s.execute(
                select(Person.user_id, Person.name).where(
                    Person.system == rt.system,
                    or_(
                        func.lower(Person.email) == text.lower(),
                        func.lower(Person.name) == text.lower(),
                    ),
                )
            ).all()
        )
    if not found:
        click.echo(f"error: no person {text!r} (give a CRM user id, e-mail or name)", err=True)
        sys.exit(2)
    if len(found) > 1:
        click.echo(f"error: {text!r} names {len(found)} people; give one of:", err=True)
        for uid, name in sorted(found):
            click.echo(f"  {named(name, uid)}", err=True)
        sys.exit(2)
    return found[0][0], found[0][1]


@click.group("kpi")
def kpi_group() -> None:
    """Cross-department KPIs: own and neighbour figures per person."""


def _part(figs: Any) -> str:
    return "\n".join(f"{f.label}: {f.shown(f.value)} / {f.shown(f.target)}" for f in figs)


@kpi_group.command("show")
@click.option("--period", help=PERIOD_HELP)
@click.option("--mtd", is_flag=True, help="The running period so far (same as --period current).")
@click.option("--compute/--no-compute", default=True, show_default=True, help="Recompute first.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
def show(period: str | None, mtd: bool, compute: bool, fmt: str) -> None:
    """Each person's own and neighbour KPIs against target, and their attainment."""
    rt = build()
    now = datetime.now(UTC)
    p, running = _period(rt.settings, period, mtd)
    if compute:
        kpis.compute(rt.store, rt.settings, now=now, periods=[p])
    book = kpis.book(rt.settings)
    tz = kpis.company_tz(rt.settings)
    rows = []
    for person in kpis.person_summary(rt.store, rt.settings, p, now):
        row: dict[str, Any] = {
            "person": named(person.name, person.person_id),
            "dept": person.department,
            "period": label(p, running),
            "attainment": None if person.attainment is None else round(100 * person.attainment),
        }
        if fmt == "table":
            row["own (actual / target)"] = _part(person.own)
            row["neighbour (actual / target)"] = _part(person.neighbour)
            row["attainment"] = "–" if row["attainment"] is None else f"{row['attainment']}%"
        else:
            row["person_id"] = person.person_id
            for f in (*person.own, *person.neighbour):
                row[f.kpi_id] = f.value
                row[f"{f.kpi_id}_target"] = f.target
        rows.append(row)
    if fmt == "table":
        columns = ["person", "dept", "own (actual / target)", "neighbour (actual / target)"]
        click.echo(
            render(
                rows,
                [*columns, "attainment"],
                fmt,
                title=f"Own and neighbour KPIs, {label(p, running)}",
            ),
            nl=False,
        )
        notes = sorted({k.passing_label for k in book.kpis.values() if k.passing_label})
        click.echo(f"pass rates: {'; '.join(notes)}" if notes else "", nl=bool(notes))
        click.echo(f"computed {local_time(now, tz)}")
        return
    figures = sorted(
        {k for r in rows for k in r} - {"person", "person_id", "dept", "period", "attainment"}
    )
    columns = ["period", "person_id", "person", "dept", "attainment", *figures]
    click.echo(render(rows, columns, fmt))


@kpi_group.command("explain")
@click.argument("kpi_id")
@click.option("--person", help="A CRM user id, e-mail or name (default: the whole org).")
@click.option("--period", help=PERIOD_HELP)
@click.option("--mtd", is_flag=True, help="The running period so far (same as --period current).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
def explain(kpi_id: str, person: str | None, period: str | None, mtd: bool, fmt: str) -> None:
    """List the records behind one figure: what the numerator and denominator count."""
    rt = build()
    p, running = _period(rt.settings, period, mtd)
    who_id, who_name = _person(rt, person) if person else (None, "")
    try:
        ex = kpis.explain(rt.store, rt.settings, kpi_id, p, who_id)
    except KeyError as exc:
        raise KpiUsageError(str(exc.args[0])) from exc
    tz = kpis.company_tz(rt.settings)
    with rt.store.session() as s:
        names = dict(
            s.execute(select(Person.user_id, Person.name).where(Person.system == rt.system)).all()
        )
    kpi = ex.kpi
    rows = []
    for e in ex.events:
        when = e.at if isinstance(e.at, datetime) else None
        if when is None and isinstance(e.at, str) and len(e.at) > 10:
            try:
                when = datetime.fromisoformat(e.at)
            except ValueError:
                when = None
        rows.append(
            {
                "record": e.record_id,
                "object": e.object,
                "when": local_time(when, tz) if when is not None else (e.at or None),
                "credited to": named(names.get(e.person or ""), e.person),
                "dept": e.department,
                "numerator": e.numerator,
                "denominator": e.denominator,
            }
        )
    columns = ["record", "object", "when", "credited to", "dept", "numerator", "denominator"]
    if fmt != "table":
        click.echo(render(rows, columns, fmt))
        return
    who = named(who_name, who_id) if who_id else "the whole org"
    fig = "–" if ex.value is None else (f"{ex.value:.1%}" if kpi.is_ratio else f"{ex.value:,.2f}")
    click.echo(f"{kpi.id} ({kpi.label}), {label(ex.period, running)}, {who}: {fig}")
    extra = f"; {kpi.passing_label}" if kpi.passing_label else ""
    click.echo(
        f"  kind {kpi.kind.value}; numerator {_num(ex.numerator)}; "
        f"denominator {_num(ex.denominator)}{extra}"
    )
    for r in rows:
        for k in ("numerator", "denominator"):
            r[k] = "–" if r[k] is None else f"{r[k]:g}"
    click.echo(render(rows, columns, "table"), nl=False)
    click.echo(f"{len(ex.events)} event(s)")


def _num(x: float | None) -> str:
    return "–" if x is None else f"{x:g}"


@kpi_group.command("push")
@click.option("--period", help="One period (default: the current and the previous one).")
@click.option("--since", help="Every period from this one (2026-01) to the current one.")
@click.option("--restate", help="Recompute a closed period with today's targets (diff first).")
@click.option("--yes", is_flag=True, help="With --restate: write the restatement.")
@click.option("--dry-run", is_flag=True, help="Print what would be written; write nothing.")
def push(
    period: str | None, since: str | None, restate: str | None, yes: bool, dry_run: bool
) -> None:
    """Compute the figures and write them to the CRM: each person's KPI fields, the KPI rows
    (one per subject, KPI and period) and record-level figures.

    Goes through the single write-back path: only fields that differ from the ledger are sent,
    in full batches. With --dry-run the figures are computed in tasuki's store and the diff
    printed, and nothing is sent to the CRM. A closed period keeps the targets it was computed
    with; --restate PERIOD shows what today's targets would change (old → new per row) and
    writes it only with --yes (and not in a dry run)."""
    rt = build()
    now = datetime.now(UTC)
    if sum(x is not None for x in (period, since, restate)) > 1:
        raise KpiUsageError("give one of --period, --since, --restate")
    if restate is not None:
        p, _ = _period(rt.settings, restate)
        changes = restatement(rt.store, rt.settings, p, now=now)
        _print_restatement(p, changes)
        if not changes:
            return
        if dry_run or not yes:
            click.echo("nothing written: run again with --yes (and without --dry-run) to restate")
            return
        kpis.compute(rt.store, rt.settings, now=now, periods=[p], restate=True)
        periods = [p]
    elif since is not None:
        first, _ = _period(rt.settings, since)
        book = kpis.book(rt.settings)
        tz = kpis.company_tz(rt.settings)

        start, _ = bounds(first, book.fiscal_year_start, tz)
        periods = spanning(start, now, book.period, book.fiscal_year_start, tz)
    else:
        periods = (
            [_period(rt.settings, period)[0]] if period else kpis.pushed_periods(rt.settings, now)
        )
    kpis.compute(rt.store, rt.settings, now=now, periods=periods)
    desired = kpis.desired_values(rt.store, rt.settings, periods, now=now)
    if since is not None:
        # First what it will cost: the rows and the write calls, from a dry pass.
        plan = write_back(rt.store, rt.connector, rt.settings.config, desired, dry_run=True)
        click.echo(
            f"{len(periods)} period(s) {periods[0]}…{periods[-1]}: "
            f"{len({(d.object, d.record_id) for d in desired})} row(s)/record(s); "
            f"{plan.fields} field(s) to change on {plan.records} record(s) in "
            f"{plan.calls} write call(s)"
        )
    report = write_back(rt.store, rt.connector, rt.settings.config, desired, dry_run=dry_run)
    if report.changes:
        rows = [
            {
                "object": c.object,
                "record": c.record_id,
                "field": c.field,
                "old": _shown(c.old),
                "new": _shown(c.new),
            }
            for c in report.changes
        ]
        title = "Would change" if dry_run else "Changed"
        cols = ["object", "record", "field", "old", "new"]
        click.echo(render(rows, cols, "table", title=title), nl=False)
    verb = "would change" if dry_run else "changed"
    click.echo(
        f"{', '.join(periods)}: {verb} {report.fields} field(s) on {report.records} record(s) in "
        f"{report.calls} API call(s) (minimum {report.min_calls}); {len(desired)} desired, "
        f"{len(desired) - report.fields} already held"
    )
    for r in report.rejected:
        click.echo(f"rejected {r.object} {r.record_id}: {r.error_code} {r.message}", err=True)
    if report.rejected:
        sys.exit(1)


def _print_restatement(period: str, changes: list[Any]) -> None:
    if not changes:
        click.echo(f"{period}: restating changes nothing")
        return
    rows = []
    for (kpi_id, kind, subject), old, new in changes:
        o, n = old or (None, None), new or (None, None)
        rows.append(
            {
                "kpi": kpi_id,
                "subject": f"{kind}:{subject}",
                "value": f"{_num(o[0])} → {_num(n[0])}",
                "target": f"{_num(o[1])} → {_num(n[1])}",
            }
        )
    title = f"Restating {period}: {len(rows)} row(s) change (old → new)"
    click.echo(render(rows, ["kpi", "subject", "value", "target"], "table", title=title), nl=False)


def _shown(value: object) -> str:
    """A ledger text or a new value as a person reads it (no JSON quotes)."""
    if value is None:
        return "–"
    if isinstance(value, str) and value.startswith('"') and value.endswith('"'):
        return value[1:-1]
    return str(value)
