"""A notification's content, and its Slack and e-mail renderings.

An event builds a :class:`Message` of plain, unescaped text (what the CRM holds: a deal may be
named ``<!channel>`` or ``*bold*``); the renderers escape every piece through the helpers of
:mod:`tasuki.meeting.escape`, the one place escaping is done: ``&``, ``<``, ``>`` as entities
and the formatting characters as look-alikes for Slack mrkdwn (nothing pings, nothing
formats), control characters dropped for plain text, and Jinja2's autoescape for HTML mail.
Links are only ever http(s).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, NamedTuple

from jinja2 import Environment, StrictUndefined, Template

from tasuki.meeting.escape import plain, safe_url, slack_link, slack_mrkdwn, slack_text

SECTION_LIMIT = 3000
"""Slack's limit of characters in a section block's text."""
MAX_LINES = 40
"""Lines shown in one message; the rest are counted."""


@dataclass(frozen=True)
class Link:
    """A link and what it is called."""

    url: str
    label: str


@dataclass(frozen=True)
class Line:
    """One bullet of a message: text (unescaped) and, optionally, a link after it."""

    text: str
    link: Link | None = None


@dataclass(frozen=True)
class Message:
    """What a notification says, before any escaping."""

    title: str
    """One line: the Slack notification text and the e-mail subject."""
    intro: str = ""
    lines: tuple[Line, ...] = ()
    link: Link | None = None
    """The main link (the record in the CRM)."""
    footer: str = ""

    def shown_lines(self) -> tuple[Line, ...]:
        """The lines a rendering shows: at most :data:`MAX_LINES`, then how many more."""
        if len(self.lines) <= MAX_LINES:
            return self.lines
        more = len(self.lines) - MAX_LINES + 1
        return (*self.lines[: MAX_LINES - 1], Line(f"… and {more} more"))


def _clip(text: str, limit: int = SECTION_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plain_text(text: str) -> dict[str, Any]:
    """A ``plain_text`` object: Slack never formats it; ``&``, ``<``, ``>`` still escaped."""
    return {"type": "plain_text", "text": _clip(slack_text(text)), "emoji": False}


def _line_text(line: Line) -> str:
    if line.link is None:
        return slack_text(line.text)
    return f"{slack_mrkdwn(line.text)} {slack_link(line.link.url, line.link.label)}".strip()


def _line_blocks(lines: Sequence[Line]) -> list[dict[str, Any]]:
    """Bullets in as few sections as fit: lines with a link in ``mrkdwn`` (their text made
    inert with look-alikes), the others in ``plain_text`` (nothing formats, codes like
    ``FIELD_CUSTOM_VALIDATION_EXCEPTION`` stay as written)."""
    blocks: list[dict[str, Any]] = []
    kind, chunk = "", list[str]()
    groups: list[tuple[str, list[str]]] = []
    for line in lines:
        this = "mrkdwn" if line.link is not None else "plain_text"
        bullet = "• " + _line_text(line)
        if chunk and (this != kind or len("\n".join([*chunk, bullet])) > SECTION_LIMIT):
            groups.append((kind, chunk))
            chunk = []
        kind = this
        chunk.append(_clip(bullet))
    if chunk:
        groups.append((kind, chunk))
    for kind, texts in groups:
        text: dict[str, Any] = {"type": kind, "text": "\n".join(texts)}
        if kind == "plain_text":
            text["emoji"] = False
        blocks.append({"type": "section", "text": text})
    return blocks


def slack_payload(message: Message) -> dict[str, Any]:
    """Arguments of ``chat.postMessage`` besides ``channel``: the notification ``text`` (not
    formatted: ``mrkdwn`` false) and the blocks: a header and ``plain_text`` for what the CRM
    wrote, ``mrkdwn`` only around links."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {**_plain_text(_clip(message.title, 150)), "emoji": True}}
    ]
    if message.intro:
        blocks.append({"type": "section", "text": _plain_text(message.intro)})
    blocks += _line_blocks(message.shown_lines())
    context: list[dict[str, Any]] = []
    if message.link is not None:
        context.append({"type": "mrkdwn", "text": slack_link(message.link.url, message.link.label)})
    if message.footer:
        context.append(_plain_text(message.footer))
    if context:
        blocks.append({"type": "context", "elements": context})
    return {
        "text": _clip(slack_text(message.title), 150),
        "mrkdwn": False,  # the notification text is never formatted
        "blocks": blocks,
        "unfurl_links": False,
        "unfurl_media": False,
    }


class Mail(NamedTuple):
    """One e-mail: subject, plain-text part, HTML part."""

    subject: str
    text: str
    html: str


_HTML = """<!doctype html>
<html><body style="font-family: sans-serif; line-height: 1.5">
<h2 style="font-size: 1.1em">{{ m.title }}</h2>
{% if m.intro %}<p>{{ m.intro }}</p>{% endif %}
{% if lines %}<ul>
{% for line in lines %}<li>{{ line.text }}
{%- if url(line) %} <a href="{{ url(line) }}">{{ line.link.label }}</a>{% endif %}</li>
{% endfor %}</ul>{% endif %}
{% if m.link and safe(m.link.url) %}
<p><a href="{{ safe(m.link.url) }}">{{ m.link.label }}</a></p>
{% endif %}
{% if m.footer %}<p style="color: #666; font-size: 0.9em">{{ m.footer }}</p>{% endif %}
</body></html>
"""


@cache
def _html_template() -> Template:
    """The mail's HTML template, compiled from the constant above at first use: a constant made
    lazily (every call returns the same template), not state a call can change."""
    env = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True)
    return env.from_string(_HTML)


def _line_url(line: Line) -> str | None:
    return safe_url(line.link.url) if line.link is not None else None


def mail(message: Message) -> Mail:
    """The message as an e-mail: HTML autoescaped by Jinja2, text with control characters
    dropped; links only when they are http(s)."""
    lines = message.shown_lines()
    text = [plain(message.title), ""]
    if message.intro:
        text += [plain(message.intro, one_line=False), ""]
    for line in lines:
        url = _line_url(line)
        text.append(f"- {plain(line.text)}" + (f" <{url}>" if url else ""))
    if lines:
        text.append("")
    main = safe_url(message.link.url) if message.link is not None else None
    if message.link is not None and main:
        text += [f"{plain(message.link.label)}: {main}", ""]
    if message.footer:
        text += ["-- ", plain(message.footer, one_line=False)]
    html = _html_template().render(m=message, lines=lines, url=_line_url, safe=safe_url)
    return Mail(plain(message.title)[:200], "\n".join(text).rstrip() + "\n", html)
