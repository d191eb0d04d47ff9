"""``tasuki artifacts`` (recordings tasuki collected) and ``tasuki handoff`` (packets)."""

from __future__ import annotations

import json
from datetime import tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from sqlalchemy import func, select

import worker
from tasuki import runtime, startup
from tasuki.display import FORMATS, local_time, render
from tasuki.meeting.cli import agenda_command
from tasuki.recordings.packet import Packet, build_packet, find_record
from tasuki.recordings.store import PENDING
from tasuki.settings import load_settings
from tasuki.store.db import open_store
from tasuki.store.models import Recording


@click.group("artifacts")
def artifacts_group() -> None:
    """Call (MiiTel) and meeting (Zoom) recordings tasuki collected."""


_FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="How to print it.",
)


@artifacts_group.command("unmatched")
@click.option("--limit", default=200, show_default=True, help="Rows shown, newest first.")
@_FORMAT
def unmatched_command(limit: int, fmt: str) -> None:
    """Recordings not linked to any CRM record, with the reason (tried again on each sync);
    times in the company's timezone."""
    settings = load_settings()
    tz = ZoneInfo(settings.config.calendar.timezone)
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
    listed = [
        {
            "provider": r.provider,
            "kind": r.kind,
            "at": local_time(r.at, tz) if r.at else "",
            "id": r.external_id,
            "phones / emails": ", ".join([*r.phones, *r.emails]),
            "host / user": r.host_email or r.user_id,
            "status": r.status,
            "reason": r.reason,
        }
        for r in rows
    ]
    columns = ["provider", "kind", "at", "id", "phones / emails", "host / user", "status", "reason"]
    if fmt != "table":
        click.echo(render(listed, columns, fmt), nl=fmt == "json")
        return
    console = Console()
    table = Table(title=f"Unmatched recordings ({total})")
    for col in columns:
        table.add_column(col, overflow="fold" if col == "reason" else "ellipsis")
    for row in listed:
        table.add_row(*(Text(str(row[c] or "")) for c in columns))
    console.print(table)


@artifacts_group.command("match")
@click.option(
    "--all",
    "everything",
    is_flag=True,
    help="Try every pending recording against every record (the full pass), not only those "
    "that changes since the last pass concern.",
)
def match_command(everything: bool) -> None:
    """Link pending recordings now (what the worker does after each sync)."""
    with runtime.activate(startup.build()):
        result = worker.match_recordings(full=everything)
    click.echo(f"linked {result['linked']}; verdicts changed {result['verdicts_changed']}")


@click.group("handoff")
def handoff_group() -> None:
    """Handoffs (申し送り) and what they carry."""


handoff_group.add_command(agenda_command)  # the daily handoff meeting (tasuki.meeting)


@handoff_group.command("packet")
@click.argument("record")
@_FORMAT
def packet_command(record: str, fmt: str) -> None:
    """Print RECORD's handoff packet: hearing notes, BANT, proposal, recordings, verdicts.

    RECORD is a CRM record id, or OBJECT:ID (e.g. deal:006…) when ids could collide. Times in
    the company's timezone; people by name with their id in brackets."""
    settings = load_settings()
    tz = ZoneInfo(settings.config.calendar.timezone)
    store = open_store(settings.database_url)
    system = settings.config.crm
    with store.session() as s:
        found = find_record(s, system, record)
        if found is None:
            raise click.ClickException(f"no record {record!r} in the store (has it synced?)")
        packet = build_packet(s, settings.config, system, found)
    if fmt == "json":
        click.echo(json.dumps(_as_dict(packet, tz), ensure_ascii=False, indent=2, default=str))
    elif fmt == "csv":
        click.echo(render(_as_rows(packet, tz), ["section", "item", "value"], fmt), nl=False)
    else:
        _show(Console(), packet, tz)


def _as_dict(p: Packet, tz: tzinfo) -> dict[str, Any]:
    return {
        "object": p.object,
        "record_id": p.record_id,
        "name": p.name,
        "owner": p.owner,
        "sections": {title: dict(rows) for title, rows in p.sections},
        "recordings": [
            {"kind": a.kind, "source": a.source, "at": local_time(a.at, tz), "url": a.url}
            for a in p.recordings
        ],
        "handoffs": [
            {
                "boundary": h.boundary,
                "handed_at": local_time(h.handed_at, tz),
                "sender": h.sender,
                "receiver": h.receiver,
                "outcome": h.outcome,
                "score": h.score,
                "violations": list(h.violations),
            }
            for h in p.handoffs
        ],
    }


def _as_rows(p: Packet, tz: tzinfo) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [
        {"section": "record", "item": "name", "value": f"{p.name} [{p.record_id}]"},
        {"section": "record", "item": "owner", "value": p.owner},
    ]
    for title, fields in p.sections:
        rows.extend({"section": title, "item": name, "value": value} for name, value in fields)
    rows.extend(
        {"section": "Recordings", "item": f"{a.kind} {local_time(a.at, tz)}", "value": a.url}
        for a in p.recordings
    )
    for h in p.handoffs:
        outcome = f"{h.outcome} {h.score}" if h.outcome else "not judged"
        rows.append(
            {
                "section": "Verdicts",
                "item": f"{h.boundary} {local_time(h.handed_at, tz)} {h.sender} → {h.receiver}",
                "value": "; ".join([outcome, *h.violations]),
            }
        )
    return rows


def _show(console: Console, p: Packet, tz: tzinfo) -> None:
    console.print(
        f"[bold]{escape(p.object)}[/] {escape(p.name)} [{escape(p.record_id)}]  "
        f"(owner: {escape(p.owner)})",
        highlight=False,
    )
    for title, rows in p.sections:
        console.print(f"\n[bold]{title}[/]")
        for name, value in rows:
            shown = "[red]— missing[/]" if value in (None, "") else escape(str(value))
            console.print(f"  {name}: {shown}", highlight=False)
    console.print("\n[bold]Recordings[/]")
    if not p.recordings:
        console.print("  [red]— none linked[/]")
    for a in p.recordings:
        console.print(
            f"  {a.kind} ({a.source}) {local_time(a.at, tz)} {escape(a.url)}", highlight=False
        )
    console.print("\n[bold]Verdicts[/]")
    if not p.handoffs:
        console.print("  — no handoff yet")
    for h in p.handoffs:
        outcome = f"{h.outcome} {h.score}" if h.outcome else "not judged"
        console.print(
            f"  {h.boundary} {local_time(h.handed_at, tz)} {escape(h.sender)} → "
            f"{escape(h.receiver)}: [bold]{outcome}[/]",
            highlight=False,
        )
        for v in h.violations:
            console.print(f"    {escape(v)}", highlight=False)
