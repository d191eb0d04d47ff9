"""Every escape a CRM value goes through before it reaches a person, in one place.

Text in the CRM is written by anyone: a deal named ``<!channel>`` must not ping a Slack channel,
``*bold*`` must not format, ``<script>`` must not run in a mail reader, a ``javascript:`` URL
must not become a link, and a terminal escape sequence must not repaint the terminal. Each
renderer escapes through these helpers and nothing else:

- :func:`plain` for terminals and plain-text mail: control characters dropped;
- :func:`markdown` for Markdown: HTML-significant and Markdown-significant characters escaped;
- :func:`slack_text` for Slack ``plain_text`` objects and :func:`slack_mrkdwn` for the few
  ``mrkdwn`` places a CRM value must go (Slack has no escape for ``*_~`` and the backtick, so
  they become look-alike characters there);
- :func:`safe_url` for every link, whatever the output;
- HTML is escaped by Jinja2's autoescape (:mod:`tasuki.meeting.mail`).
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")
"""Control characters (C0 but tab and newline, DEL, C1: terminal escapes), zero-width and
bidirectional overrides (text that reads differently from what it is)."""
_SPACE_RE = re.compile(r"\s+")
_MARKDOWN_RE = re.compile(r"([\\`*_\[\]|~])")
"""Characters with a meaning inside a Markdown line (CommonMark and GitHub's tables and
strikethrough); CRM values never start a line in tasuki's Markdown, so ``#``, ``-``, ``+`` and
``1.`` cannot make headings or lists."""
_SLACK_LOOKALIKES = str.maketrans({"*": "∗", "_": "ˍ", "~": "∼", "`": "ˋ"})
"""Slack mrkdwn formats with these and offers no escape: look-alikes that do not format."""


def plain(text: str, *, one_line: bool = True) -> str:
    """``text`` without control characters; on one line (whitespace runs → one space) unless
    ``one_line`` is false."""
    text = _CONTROL_RE.sub("", text)
    if one_line:
        return _SPACE_RE.sub(" ", text).strip()
    return text


def markdown(text: str) -> str:
    """``text`` as literal Markdown inside a line: ``&``, ``<``, ``>`` as HTML entities (no raw
    HTML), Markdown punctuation backslash-escaped (no emphasis, code, links or tables)."""
    text = plain(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN_RE.sub(r"\\\1", text)


def slack_text(text: str) -> str:
    """``text`` for a Slack ``plain_text`` object: ``&``, ``<``, ``>`` as entities, as Slack
    asks of all text (so ``<!channel>`` is never a mention)."""
    return plain(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_mrkdwn(text: str) -> str:
    """``text`` for a Slack ``mrkdwn`` object: :func:`slack_text`, and ``* _ ~ ` `` as
    look-alikes so that nothing formats."""
    return slack_text(text).translate(_SLACK_LOOKALIKES)


def safe_url(url: str | None) -> str | None:
    """``url`` when it is an absolute http(s) URL, with characters that could end a link in
    any of the outputs (space, quotes, ``<``, ``>``, ``|``, parentheses) percent-encoded;
    ``None`` otherwise (``javascript:``, relative, empty)."""
    if not url:
        return None
    url = plain(url)
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return quote(url, safe="/:?#[]@!$&*+,;=%~-._")


def slack_link(url: str | None, label: str) -> str:
    """A Slack mrkdwn link ``<url|label>``, or the bare label when the URL is not safe."""
    safe = safe_url(url)
    shown = slack_mrkdwn(label).replace("|", "¦")
    if safe is None:
        return shown
    return f"<{safe.replace('&', '&amp;')}|{shown}>"


def markdown_link(url: str | None, label: str) -> str:
    """A Markdown link ``[label](url)``, or the escaped label when the URL is not safe."""
    safe = safe_url(url)
    return f"[{markdown(label)}]({safe})" if safe else markdown(label)
