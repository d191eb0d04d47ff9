"""``tasuki artifacts`` (recordings tasuki collected) and ``tasuki handoff`` (packets)."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from tasuki.meeting.cli import agenda_command
from tasuki.recordings.packet import Packet, build_packet, find_record
from tasuki.recordings.store import PENDING
from tasuki.settings import load_settings
from tasuki.store.db import open_store
from tasuki.store.models import Recording


@click.group("artifacts")
def artifacts_group() -> None:
    """Call (MiiTel) and meeting (Zoom) recordings tasuki collected."""


@artifacts_group.command("unmatched")
@click.option("--limit", default=200, show_default=True, help="Rows shown, newest first.")
def unmatched_command(limit: int) -> None:
    """Recordings not linked to any CRM record, with the reason (tried again on each sync)."""
    settings = load_settings()
    store = open_store(settings.database_url)
    with store.session() as s:
        total = s.scalar(
            select(func.count()).select_from(Recording).where(Recording.status.in_(PENDING))
        )
        rows = s.scalars(
            select(Recording)
            .where(Recording.status.in_(PENDING))
            .order_by(Recording.at.desc(), Recording.id.desc())
            .limit(limit)
        ).all()
    console = Console()
    table = Table(title=f"Unmatched recordings ({total})")
    for col in ("provider", "kind", "at", "id", "phones / emails", "host / user", "status"):
        table.add_column(col)
    table.add_column("reason", overflow="fold")
    for r in rows:
        table.add_row(
            r.provider,
            r.kind,
            r.at.strftime("%Y-%m-%d %H:%M") if r.at else "",
            r.external_id,
            ", ".join([*r.phones, *r.emails]),
            r.host_email or r.user_id,
            r.status,
            r.reason,
        )
    console.print(table)


@artifacts_group.command("match")
def match_command() -> None:
    """Link pending recordings now (what the worker does after each sync)."""
    import worker
    from tasuki import runtime

    with runtime.activate(runtime.build()):
        result = worker.match_recordings()
    click.echo(f"linked {result['linked']}; verdicts changed {result['verdicts_changed']}")


@click.group("handoff")
def handoff_group() -> None:
    """Handoffs (申し送り) and what they carry."""


handoff_group.add_command(agenda_command)  # the daily handoff meeting (tasuki.meeting)


@handoff_group.command("packet")
@click.argument("record")
def packet_command(record: str) -> None:
    """Print RECORD's handoff packet: hearing notes, BANT, proposal, recordings, verdicts.

    RECORD is a CRM record id, or OBJECT:ID (e.g. deal:006…) when ids could collide."""
    settings = load_settings()
    store = open_store(settings.database_url)
    system = settings.config.crm
    with store.session() as s:
        found = find_record(s, system, record)
        if found is None:
            raise click.ClickException(f"no record {record!r} in the store (has it synced?)")
        packet = build_packet(s, settings.config, system, found)
    _show(Console(), packet)


def _show(console: Console, p: Packet) -> None:
    console.print(f"[bold]{p.object} {p.record_id}[/] {p.name}  (owner: {p.owner or '-'})")
    for title, rows in p.sections:
        console.print(f"\n[bold]{title}[/]")
        for name, value in rows:
            shown = "[red]— missing[/]" if value in (None, "") else str(value)
            console.print(f"  {name}: {shown}")
    console.print("\n[bold]Recordings[/]")
    if not p.recordings:
        console.print("  [red]— none linked[/]")
    for a in p.recordings:
        console.print(f"  {a.kind} ({a.source}) {a.at:%Y-%m-%d %H:%M} {a.url}")
    console.print("\n[bold]Verdicts[/]")
    if not p.handoffs:
        console.print("  — no handoff yet")
    for h in p.handoffs:
        outcome = f"{h.outcome} {h.score}" if h.outcome else "not judged"
        console.print(
            f"  {h.boundary} {h.handed_at:%Y-%m-%d %H:%M} {h.sender or '-'} → "
            f"{h.receiver or '-'}: [bold]{outcome}[/]"
        )
        for v in h.violations:
            console.print(f"    {v}")
