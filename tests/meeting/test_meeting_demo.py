"""The demo's next meeting: after the org's last day (or now, when that comes first)."""

from __future__ import annotations

from datetime import date

from tasuki.demo.agenda import next_meeting_of_org, write_next_agenda
from tasuki.settings import Settings
from tasuki.store.db import Store
from tests.meeting.meeting_support import at, build_org


def test_the_next_meeting_after_the_orgs_last_day(settings: Settings) -> None:
    friday, later = date(2026, 6, 12), at("2026-12-01", "12:00")
    assert next_meeting_of_org(settings, friday, later) == date(2026, 6, 15)
    # Before Monday's meeting on Monday itself, "until" being today: Monday's.
    assert next_meeting_of_org(settings, date(2026, 6, 15), at("2026-06-15", "08:00")) == date(
        2026, 6, 15
    )
    # Friday before Marine Day: Tuesday.
    assert next_meeting_of_org(settings, date(2026, 7, 17), later) == date(2026, 7, 21)


def test_the_agenda_is_written_beside_the_report(settings: Settings, sqlite_store: Store) -> None:
    build_org(sqlite_store)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    agenda, path = write_next_agenda(
        sqlite_store, settings, date(2026, 6, 12), now=at("2026-06-13", "12:00")
    )
    assert path == settings.data_dir / "agenda.md"
    assert agenda.day == date(2026, 6, 15)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Handoff meeting IS→FS, Mon 2026-06-15 10:00–10:30 JST\n")
    assert "### 商談 3 — 株式会社サンプル003" in text
