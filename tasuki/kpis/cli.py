"""``tasuki kpi``: show the figures, explain one, push them to the CRM."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click
from rich.console import Console
from rich.table import Table

from tasuki.errors import TasukiError


class KpiUsageError(TasukiError):
    """A KPI command was given something it cannot work with (unknown KPI, bad period)."""


def _period(rt_settings: object, period: str | None) -> str:
    from tasuki import kpis
    from tasuki.kpis.periods import kind_of
    from tasuki.settings import Settings

    assert isinstance(rt_settings, Settings)
    if period is None:
        return kpis.current_period(rt_settings)
    try:
        kind_of(period)
    except ValueError as exc:
        raise KpiUsageError(str(exc)) from exc
    return period


@click.group("kpi")
def kpi_group() -> None:
    """Cross-department KPIs: own and neighbour figures per person."""


@kpi_group.command("show")
@click.option("--period", help="2026-11, FY2026-Q3 or FY2026 (default: the current one).")
@click.option("--compute/--no-compute", default=True, show_default=True, help="Recompute first.")
def show(period: str | None, compute: bool) -> None:
    """Each person's own and neighbour KPIs against target, and their attainment."""
    from tasuki import kpis
    from tasuki.runtime import build

    rt = build()
    p = _period(rt.settings, period)
    if compute:
        kpis.compute(rt.store, rt.settings, now=datetime.now(UTC), periods=[p])
    table = Table(title=f"Own and neighbour KPIs, {p}")
    for col in ("person", "dept", "own (actual / target)", "neighbour (actual / target)"):
        table.add_column(col)
    table.add_column("attainment", justify="right")
    for person in kpis.person_summary(rt.store, rt.settings, p):
        table.add_row(
            person.name or person.person_id,
            person.department,
            "\n".join(f"{f.label}: {f.shown(f.value)} / {f.shown(f.target)}" for f in person.own),
            "\n".join(
                f"{f.label}: {f.shown(f.value)} / {f.shown(f.target)}" for f in person.neighbour
            ),
            "–" if person.attainment is None else f"{100 * person.attainment:.0f}%",
        )
    Console().print(table)


@kpi_group.command("explain")
@click.argument("kpi_id")
@click.option("--person", help="CRM user id (default: the whole org).")
@click.option("--period", help="2026-11, FY2026-Q3 or FY2026 (default: the current one).")
def explain(kpi_id: str, person: str | None, period: str | None) -> None:
    """List the records behind one figure: what the numerator and denominator count."""
    from tasuki import kpis
    from tasuki.runtime import build

    rt = build()
    p = _period(rt.settings, period)
    try:
        ex = kpis.explain(rt.store, rt.settings, kpi_id, p, person)
    except KeyError as exc:
        raise KpiUsageError(str(exc.args[0])) from exc
    kpi = ex.kpi
    who = person or "the whole org"
    fig = "–" if ex.value is None else (f"{ex.value:.1%}" if kpi.is_ratio else f"{ex.value:,.2f}")
    click.echo(f"{kpi.id} ({kpi.label}), {ex.period}, {who}: {fig}")
    click.echo(f"  kind {kpi.kind.value}; numerator {ex.numerator}; denominator {ex.denominator}")
    table = Table()
    for col in ("record", "object", "when", "credited to", "dept", "numerator", "denominator"):
        table.add_column(col)
    for e in ex.events:
        at = e.at.isoformat(timespec="seconds") if isinstance(e.at, datetime) else str(e.at or "")
        table.add_row(
            e.record_id,
            e.object,
            at,
            e.person or "–",
            e.department or "–",
            "–" if e.numerator is None else f"{e.numerator:g}",
            "–" if e.denominator is None else f"{e.denominator:g}",
        )
    Console(width=200).print(table)
    click.echo(f"{len(ex.events)} event(s)")


@kpi_group.command("push")
@click.option(
    "--period", help="2026-11, FY2026-Q3 or FY2026 (default: the current and the previous one)."
)
@click.option("--dry-run", is_flag=True, help="Print what would be written; write nothing.")
def push(period: str | None, dry_run: bool) -> None:
    """Compute the figures and write them to the CRM: each person's KPI fields, the KPI rows
    (one per subject, KPI and period) and record-level figures.

    Goes through the single write-back path: only fields that differ from the ledger are sent,
    in full batches. With --dry-run the figures are computed in tasuki's store and the diff
    printed, and nothing is sent to the CRM. Asks for no confirmation."""
    from tasuki import kpis
    from tasuki.runtime import build
    from tasuki.writeback import write_back

    rt = build()
    now = datetime.now(UTC)
    periods = [_period(rt.settings, period)] if period else kpis.pushed_periods(rt.settings, now)
    kpis.compute(rt.store, rt.settings, now=now, periods=periods)
    desired = kpis.desired_values(rt.store, rt.settings, periods, now=now)
    report = write_back(rt.store, rt.connector, rt.settings.config, desired, dry_run=dry_run)
    if report.changes:
        table = Table(title="Would change" if dry_run else "Changed")
        for col in ("object", "record", "field", "old", "new"):
            table.add_column(col)
        for c in report.changes:
            table.add_row(c.object, c.record_id, c.field, _shown(c.old), _shown(c.new))
        Console(width=200).print(table)
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


def _shown(value: object) -> str:
    """A ledger text or a new value as a person reads it (no JSON quotes)."""
    if value is None:
        return "–"
    if isinstance(value, str) and value.startswith('"') and value.endswith('"'):
        return value[1:-1]
    return str(value)
