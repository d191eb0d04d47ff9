"""A small org whose every console figure is computed by hand in the tests.

October 2026 (Asia/Tokyo), default config and rules:

- MK→IS: four leads from Aiko Mori (MK, team East): L1 passed, L2 warned, L3 failed
  (``mk-is.first-touch-sla`` and ``mk-is.phone``), all to Ken Sato (IS, team Tokyo); L4 not
  judged yet, to Mei Ito (IS, team Osaka).
- IS→FS: two deals from Ken Sato to Noah Bennett (FS): D1 passed, accepted 3 business hours
  after the handoff; D2 failed (``is-fs.fs-answer-sla``), accepted 10 business hours after.
- Outside October: L5 handed at 2026-09-30 23:30 JST (September) and L6 at 2026-11-01 01:00
  JST (November), both MK→IS and passed.
- KPI values for Aiko: mk_mqls 10 (target 20), mk_mql_to_meeting 0.2 (0.4),
  mk_is_pass_rate 0.8 (0.8): own 50%, neighbour (3×50% + 1×100%) / 4 = 62.5%, attainment
  0.6 × 50% + 0.4 × 62.5% = 55%.

Lead names are hostile (a script tag, an attribute breaking out) and one company starts a
spreadsheet formula: every page, CSV and the static report must show them as text.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from tasuki.store.db import Store
from tasuki.store.models import Handoff, KpiValue, Person, Record, Verdict, Violation

TOKYO = ZoneInfo("Asia/Tokyo")
SYSTEM = "local"
SCRIPT_NAME = '<script>alert("x")</script>'
IMG_NAME = '"><img src=x onerror=alert(1)>'
FORMULA_COMPANY = '=HYPERLINK("http://evil.example","click")'


def jst(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """An instant given in Tokyo time, in 2026."""
    return datetime(2026, month, day, hour, minute, tzinfo=TOKYO).astimezone(UTC)


PEOPLE = [
    ("u-mk1", "Aiko Mori", "MK", "East"),
    ("u-is1", "Ken Sato", "IS", "Tokyo"),
    ("u-is2", "Mei Ito", "IS", "Osaka"),
    ("u-fs1", "Noah Bennett", "FS", None),
]


def seed(store: Store) -> dict[str, int]:
    """Write the org; returns handoff ids by record id."""
    ids: dict[str, int] = {}
    with store.session() as s:
        for uid, name, dept, team in PEOPLE:
            s.add(Person(system=SYSTEM, user_id=uid, name=name, department=dept, team=team))
        leads = {
            "L1": {"name": SCRIPT_NAME, "company": "Acme", "email": "l1@acme.example"},
            "L2": {"name": IMG_NAME, "company": "Beta", "email": "l2@beta.example"},
            "L3": {"name": "Sato Jiro", "company": FORMULA_COMPANY, "email": "l3@x.example"},
            "L4": {"name": "Kim Lee", "company": "Delta", "email": "l4@delta.example"},
            "L5": {"name": "Early", "company": "Sep", "email": "l5@sep.example"},
            "L6": {"name": "Late", "company": "Nov", "email": "l6@nov.example"},
        }
        for rid, fields in leads.items():
            s.add(Record(system=SYSTEM, object="lead", record_id=rid, fields=fields))
        deals = {
            "D1": {"name": "Acme renewal", "fs_accepted_at": jst(10, 6, 13).isoformat()},
            "D2": {"name": "Beta expansion", "fs_accepted_at": jst(10, 7, 11).isoformat()},
        }
        for rid, fields in deals.items():
            s.add(Record(system=SYSTEM, object="deal", record_id=rid, fields=fields))
        plan = [
            ("MK→IS", "lead", "L1", "u-mk1", "u-is1", jst(10, 5, 11), "passed", []),
            ("MK→IS", "lead", "L2", "u-mk1", "u-is1", jst(10, 6, 11), "warned", []),
            (
                "MK→IS",
                "lead",
                "L3",
                "u-mk1",
                "u-is1",
                jst(10, 7, 11),
                "failed",
                [("mk-is.first-touch-sla", "no first touch"), ("mk-is.phone", "no phone")],
            ),
            ("MK→IS", "lead", "L4", "u-mk1", "u-is2", jst(10, 8, 11), None, []),
            ("IS→FS", "deal", "D1", "u-is1", "u-fs1", jst(10, 6, 10), "passed", []),
            (
                "IS→FS",
                "deal",
                "D2",
                "u-is1",
                "u-fs1",
                jst(10, 6, 10),
                "failed",
                [("is-fs.fs-answer-sla", "FS did not accept in time")],
            ),
            ("MK→IS", "lead", "L5", "u-mk1", "u-is1", jst(9, 30, 23, 30), "passed", []),
            ("MK→IS", "lead", "L6", "u-mk1", "u-is1", jst(11, 1, 1), "passed", []),
        ]
        for boundary, obj, rid, sender, receiver, at, outcome, violations in plan:
            sd, rd = boundary.split("→")
            h = Handoff(
                system=SYSTEM,
                boundary=boundary,
                object=obj,
                record_id=rid,
                sender_id=sender,
                receiver_id=receiver,
                sender_department=sd,
                receiver_department=rd,
                handed_at=at,
            )
            s.add(h)
            s.flush()
            ids[rid] = h.id
            if outcome is not None:
                v = Verdict(handoff_id=h.id, outcome=outcome, score=100 - 20 * len(violations))
                v.violations = [
                    Violation(rule_id=r, severity="error", message=m) for r, m in violations
                ]
                s.add(v)
        for kpi, value in (("mk_mqls", 10.0), ("mk_mql_to_meeting", 0.2), ("mk_is_pass_rate", 0.8)):
            for kind, subject in (("person", "u-mk1"), ("department", "MK")):
                s.add(
                    KpiValue(
                        system=SYSTEM,
                        kpi_id=kpi,
                        subject_kind=kind,
                        subject_id=subject,
                        period="2026-10",
                        value=value,
                    )
                )
        s.flush()
    return ids
