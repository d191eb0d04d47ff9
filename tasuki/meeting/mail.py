"""The agenda as an e-mail: subject, plain-text part and HTML part.

Both parts are Jinja2 templates shipped in ``tasuki/meeting/templates``; the HTML one is
autoescaped (every CRM value escaped, however it is written: ``<script>`` stays text), its
links only http(s) (:func:`~tasuki.meeting.escape.safe_url`). The plain-text part is the text
agenda (:func:`~tasuki.meeting.plain.render_text`).
"""

from __future__ import annotations

from functools import cache
from typing import NamedTuple

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from tasuki.meeting import formatting as f
from tasuki.meeting.agenda import Agenda
from tasuki.meeting.escape import plain, safe_url
from tasuki.meeting.plain import render_text


class AgendaEmail(NamedTuple):
    """One agenda mail: its subject (one line), text part and HTML part."""

    subject: str
    text: str
    html: str


def _without_controls(value: object) -> object:
    """Every value the templates print, without control characters (HTML escaping does not
    remove a terminal escape or a bidirectional override); tasuki's own markup passes."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return plain(value, one_line=False)
    return value


@cache
def _environment() -> Environment:
    """The agenda mail's templates, shipped in the package: a constant made at first use (every
    call returns the same environment; nothing a call does changes what the next one renders)."""
    env = Environment(
        loader=PackageLoader("tasuki.meeting", "templates"),
        autoescape=select_autoescape(
            enabled_extensions=("html.j2",), disabled_extensions=("txt.j2",), default=True
        ),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=_without_controls,
    )
    env.globals.update(
        when=f.when,
        clock=f.clock,
        verdict=f.verdict,
        counts=f.counts,
        covers=f.covers,
        title=f.title,
        waiting_heading=f.waiting_heading,
        unfixed_heading=f.UNFIXED_HEADING,
        safe_url=safe_url,
    )
    return env


def subject(agenda: Agenda) -> str:
    """``Handoff meeting IS→FS, Tue 2026-11-24 10:00–10:30 JST: 3 new, 1 waiting, 2 unfixed``."""
    return plain(
        f"{f.title(agenda)}: {len(agenda.items)} new, {len(agenda.waiting)} waiting, "
        f"{len(agenda.unfixed)} unfixed"
    )


def email(agenda: Agenda) -> AgendaEmail:
    """The agenda mail: ``(subject, text, html)``."""
    env = _environment()
    text = env.get_template("agenda.txt.j2").render(body=render_text(agenda))
    html = env.get_template("agenda.html.j2").render(agenda=agenda)
    return AgendaEmail(subject(agenda), text, html)
