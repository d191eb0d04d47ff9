"""A synthetic The Model org: MK, IS, FS and CS people and about three months of their work.

Deterministic for a given seed, lead count and end date. Conversion at each stage is realistic
(about half the leads become MQLs, a third of MQLs become meetings, a third of accepted meetings
are won), and a share of handoffs is deliberately incomplete: missing hearing notes, no call
recording, a late first touch, no success criteria, so the rules have something to find.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from connectors.local import LocalCrm
from tasuki.mapping import Mapper
from tasuki.settings import Config

TOKYO = ZoneInfo("Asia/Tokyo")

PEOPLE = {
    "Marketing": ["佐藤 美咲", "Emma Clarke", "鈴木 健太"],
    "Inside Sales": ["高橋 翔", "田中 愛", "伊藤 大輔", "Liam Walker", "渡辺 さくら"],
    "Field Sales": ["山本 拓也", "中村 由美", "Noah Bennett", "小林 誠"],
    "Customer Success": ["加藤 彩", "吉田 亮", "Olivia Reed"],
}
TEAMS = {"Inside Sales": ("IS East", "IS West"), "Field Sales": ("FS East", "FS West")}
"""Sales teams (the User's Division): KPIs are also totalled and targeted per team."""
INDUSTRIES = ["SaaS", "製造", "小売", "金融", "物流", "不動産", "医療", "教育"]
BANDS = ["1-49", "50-299", "300-999", "1000+"]
SOURCES = ["Web", "Event", "Ads", "Referral", "Webinar"]
INQUIRIES = [
    "営業の引き継ぎを標準化したい",
    "MAとCRMの連携について相談したい",
    "インサイドセールスの立ち上げを検討中",
    "商談化率を上げたい",
    "Looking to shorten our sales cycle",
]
NOTES = [
    "現状: スプレッドシートで案件管理。課題: 部門間の申し送り漏れ。導入時期は来期初め。",
    "決裁者は営業本部長。予算は年300万円程度で確保済み。競合2社と比較中。",
    "Current CRM is Salesforce; pain: handoffs lose context; decision in Q1.",
]
CRM_EXTRA_FIELDS = ["Id", "CreatedDate", "SystemModstamp"]


@dataclass(frozen=True)
class OrgSpec:
    """What to generate: seed, number of leads, and the last day of activity."""

    seed: int = 7
    leads: int = 400
    until: date = field(default_factory=lambda: datetime.now(UTC).date())
    days: int = 90

    @property
    def key(self) -> str:
        """Identifies the generated data (same key → same org)."""
        return (
            f"seed={self.seed} leads={self.leads} until={self.until.isoformat()} days={self.days}"
        )


@dataclass
class _Event:
    at: datetime
    object: str
    record_id: str
    values: dict[str, Any]
    by: str | None


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def _business_moment(rng: random.Random, day: date) -> datetime:
    while day.weekday() >= 5:
        day += timedelta(days=1)
    minute = rng.randint(9 * 60, 17 * 60 + 30)
    return datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=TOKYO)


