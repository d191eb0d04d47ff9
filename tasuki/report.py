"""The HTML report: one self-contained page (no scripts, no external assets) with the funnel,
each boundary's verdicts, and each person's own and neighbour KPIs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any

from tasuki.overview import BoundaryStats

_STYLE = """
body{font-family:system-ui,'Hiragino Sans','Noto Sans JP',sans-serif;margin:2rem;color:#1f2933}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0}
td,th{padding:.3rem .7rem;border-bottom:1px solid #e4e7eb}
th{text-align:left;background:#f5f7fa}td.n{text-align:right;font-variant-numeric:tabular-nums}
.pass{fill:#2f9e44}.warn{fill:#f59f00}.fail{fill:#e03131}.bar{fill:#4263eb}
small{color:#616e7c}
"""


@dataclass(frozen=True)
class ReportData:
    """Everything the page shows."""

    title: str
    generated_at: datetime
    funnel: Sequence[tuple[str, int]]
    boundaries: Sequence[BoundaryStats]
    people: Sequence[Any]
    """``tasuki.kpis.PersonKpis`` rows: name, department, own, neighbour, attainment."""
    period: str
    writes: dict[str, int]


def _pct(share: float | None) -> str:
    return "–" if share is None else f"{100 * share:.0f}%"


def _funnel_svg(funnel: Sequence[tuple[str, int]]) -> str:
    top = max((n for _, n in funnel), default=0) or 1
    rows = []
    for i, (label, n) in enumerate(funnel):
        width = 420 * n / top
        y = i * 30
        rows.append(
            f'<text x="0" y="{y + 18}">{escape(label)}</text>'
            f'<rect class="bar" x="150" y="{y + 4}" width="{width:.1f}" height="20"/>'
            f'<text x="{155 + width:.1f}" y="{y + 18}">{n}</text>'
        )
    return f'<svg width="640" height="{30 * len(funnel)}" role="img">{"".join(rows)}</svg>'


def _verdict_svg(stats: Sequence[BoundaryStats]) -> str:
    rows = []
    for i, s in enumerate(stats):
        total = s.passed + s.warned + s.failed or 1
        x = 80.0
        y = i * 30
        judged = s.passed + s.warned + s.failed
        rows.append(f'<text x="0" y="{y + 18}">{escape(s.boundary)}</text>')
        for cls, n in (("pass", s.passed), ("warn", s.warned), ("fail", s.failed)):
            w = 420 * n / total
            rows.append(
                f'<rect class="{cls}" x="{x:.1f}" y="{y + 4}" width="{w:.1f}" height="20">'
                f"<title>{cls}: {n}</title></rect>"
            )
            x += w
        if judged:
            share = 100 * (s.passed + s.warned) / judged
            rows.append(f'<text x="{x + 6:.1f}" y="{y + 18}">{share:.0f}% pass or warn</text>')
    return f'<svg width="760" height="{30 * len(stats)}" role="img">{"".join(rows)}</svg>'


def _attainment_svg(people: Sequence[Any]) -> str:
    """One bar per person: goal attainment (own + neighbour KPIs), with the 100% line."""
    scale = 280  # pixels for 100%; the cap of 150% fits
    left = 200
    rows = []
    for i, p in enumerate(people):
        y = i * 24
        rows.append(
            f'<text x="0" y="{y + 16}">{escape(str(p.department))} {escape(str(p.name))}</text>'
        )
        if p.attainment is None:
            rows.append(f'<text x="{left}" y="{y + 16}">–</text>')
            continue
        width = scale * p.attainment
        cls = "pass" if p.attainment >= 1 else ("warn" if p.attainment >= 0.7 else "fail")
        rows.append(
            f'<rect class="{cls}" x="{left}" y="{y + 3}" width="{width:.1f}" height="18">'
            f"<title>{escape(str(p.name))}: {_pct(p.attainment)}</title></rect>"
            f'<text x="{left + width + 6:.1f}" y="{y + 16}">{_pct(p.attainment)}</text>'
        )
    height = 24 * len(people)
    rows.append(
        f'<line x1="{left + scale}" y1="0" x2="{left + scale}" y2="{height}" '
        'stroke="#333" stroke-dasharray="4 3"/>'
    )
    return f'<svg width="760" height="{height}" role="img">{"".join(rows)}</svg>'


def render(data: ReportData) -> str:
    """The report as one HTML document."""
    parts = [
        "<!doctype html><html lang='ja'><head><meta charset='utf-8'>",
        f"<title>{escape(data.title)}</title>",
        f"<style>{_STYLE}</style></head><body><h1>{escape(data.title)}</h1>",
        f"<small>generated {escape(data.generated_at.isoformat(timespec='seconds'))}</small>",
        "<h2>Funnel</h2>",
        _funnel_svg(data.funnel),
        "<h2>Handoffs by boundary</h2>",
        _verdict_svg(data.boundaries),
        "<p><small><span style='color:#2f9e44'>■</span> passed "
        "<span style='color:#f59f00'>■</span> warned "
        "<span style='color:#e03131'>■</span> failed (share of judged handoffs)</small></p>",
        "<table><tr><th>boundary</th><th>handoffs</th><th>passed</th><th>warned</th><th>failed</th>"
        "<th>most common violations</th></tr>",
    ]
    for s in data.boundaries:
        top = "<br>".join(
            f"{escape(m)} <small>({escape(r)}) ×{n}</small>" for r, m, n in s.top_violations
        )
        parts.append(
            f"<tr><td>{escape(s.boundary)}</td><td class=n>{s.handoffs}</td>"
            f"<td class=n>{s.passed}</td>"
            f"<td class=n>{s.warned}</td><td class=n>{s.failed}</td><td>{top}</td></tr>"
        )
    parts.append("</table>")
    parts.append(f"<h2>People: own and neighbour KPIs, {escape(data.period)}</h2>")
    parts.append(_attainment_svg(data.people))
    parts.append(
        "<p><small>goal attainment: own and neighbour KPIs against target, weighted; the "
        "dashed line is 100%</small></p>"
    )
    parts.append(
        "<table><tr><th>person</th><th>dept</th><th>own KPI</th><th>neighbour KPI</th>"
        "<th>attainment</th></tr>"
    )
    for p in data.people:

        def cell(items: Sequence[Any]) -> str:
            return "<br>".join(
                f"{escape(str(k.label))}: {escape(k.shown(k.value))} / {escape(k.shown(k.target))}"
                for k in items
            )

        parts.append(
            f"<tr><td>{escape(str(p.name))}</td><td>{escape(str(p.department))}</td>"
            f"<td>{cell(p.own)}</td><td>{cell(p.neighbour)}</td>"
            f"<td class=n>{_pct(p.attainment)}</td></tr>"
        )
    parts.append("</table><h2>Write-back</h2><table>")
    for key, value in data.writes.items():
        parts.append(f"<tr><th>{escape(key)}</th><td class=n>{value}</td></tr>")
    parts.append("</table></body></html>")
    return "\n".join(parts)
