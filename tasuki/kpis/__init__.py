"""Cross-department KPIs: each person's goal = own department's KPI + the neighbour's.

- :func:`compute` keeps ``kpi_values`` up to date in SQL on the store, per person, team,
  department and the whole org, for the periods changes touched.
- :func:`person_summary` gives each person's own and neighbour figures against target, and one
  weighted attainment (the demo's table and the HTML report).
- :func:`desired_values` turns them into CRM user fields for the single write-back path.
- :func:`explain` lists the records behind one figure.

The KPI definitions (``kpis:`` files in ``tasuki.yaml``) are described in
:mod:`tasuki.kpis.schema`; the semantics of the computation in :mod:`tasuki.kpis.engine`.
"""

from __future__ import annotations

from tasuki.kpis.books import book, company_tz, current_period
from tasuki.kpis.computation import WATERMARK, compute
from tasuki.kpis.crm_values import desired_values, pushed_periods, row_key
from tasuki.kpis.explanation import Explanation, explain
from tasuki.kpis.schema import KpiBook, load_kpibook
from tasuki.kpis.summary import ATTAINMENT_CAP, KpiFigure, PersonKpis, person_summary

__all__ = [
    "ATTAINMENT_CAP",
    "WATERMARK",
    "Explanation",
    "KpiBook",
    "KpiFigure",
    "PersonKpis",
    "book",
    "company_tz",
    "compute",
    "current_period",
    "desired_values",
    "explain",
    "load_kpibook",
    "person_summary",
    "pushed_periods",
    "row_key",
]
