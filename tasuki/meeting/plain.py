"""The agenda as plain text: the terminal (``tasuki handoff agenda``) and the text part of the
agenda e-mail."""

from __future__ import annotations

from tasuki.meeting import formatting as f
from tasuki.meeting.agenda import Agenda, AgendaItem
from tasuki.meeting.escape import plain, safe_url

INDENT = "   "


def _item_lines(agenda: Agenda, n: int, item: AgendaItem, *, receiver: bool) -> list[str]:
    head = f"{n}. {plain(item.title) or item.record_id}"
    if item.company:
        head += f" — {plain(item.company)}"
    people = f"contact {plain(item.contact) or '—'} · from {plain(item.sender) or '—'}"
    if receiver:
        people += f" → {plain(item.receiver) or '—'}"
    people += f" · handed over {f.when(agenda, item.handed_at)}"
    lines = [head, INDENT + people]
    if item.meeting_at is not None:
        lines.append(f"{INDENT}customer meeting: {f.when(agenda, item.meeting_at)}")
    lines.append(f"{INDENT}hearing notes: {plain(item.hearing_notes) or '— none'}")
    if item.bant:
        bant = " · ".join(f"{b.label} {plain(b.text) or '—'}" for b in item.bant)
        lines.append(f"{INDENT}BANT: {bant}")
    for p in item.proposals:
        lines.append(f"{INDENT}{p.label}: {plain(p.text) or '—'}")
    recordings = [r for r in item.recordings if safe_url(r.url)]
    if not recordings:
        lines.append(f"{INDENT}recordings: — none linked")
    for r in recordings:
        at = f" {f.when(agenda, r.at)}" if r.at else ""
        lines.append(f"{INDENT}recording: {r.kind} ({r.source}){at} {safe_url(r.url)}")
    lines.append(f"{INDENT}verdict: {f.verdict(item)}")
    if item.verdict:
        for x in item.verdict.findings:
            lines.append(f"{INDENT}  - {x.severity} {x.rule_id}: {plain(x.message)}")
    lines.append(f"{INDENT}{f.clock(agenda, item.clock)}")
    link = safe_url(item.link)
    if link:
        lines.append(f"{INDENT}CRM: {link}")
    return lines


def _section(agenda: Agenda, heading: str, items: tuple[AgendaItem, ...]) -> list[str]:
    out = ["", f"== {heading} ({len(items)}) =="]
    if not items:
        out.append("none")
    for n, item in enumerate(items, 1):
        out += ["", *_item_lines(agenda, n, item, receiver=True)]
    return out


def render_text(agenda: Agenda) -> str:
    """The whole agenda as plain text, every CRM value stripped of control characters."""
    lines = [f.title(agenda), f.covers(agenda)]
    if agenda.answer_rule:
        lines.append(f"{agenda.receiver_department} answer SLA: {agenda.answer_rule}")
    lines += ["", f.counts(agenda)]
    if not agenda.groups:
        lines += ["", f"No new {agenda.boundary} handoffs since the last meeting."]
    for g in agenda.groups:
        lines += ["", f"== {plain(g.receiver) or '(no receiver)'} ({len(g.items)}) =="]
        for n, item in enumerate(g.items, 1):
            lines += ["", *_item_lines(agenda, n, item, receiver=False)]
    lines += _section(agenda, f.waiting_heading(agenda), agenda.waiting)
    lines += _section(agenda, f.UNFIXED_HEADING, agenda.unfixed)
    return "\n".join(lines) + "\n"
