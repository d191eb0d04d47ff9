"""``tasuki report``: the overview, boundaries and people pages of one period in one
self-contained HTML file (styles inline, charts as inline SVG, no script, no link back to a
server), rendered from the console's own templates for people who get a file by mail."""

from __future__ import annotations

import secrets
from dataclasses import replace
from pathlib import Path

from flask import render_template
from pydantic import SecretStr

from tasuki.console.periods import resolve
from tasuki.kpis.books import book, company_tz
from tasuki.settings import Settings
from tasuki.store.db import Store, open_store
from webhooks import create_app


def render_report(
    settings: Settings,
    *,
    period: str | None = None,
    language: str = "ja",
    store: Store | None = None,
) -> str:
    """The report of ``period`` (default: the last closed period) as one HTML document, read
    from ``store`` (default: the one ``settings`` name).

    Raises :class:`~tasuki.console.periods.UnknownPeriod` for a malformed or future period."""
    # lazy: the console's stack (Babel, Authlib, WTF) only when it is used
    from tasuki.console.views import boundary_data, overview_data, people_data

    # The app only renders here: secrets it would check are one-off, never defaults.
    settings = replace(
        settings,
        webhook_secret=settings.webhook_secret or SecretStr(secrets.token_hex(16)),
        ops_token=settings.ops_token or SecretStr(secrets.token_hex(16)),
    )
    b = book(settings)
    chosen = resolve(period, b.fiscal_year_start, company_tz(settings), b.period)
    own = store is None
    store = store or open_store(settings.database_url)
    try:
        app = create_app(settings, store=store)
        with app.test_request_context("/console/report", headers={"Accept-Language": language}):
            return render_template(
                "console/report.html",
                static=True,
                title=f"tasuki · {chosen.name}",
                overview=overview_data(settings, chosen),
                boundary=boundary_data(settings, chosen),
                people=people_data(settings, chosen),
            )
    finally:
        if own:
            store.engine.dispose()


def write_report(
    settings: Settings,
    output: Path,
    *,
    period: str | None = None,
    language: str = "ja",
    store: Store | None = None,
) -> str:
    """Write the report of ``period`` to ``output`` (read from ``store``, default: the one
    ``settings`` name); returns the period's name."""
    html = render_report(settings, period=period, language=language, store=store)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(html, encoding="utf-8")
    marker = 'data-period="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]
