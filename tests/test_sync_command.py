"""``tasuki sync`` on the embedded CRM, through the command line: the dry run's estimate, the
first back-fill keeping history out of the CRM, ``--write-history`` writing it."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import func, select

from connectors.local import LocalCrm
from tasuki.cli import main
from tasuki.demo.org import OrgSpec, generate
from tasuki.settings import Settings
from tasuki.store.db import open_store
from tasuki.store.models import Handoff, Record


def _verdict_fields(settings: Settings) -> int:
    """Records of the embedded CRM with a verdict field written, of those handed over."""
    crm = LocalCrm(settings.data_dir / "crm.db")
    store = open_store(settings.database_url)
    physical = {"lead": "Lead", "deal": "Opportunity"}
    with store.session() as s:
        handed = {(h.object, h.record_id) for h in s.scalars(select(Handoff))}
    store.engine.dispose()
    return sum(
        1 for obj, rid in handed if (crm.get(physical[obj], rid) or {}).get("Tasuki_Verdict__c")
    )


def test_sync_dry_run_then_back_fill_then_history_on_request(
    settings: Settings, tmp_path: Path
) -> None:
    crm = LocalCrm(settings.data_dir / "crm.db")
    generate(crm, settings.config, OrgSpec(seed=3, leads=150, until=date(2025, 3, 14)))
    runner = CliRunner(
        env={"TASUKI_DATA_DIR": str(settings.data_dir), "TASUKI_CONFIG": None, "COLUMNS": "200"}
    )

    dry = runner.invoke(main, ["sync", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    estimated = int(re.search(r"Read calls: about (\d+)", dry.output).group(1))  # type: ignore[union-attr]
    assert "Dry run: no record read, nothing stored" in dry.output
    assert "kept in tasuki, not written" in dry.output and " JST " in dry.output
    store = open_store(settings.database_url)
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Record)) == 0

    real = runner.invoke(main, ["sync"])
    assert real.exit_code == 0, real.output
    made = int(re.search(r"in (\d+) read call\(s\) \(estimated (\d+)\)", real.output).group(1))  # type: ignore[union-attr]
    assert abs(made - estimated) <= 1
    with store.session() as s:
        handoffs = s.scalar(select(func.count()).select_from(Handoff))
    assert handoffs
    assert _verdict_fields(settings) == 0  # history: not written

    again = runner.invoke(main, ["sync", "--write-history"])
    assert again.exit_code == 0, again.output
    assert _verdict_fields(settings) > 0
    store.engine.dispose()
