"""The agenda as Slack Block Kit messages: one message when it is short; when it is long, a
parent message with the summary and one thread reply per receiver (then one for the handoffs
still waiting and one for the unfixed failures).

CRM values go into ``plain_text`` objects, which Slack never formats, escaped with
:func:`~tasuki.meeting.escape.slack_text`; the few that sit in ``mrkdwn`` (a person's name in
bold) go through :func:`~tasuki.meeting.escape.slack_mrkdwn`. Links are built by
:func:`~tasuki.meeting.escape.slack_link` and only for http(s) URLs. A deal named
``<!channel>`` or ``*bold*`` therefore neither pings nor formats.

The delivery posts ``messages[0]``, then each message with ``reply=True`` in its thread
(``thread_ts`` of the first): one ``chat.postMessage`` per message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tasuki.meeting import formatting as f
from tasuki.meeting.agenda import Agenda, AgendaItem, ClockState
from tasuki.meeting.escape import slack_link, slack_mrkdwn, slack_text

MAX_BLOCKS = 50
"""Slack's limit of blocks in one message."""
INLINE_ITEMS = 5
"""An agenda with more handoffs than this (all sections together) is posted as a parent
message with thread replies."""
TEXT_LIMIT = 3000
"""Slack's limit of characters in a section's text (and a header's is 150)."""
CONTEXT_ELEMENTS = 10
"""Slack's limit of elements in a context block."""

_OUTCOME_ICONS = {"passed": ":white_check_mark:", "warned": ":warning:", "failed": ":x:"}
_CLOCK_ICONS = {
    ClockState.PENDING: ":hourglass_flowing_sand:",
    ClockState.OVERDUE: ":rotating_light:",
    ClockState.ANSWERED: ":ballot_box_with_check:",
    ClockState.ANSWERED_LATE: ":ballot_box_with_check:",
}


@dataclass(frozen=True)
class SlackMessage:
    """One ``chat.postMessage``: its notification text, its blocks, and whether it is a reply
    in the thread of the first message."""

    text: str
    blocks: tuple[dict[str, Any], ...]
    reply: bool = False

    def payload(self) -> dict[str, Any]:
        """Arguments of ``chat.postMessage`` besides ``channel`` and ``thread_ts``."""
        return {
            "text": self.text,
            "blocks": list(self.blocks),
            "unfurl_links": False,
            "unfurl_media": False,
        }


def _clip(text: str, limit: int = TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + f.ELLIPSIS


def _plain(*lines: str) -> dict[str, Any]:
    """A ``plain_text`` object of CRM text, one escaped line per argument."""
    text = "\n".join(slack_text(line) for line in lines)
    return {"type": "plain_text", "text": _clip(text), "emoji": False}


def _mrkdwn(text: str) -> dict[str, Any]:
    """``text`` is already mrkdwn (escaped where it holds CRM values)."""
    return {"type": "mrkdwn", "text": _clip(text)}


def _header(agenda: Agenda) -> list[dict[str, Any]]:
    return [
        {"type": "header", "text": _plain(_clip(f.title(agenda), 150))},
        {"type": "context", "elements": [_mrkdwn(slack_mrkdwn(f.covers(agenda)))]},
    ]


def _item_blocks(agenda: Agenda, item: AgendaItem, *, receiver: bool) -> list[dict[str, Any]]:
    head = item.title or item.record_id
    if item.company:
        head += f" — {item.company}"
    people = f"contact {item.contact or '—'} · from {item.sender or '—'}"
    if receiver:
        people += f" → {item.receiver or '—'}"
    people += f" · handed over {f.when(agenda, item.handed_at)}"
    lines = [head, people]
    if item.meeting_at is not None:
        lines.append(f"customer meeting: {f.when(agenda, item.meeting_at)}")
    packet = [f"Hearing notes: {item.hearing_notes or '— none'}"]
    if item.bant:
        packet.append("BANT: " + " · ".join(f"{b.label} {b.text or '—'}" for b in item.bant))
    packet += [f"{p.label}: {p.text or '—'}" for p in item.proposals]
    icon = _OUTCOME_ICONS.get(item.verdict.outcome, "") if item.verdict else ":grey_question:"
    facts = [f"{icon} *{slack_mrkdwn(f.verdict(item))}*"]
    if item.clock is not None:
        facts.append(
            f"{_CLOCK_ICONS[item.clock.state]} {slack_mrkdwn(f.clock(agenda, item.clock))}"
        )
    else:
        facts.append(slack_mrkdwn(f.clock(agenda, None)))
    recordings = [slack_link(r.url, f"{r.kind} recording ({r.source})") for r in item.recordings]
    facts.append(" · ".join(recordings) if recordings else "no recording linked")
    if item.link:
        facts.append(slack_link(item.link, "open in the CRM"))
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": _plain(*lines)},
        {"type": "section", "text": _plain(*packet)},
        {"type": "context", "elements": [_mrkdwn(x) for x in facts]},
    ]
    findings = item.verdict.findings if item.verdict else ()
    if findings:
        shown = [_plain(f"{x.severity}: {x.message}") for x in findings]
        if len(shown) > CONTEXT_ELEMENTS:
            more = len(shown) - CONTEXT_ELEMENTS + 1
            shown = shown[: CONTEXT_ELEMENTS - 1] + [_plain(f"and {more} more")]
        blocks.append({"type": "context", "elements": shown})
    return blocks


