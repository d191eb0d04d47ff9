"""The records behind one KPI figure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from tasuki.kpis.books import book, company_tz
from tasuki.kpis.engine import (
    Subjects,
    explain_rows,
    kpi_figures,
)
from tasuki.kpis.periods import declared
from tasuki.kpis.query import Context, EventRow
from tasuki.kpis.schema import Kpi
from tasuki.settings import Settings
from tasuki.store.db import Store


@dataclass(frozen=True)
class Explanation:
    """A figure and the events behind it."""

    kpi: Kpi
    period: str
    person: str | None
    value: float | None
    numerator: float | None
    denominator: float | None
    events: list[EventRow]


def explain(
    store: Store, settings: Settings, kpi_id: str, period: str, person: str | None = None
) -> Explanation:
    """The records behind ``kpi_id``'s figure for ``person`` (``None``: the org) in ``period``
    as declared (:func:`~tasuki.kpis.periods.declared`: a quarter whole); the figure is computed
    afresh, not read back."""
    b = book(settings)
    if kpi_id not in b.kpis:
        raise KeyError(f"unknown KPI {kpi_id!r}; known: {', '.join(sorted(b.kpis))}")
    kpi = b.kpis[kpi_id]
    p = declared(period, b.period_kind(kpi), b.fiscal_year_start, company_tz(settings))
    with store.session() as session:
        ctx = Context(session, settings.config, b, settings.config.crm, datetime.now(UTC))
        rows = explain_rows(ctx, kpi, p, person)
        figs = kpi_figures(ctx, kpi, p, Subjects.load(session, ctx.system))
    fig = figs.get(("person", person) if person else ("org", "org"))
    return Explanation(
        kpi,
        p,
        person,
        fig.value if fig else None,
        fig.numerator if fig else None,
        fig.denominator if fig else None,
        rows,
    )
