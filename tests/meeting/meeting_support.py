"""A small hand-built org in the store: people, deals, handoffs, verdicts, one recording.

The meeting of Monday 2026-06-15 10:00 JST covers Friday 06-12 10:00 to Monday 10:00; the
previous meeting (Friday) covered Thursday 06-11 10:00 to Friday 10:00.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from tasuki.store.db import Store
from tasuki.store.models import Handoff, Person, Record, Recording, Verdict, Violation

TOKYO = ZoneInfo("Asia/Tokyo")
SYSTEM = "local"
MONDAY = date(2026, 6, 15)
"""The meeting the tests build the agenda of."""
SUNDAY_NOON = datetime(2026, 6, 14, 12, 0, tzinfo=TOKYO)
""""Now" for the tests: before the meeting, so clocks are read at its start."""

LONG_NOTES = "現状はスプレッドシートで案件を管理している。" * 12
PEOPLE = [
    ("u_is1", "高橋 翔", "IS"),
    ("u_fs1", "山本 拓也", "FS"),
    ("u_fs2", "中村 由美", "FS"),
    ("u_cs1", "加藤 彩", "CS"),
]


def at(day: str, hm: str) -> datetime:
    """An instant in Tokyo."""
    return datetime.combine(date.fromisoformat(day), time.fromisoformat(hm), tzinfo=TOKYO)


@dataclass
class Org:
    """What was put in the store, by name."""

    handoffs: dict[str, int] = field(default_factory=dict)


def _deal(n: int, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": f"商談 {n}",
        "owner": "u_fs1",
        "account_id": f"A{n}",
        "lead_id": f"L{n}",
        "hearing_notes": f"ヒアリング {n}: 予算は確保済み、決裁者は本部長。",
        "budget": "年300万円",
        "authority": "営業本部長",
        "need": "申し送りの標準化",
        "timeline": "来期初め",
        "is_proposal": "無料トライアル",
        "fs_proposal": None,
        "meeting_date": "2026-06-18T14:00:00+09:00",
        "fs_accepted_at": None,
    }
    base.update(fields)
    return base


VERDICTS: dict[str, tuple[str, int, list[tuple[str, str, str]]]] = {
    "unfixed": (
        "failed",
        62,
        [("is-fs.hearing-notes", "error", "ヒアリング内容が不足しています。")],
    ),
    "answered": ("passed", 100, []),
    "pending": (
        "failed",
        75,
        [
            ("is-fs.bant.timeline", "warn", "BANT：導入時期が未記入です。"),
            ("is-fs.call-recording", "error", "架電の録音（MiiTel）が添付されていません。"),
        ],
    ),
    "waiting": ("warned", 87, [("is-fs.fs-answer-sla", "warn", "FS did not answer.")]),
    "fixed": ("passed", 100, []),
}
"""Each handoff's stored verdict (none for those not judged)."""


def _handoff(record: str, handed: datetime, receiver: str, boundary: str = "IS→FS") -> Handoff:
    sender, receiving = boundary.split("→")
    return Handoff(
        system=SYSTEM,
        boundary=boundary,
        object="deal",
        record_id=record,
        sender_id="u_fs1" if sender == "FS" else "u_is1",
        receiver_id=receiver,
        sender_department=sender,
        receiver_department=receiving,
        handed_at=handed,
    )


def build_org(store: Store) -> Org:
    """Insert the org; returns the handoff ids by name."""
    org = Org()
    deals = {
        # Failed at Friday's meeting (handed 09:59, its window) and still failed; no answer.
        "unfixed": (1, _deal(1, hearing_notes=None), at("2026-06-12", "09:59"), "u_fs1"),
        # The first instant of Monday's window; answered 1h30m later.
        "answered": (
            2,
            _deal(
                2,
                fs_accepted_at="2026-06-12T11:30:00+09:00",
                call_recording_url="https://miitel.jp/c/2",
            ),
            at("2026-06-12", "10:00"),
            "u_fs1",
        ),
        # Saturday: no answer yet; the clock starts Monday 09:00.
        "pending": (
            3,
            _deal(3, hearing_notes=LONG_NOTES, timeline=""),
            at("2026-06-13", "15:00"),
            "u_fs2",
        ),
        # Monday 10:00 is the next meeting's.
        "next": (4, _deal(4), at("2026-06-15", "10:00"), "u_fs1"),
        # Wednesday, unanswered: waiting, overdue since Thursday 14:00.
        "waiting": (5, _deal(5), at("2026-06-10", "14:00"), "u_fs2"),
        # Failed at the last meeting, fixed since (verdict passed), answered.
        "fixed": (
            6,
            _deal(6, fs_accepted_at="2026-06-11T12:00:00+09:00"),
            at("2026-06-11", "11:00"),
            "u_fs1",
        ),
        # In the window, but the record was deleted in the CRM.
        "deleted": (7, _deal(7), at("2026-06-14", "11:00"), "u_fs1"),
        # Unanswered, but older than the look-back.
        "ancient": (8, _deal(8), at("2026-05-01", "11:00"), "u_fs1"),
    }
    with store.session() as s:
        for uid, name, dept in PEOPLE:
            s.add(
                Person(
                    system=SYSTEM,
                    user_id=uid,
                    name=name,
                    email=f"{uid}@example.jp",
                    department=dept,
                )
            )
        for n in range(1, 10):
            account = {"name": f"株式会社サンプル{n:03d}"}
            lead = {"name": f"リード {n}", "company": f"Company {n}"}
            s.add(Record(system=SYSTEM, object="account", record_id=f"A{n}", fields=account))
            s.add(Record(system=SYSTEM, object="lead", record_id=f"L{n}", fields=lead))
        for name, (n, fields, handed, receiver) in deals.items():
            deleted = name == "deleted"
            s.add(
                Record(
                    system=SYSTEM,
                    object="deal",
                    record_id=f"D{n}",
                    fields=fields,
                    deleted=deleted,
                )
            )
            h = _handoff(f"D{n}", handed, receiver)
            s.add(h)
            s.flush()
            org.handoffs[name] = h.id
            if name in VERDICTS:
                outcome, score, found = VERDICTS[name]
                violations = [Violation(rule_id=r, severity=v, message=m) for r, v, m in found]
                s.add(Verdict(handoff_id=h.id, outcome=outcome, score=score, violations=violations))
        # Earlier handoffs of records handed again later: only the latest counts.
        s.add(_handoff("D5", at("2026-06-08", "11:00"), "u_fs1"))
        s.add(_handoff("D3", at("2026-06-09", "11:00"), "u_fs1"))
        # Another boundary in the same window: not the meeting's.
        s.add(Record(system=SYSTEM, object="deal", record_id="D9", fields=_deal(9)))
        s.add(_handoff("D9", at("2026-06-13", "12:00"), "u_cs1", boundary="FS→CS"))
        # D3's qualifying call, linked to its lead.
        s.add(
            Recording(
                provider="miitel",
                external_id="call-3",
                kind="call",
                url="https://acme.miitel.jp/app/calls/3",
                at=at("2026-06-12", "16:00"),
                system=SYSTEM,
                matched_object="lead",
                matched_record_id="L3",
                status="matched",
                payload={},
            )
        )
    return org