def _items(
    agenda: Agenda, items: Sequence[AgendaItem], *, receiver: bool
) -> list[list[dict[str, Any]]]:
    """Each item's blocks, a divider before all but the first."""
    out = []
    for n, item in enumerate(items):
        blocks = _item_blocks(agenda, item, receiver=receiver)
        out.append(([{"type": "divider"}] if n else []) + blocks)
    return out


def _heading(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text)}


def _sections(agenda: Agenda) -> list[tuple[str, str, list[list[dict[str, Any]]]]]:
    """(notification text, heading mrkdwn, item block lists) of each part of the agenda."""
    parts = []
    for g in agenda.groups:
        name = g.receiver or "(no receiver)"
        n = len(g.items)
        parts.append(
            (
                f"{slack_mrkdwn(name)}: {n} new handoff{'s' if n != 1 else ''}",
                f"*{slack_mrkdwn(name)}* — {n} new handoff{'s' if n != 1 else ''}",
                _items(agenda, g.items, receiver=False),
            )
        )
    for heading, items in (
        (f.waiting_heading(agenda), agenda.waiting),
        (f.UNFIXED_HEADING, agenda.unfixed),
    ):
        if items:
            parts.append(
                (
                    f"{slack_mrkdwn(heading)}: {len(items)}",
                    f"*{slack_mrkdwn(heading)}* ({len(items)})",
                    _items(agenda, items, receiver=True),
                )
            )
    return parts


def _chunks(text: str, heading: str, items: list[list[dict[str, Any]]]) -> list[SlackMessage]:
    """Thread replies of one part, as few as fit in :data:`MAX_BLOCKS` blocks each."""
    out: list[SlackMessage] = []
    blocks: list[dict[str, Any]] = [_heading(heading)]
    for item in items:
        if len(blocks) + len(item) > MAX_BLOCKS and len(blocks) > 1:
            out.append(SlackMessage(text, tuple(blocks), reply=True))
            blocks = [_heading(f"{heading} (continued)")]
            item = [b for b in item if b["type"] != "divider"]
        blocks += item
    out.append(SlackMessage(text, tuple(blocks), reply=True))
    return out


def slack_blocks(agenda: Agenda) -> list[SlackMessage]:
    """The agenda as Slack messages: ``[parent, *replies]`` (replies only when it is long)."""
    parts = _sections(agenda)
    summary = slack_mrkdwn(f"{f.title(agenda)}: {f.counts(agenda)}")
    counted = len(agenda.items) + len(agenda.waiting) + len(agenda.unfixed)
    single = _header(agenda) + [_heading(slack_mrkdwn(f.counts(agenda)))]
    if not agenda.groups:
        single.append(
            _heading(slack_mrkdwn(f"No new {agenda.boundary} handoffs since the last meeting."))
        )
    for _, heading, items in parts:
        single += [{"type": "divider"}, _heading(heading)] + [b for item in items for b in item]
    if counted <= INLINE_ITEMS and len(single) <= MAX_BLOCKS:
        return [SlackMessage(summary, tuple(single))]
    lines = [f"• {heading}" for _, heading, _ in parts]
    parent = _header(agenda) + [
        _heading(slack_mrkdwn(f.counts(agenda))),
        _heading(_clip("\n".join(lines) + "\nDetails in the thread.")),
    ]
    replies = [m for text, heading, items in parts for m in _chunks(text, heading, items)]
    return [SlackMessage(summary, tuple(parent)), *replies]
