"""The agenda as Markdown (``--format markdown``; the demo's ``.tasuki/agenda.md``)."""

from __future__ import annotations

from tasuki.meeting import formatting as f
from tasuki.meeting.agenda import Agenda, AgendaItem
from tasuki.meeting.escape import markdown as md
from tasuki.meeting.escape import markdown_link, safe_url


def _item(agenda: Agenda, item: AgendaItem, *, receiver: bool) -> list[str]:
    name = md(item.title or item.record_id)
    head = f"### {markdown_link(item.link, item.title or item.record_id) if item.link else name}"
    if item.company:
        head += f" — {md(item.company)}"
    people = f"contact {md(item.contact or '—')} · from **{md(item.sender or '—')}**"
    if receiver:
        people += f" → **{md(item.receiver or '—')}**"
    people += f" · handed over {md(f.when(agenda, item.handed_at))}"
    lines = [head, "", f"- {people}"]
    if item.meeting_at is not None:
        lines.append(f"- customer meeting: {md(f.when(agenda, item.meeting_at))}")
    lines.append(f"- hearing notes: {md(item.hearing_notes) or '*none*'}")
    if item.bant:
        bant = " · ".join(f"{md(b.label)} {md(b.text) or '—'}" for b in item.bant)
        lines.append(f"- BANT: {bant}")
    for p in item.proposals:
        lines.append(f"- {md(p.label)}: {md(p.text) or '—'}")
    recordings = [r for r in item.recordings if safe_url(r.url)]
    if recordings:
        shown = ", ".join(
            markdown_link(
                r.url, f"{r.kind} ({r.source})" + (f" {f.when(agenda, r.at)}" if r.at else "")
            )
            for r in recordings
        )
        lines.append(f"- recordings: {shown}")
    else:
        lines.append("- recordings: *none linked*")
    lines.append(f"- verdict: **{md(f.verdict(item))}**")
    for x in item.verdict.findings if item.verdict else ():
        lines.append(f"  - {md(x.severity)} `{x.rule_id}`: {md(x.message)}")
    lines.append(f"- {md(f.clock(agenda, item.clock))}")
    return lines + [""]


def render_markdown(agenda: Agenda) -> str:
    """The whole agenda as Markdown, every CRM value escaped (no HTML, links or emphasis of
    its own)."""
    lines = [f"# {md(f.title(agenda))}", "", md(f.covers(agenda))]
    if agenda.answer_rule:
        lines += ["", f"{agenda.receiver_department} answer SLA: {md(agenda.answer_rule)}"]
    lines += ["", md(f.counts(agenda)), ""]
    if not agenda.groups:
        lines += [f"No new {agenda.boundary} handoffs since the last meeting.", ""]
    for g in agenda.groups:
        lines += [f"## {md(g.receiver or '(no receiver)')} ({len(g.items)})", ""]
        for item in g.items:
            lines += _item(agenda, item, receiver=False)
    for heading, items in (
        (f.waiting_heading(agenda), agenda.waiting),
        (f.UNFIXED_HEADING, agenda.unfixed),
    ):
        lines += [f"## {md(heading)} ({len(items)})", ""]
        if not items:
            lines += ["None.", ""]
        for item in items:
            lines += _item(agenda, item, receiver=True)
    return "\n".join(lines).rstrip("\n") + "\n"
