"""The console's pages: overview, boundaries, handoffs (list and one), people, explain.

Each page takes its period from ``?period=`` (default: the last closed period of the KPI
book's kind) and answers ``?format=csv&table=NAME`` with one of its tables as CSV. Bad input is
a page saying what was wrong, 400 or 404, never a 500; nothing a request carries is echoed
unescaped (templates autoescape).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import Response, abort, current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from rules.checks.times import Sla
from tasuki.alarms import Alarm, raised
from tasuki.calendar import BusinessCalendar
from tasuki.console import figures as fig
from tasuki.console.app import (
    LANGUAGE_COOKIE,
    LANGUAGES,
    bp,
    console_settings,
    console_store,
    current_user,
    login_required,
    ops_required,
)
from tasuki.console.csvfile import to_csv
from tasuki.console.handoff_list import BadFilter, handoff_page, parse_filters
from tasuki.console.people import department_rows, person_rows
from tasuki.console.periods import Period, UnknownPeriod, current, resolve, trailing
from tasuki.judging import SLA_SWEEP_WINDOW
from tasuki.kpis.books import book, company_tz
from tasuki.kpis.explanation import explain as explain_figure
from tasuki.kpis.summary import person_summary
from tasuki.meeting.answer import AnswerSla, answer_slas
from tasuki.meeting.build import handoff_item
from tasuki.settings import Settings
from tasuki.startup import load_rules
from tasuki.store.models import utcnow
from webhooks.shared import services
from worker import enqueue_kpis


def _rulebook(settings: Settings) -> Any:
    cached = current_app.extensions.get("tasuki_console_rules")
    if cached is None:
        cached = load_rules(settings)
        current_app.extensions["tasuki_console_rules"] = cached
    return cached


def _boundaries(settings: Settings) -> list[str]:
    return [b.id for b in settings.config.boundaries]


def _period(settings: Settings) -> Period:
    b = book(settings)
    try:
        return resolve(
            request.args.get("period"), b.fiscal_year_start, company_tz(settings), b.period
        )
    except UnknownPeriod:
        abort(404, description="unknown_period")


def _csv(name: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Response:
    period = request.args.get("period") or "latest"
    filename = f"tasuki-{name}-{period}.csv".replace("/", "-")
    return Response(
        to_csv(header, rows),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _wants_csv() -> str | None:
    if request.args.get("format") != "csv":
        return None
    return request.args.get("table") or ""


def _sla_setup(settings: Settings) -> tuple[dict[str, list[str]], dict[str, AnswerSla]]:
    rulebook = _rulebook(settings)
    sla_rules: dict[str, list[str]] = {}
    for rs in rulebook.rule_sets:
        for rule in rs.rules:
            if isinstance(rule.check, Sla):
                sla_rules.setdefault(rs.boundary, []).append(rule.id)
    answers: dict[str, AnswerSla] = {}
    for boundary in settings.config.boundaries:
        found = answer_slas(rulebook, boundary)
        if found:
            answers[boundary.id] = found[0]
    return sla_rules, answers


@dataclass(frozen=True)
class TrendPoint:
    """One period of the trend chart."""

    period: str
    records: dict[str, int]
    pass_rates: dict[str, float | None]


def _alarms(settings: Settings, period: str) -> list[Alarm]:
    """The partial-optimisation alarms stored for ``period`` (:func:`tasuki.alarms.raised`)."""
    with console_store().session() as s:
        return raised(s, period, system=settings.config.crm)


SETTLED_AFTER = SLA_SWEEP_WINDOW + timedelta(days=1)
"""A period that ended this long ago no longer changes by itself (the SLA sweep re-judges
handoffs of the last :data:`~tasuki.judging.SLA_SWEEP_WINDOW` only)."""
TREND_CACHE_SECONDS = 300.0
"""How long a process keeps the trend figures of settled periods (a rules change that re-judges
old handoffs shows within this time)."""
_TREND_CACHE_SIZE = 64


def _trend(
    session: Session, system: str, boundaries: list[str], periods: list[Period]
) -> list[tuple[dict[str, int], dict[str, fig.Tally]]]:
    """:func:`figures.trend` of ``periods``; the settled ones kept for a few minutes per app."""
    cache: dict[Any, tuple[float, Any]] = current_app.extensions.setdefault(
        "tasuki_console_trend", {}
    )
    cutoff = utcnow() - SETTLED_AFTER
    settled = [p for p in periods if p.end <= cutoff]
    spans = [(p.start, p.end) for p in settled]
    key = (system, tuple(boundaries), tuple(spans))
    hit = cache.get(key)
    if hit is not None and hit[0] > time.monotonic():
        old = hit[1]
    else:
        old = fig.trend(session, system, boundaries, spans)
        if len(cache) >= _TREND_CACHE_SIZE:
            cache.clear()
        cache[key] = (time.monotonic() + TREND_CACHE_SECONDS, old)
    recent = [(p.start, p.end) for p in periods[len(settled) :]]
    return [*old, *fig.trend(session, system, boundaries, recent)]


def overview_data(settings: Settings, period: Period) -> dict[str, Any]:
    """What the overview shows for ``period``."""
    b = book(settings)
    tz = company_tz(settings)
    boundaries = _boundaries(settings)
    system = settings.config.crm
    periods = trailing(period, b.fiscal_year_start, tz)
    now = current(b.fiscal_year_start, tz, b.period)
    with console_store().session() as s:
        figures = _trend(s, system, boundaries, periods)
        now_records = fig.records_handed(s, system, now.start, now.end, boundaries)
    records, tallies = figures[-1]  # the chosen period is the trend's last
    trend = [
        TrendPoint(p.name, records_of, {k: v.pass_rate for k, v in tallies_of.items()})
        for p, (records_of, tallies_of) in zip(periods, figures, strict=True)
    ]
    return {
        "period": period,
        "steps": fig.funnel(records, boundaries),
        "tallies": tallies,
        "now": now,
        "now_steps": fig.funnel(now_records, boundaries),
        "trend": trend,
        "boundaries": boundaries,
        "alarms": _alarms(settings, period.name),
    }


@bp.get("/")
@login_required
def overview() -> ResponseReturnValue:
    """The funnel, the pass rate per boundary, month to date with its pace, and the trend."""
    settings = console_settings()
    period = _period(settings)
    data = overview_data(settings, period)
    steps, tallies, trend = data["steps"], data["tallies"], data["trend"]
    boundaries = data["boundaries"]
    table = _wants_csv()
    if table == "funnel":
        return _csv(
            "funnel",
            ["period", "boundary", "records", "conversion"],
            [(period.name, st.boundary, st.records, st.conversion) for st in steps],
        )
    if table == "pass_rates":
        return _csv(
            "pass-rates",
            ["period", "boundary", "handoffs", "passed", "warned", "failed", "pass_rate"],
            [
                (period.name, k, t.handoffs, t.passed, t.warned, t.failed, t.pass_rate)
                for k, t in tallies.items()
            ],
        )
    if table == "trend":
        return _csv(
            "trend",
            ["period", "boundary", "records", "pass_rate"],
            [
                (tp.period, k, tp.records.get(k, 0), tp.pass_rates.get(k))
                for tp in trend
                for k in boundaries
            ],
        )
    if table is not None:
        abort(404, description="unknown_table")
    return render_template("console/overview.html", **data)


def boundary_data(settings: Settings, period: Period) -> dict[str, Any]:
    """What the boundaries page shows for ``period``."""
    sla_rules, answers = _sla_setup(settings)
    calendar = current_app.extensions.get("tasuki_console_calendar")
    if calendar is None:
        calendar = BusinessCalendar.from_config(settings.config.calendar)
        current_app.extensions["tasuki_console_calendar"] = calendar
    with console_store().session() as s:
        figures = fig.boundary_figures(
            s,
            settings.config.crm,
            _boundaries(settings),
            period.start,
            period.end,
            sla_rules=sla_rules,
            answer_slas=answers,
            calendar=calendar,
        )
    return {"period": period, "figures": figures}


def people_data(settings: Settings, period: Period) -> dict[str, Any]:
    """What the people page shows for ``period``."""
    return {
        "period": period,
        "people": person_summary(console_store(), settings, period.name),
        "groups": department_rows(console_store(), settings, period.name),
        "alarms": _alarms(settings, period.name),
    }


@bp.get("/boundaries")
@login_required
def boundaries() -> ResponseReturnValue:
    """Per boundary: volume, verdicts, SLA attainment, time to accept, top violations, and
    the breakdown by sender and receiver."""
    settings = console_settings()
    period = _period(settings)
    figures = boundary_data(settings, period)["figures"]
    table = _wants_csv()
    if table == "boundaries":
        return _csv(
            "boundaries",
            [
                "period",
                "boundary",
                "handoffs",
                "records",
                "passed",
                "warned",
                "failed",
                "unjudged",
                "sla_attainment",
                "accept_median_hours",
                "accept_p90_hours",
            ],
            [
                (
                    period.name,
                    f.boundary,
                    f.tally.handoffs,
                    f.records,
                    f.tally.passed,
                    f.tally.warned,
                    f.tally.failed,
                    f.tally.unjudged,
                    f.sla_attainment,
                    f.accept_median,
                    f.accept_p90,
                )
                for f in figures
            ],
        )
    if table == "violations":
        return _csv(
            "violations",
            ["period", "boundary", "rule", "message", "handoffs"],
            [(period.name, f.boundary, r, m, n) for f in figures for r, m, n in f.top_violations],
        )
    if table == "breakdown":
        return _csv(
            "breakdown",
            [
                "period",
                "boundary",
                "side",
                "kind",
                "id",
                "name",
                "handoffs",
                "passed",
                "warned",
                "failed",
            ],
            [
                (
                    period.name,
                    f.boundary,
                    side,
                    r.kind,
                    r.key,
                    r.name,
                    r.tally.handoffs,
                    r.tally.passed,
                    r.tally.warned,
                    r.tally.failed,
                )
                for f in figures
                for side, rows in (("sender", f.senders), ("receiver", f.receivers))
                for r in rows
            ],
        )
    if table is not None:
        abort(404, description="unknown_table")
    return render_template("console/boundaries.html", period=period, figures=figures)


@bp.get("/handoffs")
@login_required
def handoffs() -> ResponseReturnValue:
    """The filterable, paginated list of handoffs."""
    settings = console_settings()
    period = _period(settings)
    try:
        filters = parse_filters(request.args, _boundaries(settings))
    except BadFilter as exc:
        return render_template(
            "console/error.html", status=400, message="bad_filter", detail=str(exc)
        ), 400
    with console_store().session() as s:
        page = handoff_page(s, settings.config.crm, filters, period.start, period.end)
    if filters.page > page.pages:
        abort(404, description="page_beyond_end")
    if _wants_csv() == "handoffs":
        return _csv(
            "handoffs",
            [
                "id",
                "boundary",
                "object",
                "record_id",
                "name",
                "company",
                "sender",
                "receiver",
                "handed_at",
                "verdict",
                "score",
            ],
            [
                (
                    r.id,
                    r.boundary,
                    r.object,
                    r.record_id,
                    r.title,
                    r.company,
                    r.sender,
                    r.receiver,
                    r.handed_at.isoformat(),
                    r.outcome,
                    r.score,
                )
                for r in page.rows
            ],
        )
    return render_template(
        "console/handoffs.html",
        period=period,
        filters=filters,
        page=page,
        boundaries=_boundaries(settings),
    )


@bp.get("/handoffs/<int:handoff_id>")
@login_required
def handoff(handoff_id: int) -> ResponseReturnValue:
    """One handoff: the packet, the verdict rule by rule, the SLA clock, recordings, CRM link."""
    settings = console_settings()
    item = handoff_item(console_store(), settings, handoff_id, rulebook=_rulebook(settings))
    if item is None:
        abort(404, description="no_handoff")
    if _wants_csv() == "verdict":
        findings = item.verdict.findings if item.verdict else ()
        return _csv(
            f"handoff-{handoff_id}",
            ["rule", "severity", "message"],
            [(f.rule_id, f.severity, f.message) for f in findings],
        )
    return render_template("console/handoff.html", item=item)


@bp.get("/people")
@login_required
def people() -> ResponseReturnValue:
    """Own and neighbour KPIs against target with attainment, per person, team, department."""
    settings = console_settings()
    period = _period(settings)
    data = people_data(settings, period)
    summary, groups = data["people"], data["groups"]
    table = _wants_csv()
    if table == "people":
        return _csv(
            "people",
            [
                "period",
                "person",
                "department",
                "part",
                "kpi",
                "kpi_period",
                "value",
                "target",
                "attainment",
                "overall_attainment",
            ],
            person_rows(summary),
        )
    if table == "groups":
        return _csv(
            "teams-departments",
            ["period", "kind", "subject", "kpi", "value", "target", "attainment"],
            [
                (g.period, g.kind, g.subject, g.label, g.value, g.target, g.attainment)
                for g in groups
            ],
        )
    if table is not None:
        abort(404, description="unknown_table")
    return render_template("console/people.html", **data)


@bp.get("/explain")
@login_required
def explain() -> ResponseReturnValue:
    """The records behind one KPI figure of a person (or the org)."""
    settings = console_settings()
    period = _period(settings)
    kpi_id = request.args.get("kpi", "")
    person = request.args.get("person") or None
    if kpi_id not in book(settings).kpis:
        abort(404, description="unknown_kpi")
    found = explain_figure(console_store(), settings, kpi_id, period.name, person)
    if _wants_csv() == "events":
        return _csv(
            f"explain-{kpi_id}",
            ["object", "record", "at", "person", "department", "numerator", "denominator"],
            [
                (
                    e.object,
                    e.record_id,
                    str(e.at or ""),
                    e.person,
                    e.department,
                    e.numerator,
                    e.denominator,
                )
                for e in found.events
            ],
        )
    return render_template("console/explain.html", period=period, found=found)


@bp.post("/ops/compute-kpis")
@ops_required
def compute_kpis() -> ResponseReturnValue:
    """Queue a KPI computation now (ops only)."""
    enqueue_kpis(services().queue)
    return render_template("console/done.html", message=_("KPI computation queued.")), 202


@bp.get("/lang/<code>")
def language(code: str) -> ResponseReturnValue:
    """Switch the console's language (kept in a cookie) and go back."""
    if code not in LANGUAGES:
        abort(404, description="unknown_language")
    target = request.args.get("next") or ""
    if not target.startswith("/console") or target.startswith("//"):
        target = url_for("console.overview")
    response = redirect(target)
    response.set_cookie(
        LANGUAGE_COOKIE, code, max_age=365 * 24 * 3600, httponly=True, samesite="Lax"
    )
    return response


@bp.app_context_processor
def _globals() -> dict[str, Any]:
    return {
        "current_user": current_user,
        "languages": LANGUAGES,
        "csv_url": _csv_url,
        "get_locale": get_locale,
    }


def _csv_url(table: str) -> str:
    args: dict[str, Any] = {**(request.view_args or {}), **request.args.to_dict()}
    args.update(format="csv", table=table)
    return url_for(str(request.endpoint), **args)
