"""Benchmark: handoffs judged per second by the default rule pack, on one core.

Baselines, measured in the same run on the same records:

- a ``jsonschema`` validator of the subset of the default pack that JSON Schema can say
  (required fields, patterns, minimum lengths), collecting every error as the rule engine does.
  The rule engine does more work per handoff (business-hour SLAs in the Japanese calendar,
  artifacts with time windows, related records, date order) and should be at least 4x faster;
- ``fastjsonschema`` (generated code) on that subset, against tasuki judging the same subset
  written as rules (:data:`SUBSET_RULES`): the compiled rule pack should be at least as fast;
- the interpreted engine (``Rulebook.evaluate_interpreted``), which the compiled functions
  (:mod:`rules.compiler`) replace: what compiling gained.

    .venv/bin/python bench/rules.py [--handoffs 20000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

# Run as a script, this file's folder comes first on sys.path and its name would hide the
# `rules` package; the repository root is what it needs.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]
sys.path.insert(0, os.path.dirname(_here))

import fastjsonschema  # noqa: E402
import jsonschema  # noqa: E402

from rules import Artifact, HandoffContext, Rulebook, load_rulebook  # noqa: E402
from tasuki.calendar import BusinessCalendar  # noqa: E402
from tasuki.catalog import catalog  # noqa: E402
from tasuki.demo.org import INQUIRIES, NOTES  # noqa: E402
from tasuki.settings import builtin_path, load_settings  # noqa: E402

TOKYO = ZoneInfo("Asia/Tokyo")


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def _maybe(rng: random.Random, p: float, value: Any) -> Any:
    return value if rng.random() < p else None


def make_contexts(n: int, seed: int = 1) -> list[HandoffContext]:
    """``n`` handoffs across MK→IS, IS→FS and FS→CS, filled like the demo org (some gaps)."""
    rng = random.Random(seed)
    base = datetime(2025, 1, 6, 9, 0, tzinfo=TOKYO)
    out: list[HandoffContext] = []
    for i in range(n):
        # Aware UTC, as the store hands instants to the pipeline.
        at = (base + timedelta(minutes=rng.randint(0, 60 * 24 * 120))).astimezone(UTC)
        now = at + timedelta(days=rng.randint(0, 20))
        account = {
            "is_target": rng.random() < 0.6,
            "industry": _maybe(rng, 0.9, "SaaS"),
            "employee_band": _maybe(rng, 0.9, "50-299"),
        }
        kind = i % 3
        if kind == 0:
            touch = at + timedelta(minutes=rng.choice([20, 45, 90, 600]))
            record: dict[str, Any] = {
                "company": "株式会社サンプル",
                "email": f"lead{i}@corp.example.jp",
                "phone": _maybe(rng, 0.9, "03-1234-5678"),
                "inquiry": _maybe(rng, 0.8, rng.choice(INQUIRIES)),
                "mql_at": _iso(at),
                "first_touch_at": _maybe(rng, 0.9, _iso(touch)),
            }
            out.append(HandoffContext("MK→IS", "lead", record, at, now, {"account": account}))
        elif kind == 1:
            answered = at + timedelta(hours=rng.choice([1, 5, 30]))
            record = {
                "hearing_notes": _maybe(rng, 0.85, rng.choice(NOTES)),
                "budget": _maybe(rng, 0.8, "年300万円"),
                "authority": _maybe(rng, 0.85, "営業本部長"),
                "need": _maybe(rng, 0.9, "申し送りの標準化"),
                "timeline": _maybe(rng, 0.8, "来期初め"),
                "is_proposal": _maybe(rng, 0.75, "無料トライアルと導入支援"),
                "meeting_date": _maybe(rng, 0.92, _iso(at + timedelta(days=rng.randint(1, 9)))),
                "fs_acceptance": _maybe(rng, 0.8, rng.choice(["Accepted", "Rejected"])),
                "fs_accepted_at": _iso(answered),
                "reject_reason": _maybe(rng, 0.7, "予算未確定のため時期尚早"),
                "amount": rng.choice([None, 1_200_000, 8_000_000]),
                "call_recording_url": None,
            }
            arts = (
                [Artifact("call", f"https://app.miitel.jp/v1/calls/{i}", at - timedelta(hours=2))]
                if rng.random() < 0.8
                else []
            )
            out.append(
                HandoffContext(
                    "IS→FS", "deal", record, at, now, {"account": account}, artifacts=arts
                )
            )
        else:
            record = {
                "contract_terms": _maybe(rng, 0.9, "年間契約・自動更新"),
                "success_criteria": _maybe(rng, 0.75, "申し送り漏れゼロ、商談化率+20%"),
                "stakeholders": _maybe(rng, 0.85, "営業本部長、IS責任者"),
                "kickoff_date": _maybe(
                    rng, 0.7, (at + timedelta(days=rng.randint(2, 12))).date().isoformat()
                ),
                "meeting_recording_url": _maybe(rng, 0.75, f"https://zoom.us/rec/share/{i}"),
                "amount": rng.randint(12, 120) * 100_000,
                "created_at": _iso(at - timedelta(days=40)),
                "close_date": at.date().isoformat(),
            }
            out.append(HandoffContext("FS→CS", "deal", record, at, now, {"account": account}))
    return out


# The part of the default pack JSON Schema can express: required / not empty, patterns,
# minimum lengths in characters. Keys absent or null fail, as the rule engine's checks do.
_TEXT: dict[str, Any] = {"type": "string", "pattern": r"\S"}
SCHEMAS: dict[str, dict[str, Any]] = {
    "MK→IS": {
        "properties": {
            "company": _TEXT,
            "email": {"type": "string", "pattern": r"^[^@\s]+@[^@\s]+\.[^@\s]+$"},
            "phone": {"type": "string", "pattern": r"^\+?[0-9][0-9() -]{8,}$"},
            "inquiry": {"type": "string", "minLength": 5},
            "mql_at": _TEXT,
        },
        "required": ["company", "email", "phone", "inquiry", "mql_at"],
    },
    "IS→FS": {
        "properties": {
            "hearing_notes": {"type": "string", "minLength": 20},
            "budget": _TEXT,
            "authority": _TEXT,
            "need": _TEXT,
            "timeline": _TEXT,
            "is_proposal": {"type": "string", "minLength": 5},
        },
        "required": ["hearing_notes", "budget", "authority", "need", "timeline", "is_proposal"],
    },
    "FS→CS": {
        "properties": {
            "contract_terms": _TEXT,
            "success_criteria": {"type": "string", "minLength": 10},
            "stakeholders": _TEXT,
        },
        "required": ["contract_terms", "success_criteria", "stakeholders"],
    },
}


SUBSET_RULES = """
version: 1
rule_sets:
  - boundary: MK→IS
    object: lead
    rules:
      - {id: company, check: required, field: lead.company, severity: error, message: m}
      - {id: email, check: pattern, field: lead.email, regex: '^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$',
         severity: error, message: m}
      - {id: phone, check: pattern, field: lead.phone, regex: '^\\+?[0-9][0-9() -]{8,}$',
         severity: error, weight: 2, message: m}
      - {id: inquiry, check: length, field: lead.inquiry, min: 5, severity: warn, message: m}
      - {id: mql, check: required, field: lead.mql_at, severity: error, message: m}
  - boundary: IS→FS
    object: deal
    rules:
      - {id: notes, check: length, field: deal.hearing_notes, min: 20, severity: error,
         weight: 3, message: m}
      - {id: budget, check: required, field: deal.budget, severity: warn, message: m}
      - {id: authority, check: required, field: deal.authority, severity: warn, message: m}
      - {id: need, check: required, field: deal.need, severity: warn, message: m}
      - {id: timeline, check: required, field: deal.timeline, severity: warn, message: m}
      - {id: proposal, check: length, field: deal.is_proposal, min: 5, severity: warn, message: m}
  - boundary: FS→CS
    object: deal
    rules:
      - {id: terms, check: required, field: deal.contract_terms, severity: error, weight: 2,
         message: m}
      - {id: criteria, check: length, field: deal.success_criteria, min: 10, severity: error,
         weight: 3, message: m}
      - {id: stakeholders, check: required, field: deal.stakeholders, severity: warn, message: m}
