"""Helpers for the rule tests: catalogue, calendar, rulebooks from inline YAML, brief handoffs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from rules import Artifact, HandoffContext, Rulebook, load_rulebook
from tasuki.calendar import BusinessCalendar
from tasuki.catalog import catalog
from tasuki.settings import Settings, load_settings

if TYPE_CHECKING:
    from tasuki.runtime import Runtime

TOKYO = ZoneInfo("Asia/Tokyo")
CATALOG: Mapping[str, Sequence[str]] = catalog(load_settings({}).config)
"""The logical fields of the shipped tasuki.yaml."""
CALENDAR = BusinessCalendar()
"""Tokyo, 9:00-18:00 Monday to Friday, Japanese public holidays."""


def jst(text: str) -> datetime:
    """'2025-03-10 10:00' in Tokyo time, aware."""
    return datetime.fromisoformat(text).replace(tzinfo=TOKYO)


def write_files(folder: Path, *texts: str) -> list[Path]:
    """Write inline YAML texts to rules0.yaml, rules1.yaml ... in ``folder``."""
    paths = []
    for i, text in enumerate(texts):
        p = folder / f"rules{i}.yaml"
        p.write_text(text, encoding="utf-8")
        paths.append(p)
    return paths


def alias_bomb() -> str:
    """A "billion laughs" rules file: nine levels, each nine aliases of the level before."""
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    lines += [f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]" for p, n in pairwise("abcdefghi")]
    return "\n".join(lines) + "\nrule_sets: []\n"


def rulebook_from(folder: Path, *texts: str) -> Rulebook:
    """Inline YAML texts, written to files, loaded as one rulebook."""
    return load_rulebook(write_files(folder, *texts), CATALOG)


def handoff(
    boundary: str = "IS→FS",
    obj: str = "deal",
    record: Mapping[str, Any] | None = None,
    *,
    at: str = "2025-03-10 10:00",
    now: str | None = None,
    related: Mapping[str, Mapping[str, Any]] | None = None,
    artifacts: Sequence[Artifact] = (),
) -> HandoffContext:
    """A handoff context with Tokyo times written '2025-03-10 10:00'."""
    return HandoffContext(
        boundary=boundary,
        object=obj,
        record=dict(record or {}),
        handed_at=jst(at),
        now=jst(now or at),
        related=dict(related or {}),
        artifacts=tuple(artifacts),
    )


def seed_demo_store(settings: Settings) -> Runtime:
    """The demo org (150 leads up to 2025-03-14) synced into the store by the pipeline's code."""
    from connectors.local import LocalCrm
    from tasuki.demo.org import OrgSpec, generate
    from tasuki.handoffs import detect
    from tasuki.startup import build
    from tasuki.store.models import Record
    from tasuki.sync import reconcile, sync_people

    crm = LocalCrm(settings.data_dir / "crm.db")
    generate(crm, settings.config, OrgSpec(seed=3, leads=150, until=date(2025, 3, 14)))
    rt = build(settings, connector=crm)
    sync_people(rt)
    for logical in ("account", "lead", "deal"):
        reconcile(rt, logical)
    with rt.store.session() as session:
        for logical in ("lead", "deal"):
            ids = list(session.scalars(select(Record.record_id).where(Record.object == logical)))
            detect(session, settings.config, rt.system, logical, ids)
    return rt


def demo_contexts(rt: Runtime, now: datetime) -> list[HandoffContext]:
    """Every stored handoff's context, as the pipeline builds it."""
    from tasuki.handoffs import context_for
    from tasuki.store.models import Handoff

    with rt.store.session() as session:
        return [
            context_for(session, rt.settings.config, h, now)
            for h in session.scalars(select(Handoff).order_by(Handoff.id))
        ]