class _Generator:
    def __init__(self, spec: OrgSpec) -> None:
        self.spec = spec
        self.rng = random.Random(spec.seed)
        self.end = datetime(spec.until.year, spec.until.month, spec.until.day, 23, 59, tzinfo=TOKYO)
        self.events: list[_Event] = []
        self.people: dict[str, list[str]] = {}
        self.accounts: list[str] = []

    def emit(self, at: datetime, obj: str, rid: str, by: str | None, **values: Any) -> None:
        if at <= self.end:
            self.events.append(_Event(at, obj, rid, values, by))

    def maybe(self, p: float) -> bool:
        return self.rng.random() < p

    def people_and_accounts(self) -> None:
        start = self.end - timedelta(days=self.spec.days + 30)
        n = 0
        for dept, names in PEOPLE.items():
            ids = []
            for name in names:
                n += 1
                uid = f"005{n:012d}"
                ids.append(uid)
                email = f"user{n}@example.co.jp"
                team = TEAMS.get(dept, ())
                division = {"Division": team[n % len(team)]} if team else {}
                self.emit(
                    start, "User", uid, None, Name=name, Email=email, Department=dept, **division
                )
            self.people[dept] = ids
        for i in range(max(20, self.spec.leads // 3)):
            aid = f"001{i + 1:012d}"
            self.accounts.append(aid)
            self.emit(
                start,
                "Account",
                aid,
                None,
                Name=f"株式会社サンプル{i + 1:03d}",
                Website=f"https://corp{i + 1:03d}.example.jp",
                Industry=self.rng.choice(INDUSTRIES),
                FORCAS_Employee_Band__c=self.rng.choice(BANDS),
                FORCAS_Target__c=self.maybe(0.6),
                OwnerId=self.rng.choice(self.people["Field Sales"]),
            )

    def lead(self, i: int) -> None:
        rng = self.rng
        lid = f"00Q{i + 1:012d}"
        day = self.end.date() - timedelta(days=rng.randint(1, self.spec.days))
        created = _business_moment(rng, day)
        marketer = rng.choice(self.people["Marketing"])
        account = rng.choice(self.accounts)
        self.emit(
            created,
            "Lead",
            lid,
            marketer,
            OwnerId=marketer,
            Status="New",
            Name=f"リード {i + 1}",
            Company=f"Company {account[-3:]}",
            Email=f"lead{i + 1}@corp{account[-3:]}.example.jp",
            Phone=f"03-{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}"
            if self.maybe(0.9)
            else None,
            LeadSource=rng.choice(SOURCES),
            Inquiry__c=rng.choice(INQUIRIES) if self.maybe(0.8) else None,
            Account__c=account,
        )
        if not self.maybe(0.55):
            return
        mql = created + timedelta(hours=rng.randint(1, 72))
        rep = rng.choice(self.people["Inside Sales"])
        # MQL and assignment to IS happen together: the MK→IS handoff.
        self.emit(mql, "Lead", lid, marketer, Status="MQL", MQL_Date__c=_iso(mql), OwnerId=rep)
        touch = mql + (
            timedelta(minutes=rng.randint(5, 55))
            if self.maybe(0.75)
            else timedelta(hours=rng.randint(2, 30))
        )
        self.emit(touch, "Lead", lid, rep, Status="Working", First_Touch_At__c=_iso(touch))
        if not self.maybe(0.4):
            return
        self.opportunity(i, lid, account, rep, touch)

    def opportunity(self, i: int, lid: str, account: str, rep: str, touch: datetime) -> None:
        rng = self.rng
        oid = f"006{i + 1:012d}"
        booked = touch + timedelta(hours=rng.randint(1, 96))
        meeting = _business_moment(rng, (booked + timedelta(days=rng.randint(2, 10))).date())
        self.emit(booked, "Lead", lid, rep, Status="Converted")
        self.emit(
            booked,
            "Opportunity",
            oid,
            rep,
            Name=f"商談 {i + 1}",
            OwnerId=rep,
            StageName="Meeting Booked",
            AccountId=account,
            Lead__c=lid,
            IS_Owner__c=rep,
            Meeting_Date__c=_iso(meeting) if self.maybe(0.92) else None,
            Hearing_Notes__c=rng.choice(NOTES) if self.maybe(0.85) else None,
            BANT_Budget__c="年300万円" if self.maybe(0.8) else None,
            BANT_Authority__c="営業本部長" if self.maybe(0.85) else None,
            BANT_Need__c="申し送りの標準化" if self.maybe(0.9) else None,
            BANT_Timeline__c="来期初め" if self.maybe(0.8) else None,
            IS_Proposal__c="無料トライアルと導入支援" if self.maybe(0.75) else None,
            CloseDate=(meeting + timedelta(days=45)).date().isoformat(),
        )
        # The call recording arrives through MiiTel's webhook (tasuki/demo/recordings.py); the
        # draw that used to decide it stays, so every other value of the org is what it was.
        self.maybe(0.8)
        fs = rng.choice(self.people["Field Sales"])
        passed = booked + timedelta(hours=rng.randint(1, 6))
        self.emit(passed, "Opportunity", oid, rep, OwnerId=fs)
        answered = passed + (
            timedelta(hours=rng.randint(1, 8))
            if self.maybe(0.8)
            else timedelta(days=rng.randint(2, 4))
        )
        if self.maybe(0.85):
            self.emit(
                answered,
                "Opportunity",
                oid,
                fs,
                FS_Acceptance__c="Accepted",
                FS_Accepted_At__c=_iso(answered),
            )
        else:
            self.emit(
                answered,
                "Opportunity",
                oid,
                fs,
                FS_Acceptance__c="Rejected",
                FS_Accepted_At__c=_iso(answered),
                FS_Reject_Reason__c="予算未確定のため時期尚早" if self.maybe(0.7) else None,
                StageName="Closed Lost",
            )
            return
        self.emit(
            meeting, "Opportunity", oid, fs, StageName="Proposal", FS_Proposal__c="年間プランの提案"
        )
        outcome = rng.random()
        closed = meeting + timedelta(days=rng.randint(7, 40))
        if outcome < 0.35:
            self.won(oid, account, fs, closed)
        elif outcome < 0.6:
            self.emit(closed, "Opportunity", oid, fs, StageName="Closed Lost")

    def won(self, oid: str, account: str, fs: str, closed: datetime) -> None:
        rng = self.rng
        csm = rng.choice(self.people["Customer Success"])
        amount = rng.randint(12, 120) * 100_000
        self.emit(
            closed,
            "Opportunity",
            oid,
            fs,
            StageName="Closed Won",
            Amount=amount,
            CloseDate=closed.date().isoformat(),
            CS_Owner__c=csm,
            Contract_Terms__c="年間契約・自動更新" if self.maybe(0.9) else None,
            Success_Criteria__c="申し送り漏れゼロ、商談化率+20%" if self.maybe(0.75) else None,
            Stakeholders__c="営業本部長、IS責任者" if self.maybe(0.85) else None,
            Kickoff_Date__c=(closed + timedelta(days=rng.randint(2, 12))).date().isoformat()
            if self.maybe(0.7)
            else None,
        )
        # The meeting recording arrives through Zoom's webhook (tasuki/demo/recordings.py).
        self.maybe(0.75)
        self.emit(
            closed,
            "Account",
            account,
            fs,
            Customer_Status__c="Churned" if self.maybe(0.08) else "Active",
            CS_Owner__c=csm,
        )

    def run(self) -> list[_Event]:
        self.people_and_accounts()
        for i in range(self.spec.leads):
            self.lead(i)
        # Per record in time order, so each record's history reads like the CRM's.
        self.events.sort(key=lambda e: (e.at, e.object != "User", e.object != "Account"))
        return self.events


def define_schema(crm: LocalCrm, config: Config) -> None:
    """Declare every object and field the mapping names, so the CRM accepts tasuki's writes."""
    local = config.model_copy(update={"crm": "local"})
    mapper = Mapper(local)
    # Every object mapped for the embedded CRM: the synced ones and tasuki's own (KPI rows).
    for logical in (o for o, per_system in local.objects.items() if "local" in per_system):
        crm.define(
            mapper.physical_object(logical), mapper.physical_fields(logical) + CRM_EXTRA_FIELDS
        )


def generate(
    crm: LocalCrm, config: Config, spec: OrgSpec, progress: Callable[[int, int], None] | None = None
) -> int:
    """Fill ``crm`` with the org described by ``spec``; returns the number of changes made."""
    define_schema(crm, config)
    events = _Generator(spec).run()
    for n, e in enumerate(events, 1):
        crm.upsert(e.object, e.record_id, e.values, at=e.at, by=e.by)
        if progress and (n % 200 == 0 or n == len(events)):
            progress(n, len(events))
    crm.set_meta("org", spec.key)
    return len(events)