"""
"""The rules of the default pack that :data:`SCHEMAS` says in JSON Schema, as a rule pack."""


def _rate(run: Callable[[], object], n: int, repeat: int) -> float:
    """Best of ``repeat`` runs, in items per second."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
    return n / best


@dataclass
class Rates:
    """Handoffs per second of each contender, all measured in one run on the same records."""

    pack: float
    pack_interpreted: float
    jsonschema: float
    subset: float
    fastjsonschema: float


def bench(n: int, repeat: int) -> Rates:
    """The rates of the default pack (compiled and interpreted), the jsonschema subset, the
    subset as rules, and fastjsonschema on it."""
    config = load_settings({}).config
    rulebook: Rulebook = load_rulebook([builtin_path("rules/default.yaml")], catalog(config))
    with tempfile.TemporaryDirectory() as tmp:
        subset_file = Path(tmp) / "subset.yaml"
        subset_file.write_text(SUBSET_RULES, encoding="utf-8")
        subset: Rulebook = load_rulebook([subset_file], catalog(config))
    calendar = BusinessCalendar.from_config(config.calendar)
    contexts = make_contexts(n)
    validators = {
        b: jsonschema.Draft202012Validator(s, format_checker=None) for b, s in SCHEMAS.items()
    }
    pairs: Sequence[tuple[jsonschema.Draft202012Validator, Any]] = [
        (validators[c.boundary], c.record) for c in contexts
    ]
    fast = {b: fastjsonschema.compile(s) for b, s in SCHEMAS.items()}
    fast_pairs = [(fast[c.boundary], c.record) for c in contexts]
    invalid = fastjsonschema.JsonSchemaException

    def judged_by(
        evaluate: Callable[[HandoffContext, BusinessCalendar], object],
    ) -> Callable[[], None]:
        def run() -> None:
            for c in contexts:
                evaluate(c, calendar)

        return run

    def schema() -> None:
        for v, rec in pairs:
            list(v.iter_errors(rec))

    def fast_schema() -> None:
        for validate, rec in fast_pairs:
            try:
                validate(rec)
            except invalid:
                pass

    # Warm the calendar's year tables and regex caches, as a running worker has them.
    judged_by(rulebook.evaluate)()
    judged_by(rulebook.evaluate_interpreted)()
    for c in contexts:
        assert rulebook.evaluate(c, calendar) == rulebook.evaluate_interpreted(c, calendar)
    return Rates(
        pack=_rate(judged_by(rulebook.evaluate), n, repeat),
        pack_interpreted=_rate(judged_by(rulebook.evaluate_interpreted), n, repeat),
        jsonschema=_rate(schema, n, max(1, repeat // 2)),
        subset=_rate(judged_by(subset.evaluate), n, repeat),
        fastjsonschema=_rate(fast_schema, n, repeat),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--handoffs", type=int, default=30_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):  # one core, as the targets say
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    r = bench(args.handoffs, args.repeat)
    print(f"default rule pack, compiled    : {r.pack:>10,.0f} handoffs/s")
    print(f"default rule pack, interpreted : {r.pack_interpreted:>10,.0f} handoffs/s")
    print(f"jsonschema subset              : {r.jsonschema:>10,.0f} handoffs/s")
    print(f"subset as rules, compiled      : {r.subset:>10,.0f} handoffs/s")
    print(f"fastjsonschema subset          : {r.fastjsonschema:>10,.0f} handoffs/s")
    pack_ratio = r.pack / r.jsonschema
    subset_ratio = r.subset / r.fastjsonschema
    print(f"pack / jsonschema              : {pack_ratio:>10.2f}x (target >= 4)")
    print(f"subset / fastjsonschema        : {subset_ratio:>10.2f}x (target >= 1)")
    print(f"compiled / interpreted         : {r.pack / r.pack_interpreted:>10.2f}x")
    met = pack_ratio >= 4 and subset_ratio >= 1
    print("targets met" if met else "TARGETS NOT MET")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
