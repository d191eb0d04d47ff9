"""What the alarm tests share besides fixtures: constants, factories and helpers (the
fixtures in conftest.py use them too; tests import them from here, never from conftest)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session

from tasuki.settings import Settings
from tasuki.store.db import Store
from tasuki.store.models import Handoff, Person, Record

SYSTEM = "local"


NOW = datetime(2026, 12, 7, 0, 0, tzinfo=UTC)


"""Monday 2026-12-07 09:00 in Tokyo: October's MQLs have had their 30 days to become meetings."""


NAMES = {"M1": "佐藤 愛子", "M2": "Ben Walker", "I1": "鈴木 一郎", "F1": "Fumi Tanaka"}


class Org:
    """People, leads, deals and handoffs of a constructed org."""

    def __init__(self, store: Store, names: dict[str, str] | None = None) -> None:
        self.store = store
        self.leads = 0
        with store.session() as s:
            for uid, dept in (("M1", "MK"), ("M2", "MK"), ("I1", "IS"), ("F1", "FS")):
                name = (names or NAMES).get(uid, NAMES[uid])
                s.add(Person(system=SYSTEM, user_id=uid, name=name, department=dept))

    def mqls(self, sender: str, month: str, count: int, met: int) -> list[str]:
        """``count`` leads ``sender`` handed to IS in ``month`` (``2026-10``), the first ``met``
        of them turned into a meeting FS received; returns the leads' ids."""
        ids = []
        with self.store.session() as s:
            for i in range(count):
                self.leads += 1
                lead = f"L{self.leads:04d}"
                ids.append(lead)
                day = datetime.fromisoformat(f"{month}-{1 + i % 20:02d}T01:00").replace(tzinfo=UTC)
                s.add(Record(system=SYSTEM, object="lead", record_id=lead, fields={}))
                s.add(_handoff("MK→IS", "lead", lead, sender, "I1", day))
                if i < met:
                    self._meeting(s, lead, day.replace(day=day.day + 2))
        return ids

    def meet(self, lead: str, month: str) -> None:
        """IS turns ``lead`` into a meeting on the 25th of ``month``."""
        at = datetime.fromisoformat(f"{month}-25T01:00").replace(tzinfo=UTC)
        with self.store.session() as s:
            self._meeting(s, lead, at)

    def _meeting(self, s: Session, lead: str, at: datetime) -> None:
        deal = "D" + lead[1:]
        s.add(Record(system=SYSTEM, object="deal", record_id=deal, fields={"lead_id": lead}))
        s.add(_handoff("IS→FS", "deal", deal, "I1", "F1", at))


def _handoff(
    boundary: str, obj: str, rid: str, sender: str, receiver: str, at: datetime
) -> Handoff:
    a, b = boundary.split("→")
    return Handoff(
        system=SYSTEM,
        boundary=boundary,
        object=obj,
        record_id=rid,
        sender_id=sender,
        receiver_id=receiver,
        sender_department=a,
        receiver_department=b,
        handed_at=at,
        detected_at=at,
    )


def with_alarms(settings: Settings, folder: Path, text: str) -> Settings:
    """``settings`` reading ``text`` as the ``alarms.yaml`` beside its ``tasuki.yaml``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "alarms.yaml").write_text(text, encoding="utf-8")
    return dataclasses.replace(settings, config_path=folder / "tasuki.yaml")
