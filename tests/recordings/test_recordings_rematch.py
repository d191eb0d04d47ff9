"""Re-matching in O(changed) (tasuki/recordings/rematch.py): the pass after a sync links exactly
what the full pass links, reads only the snapshots of the records that could match, and leaves
no mark behind; records come in through the sync's own path (``apply_records``). On SQLite and
PostgreSQL."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select, update
from sqlalchemy.orm import ORMExecuteState, Session

from connectors.local import LocalCrm
from tasuki import runtime
from tasuki.crm import RawRecord
from tasuki.mapping import Mapper
from tasuki.recordings import marks
from tasuki.recordings.capture import Capture, Kind
from tasuki.recordings.config import RecordingsConfig
from tasuki.recordings.keys import record_keys
from tasuki.recordings.rematch import forget_if_idle, rematch, settings_digest
from tasuki.recordings.store import keep
from tasuki.settings import Settings
from tasuki.store.db import Store
from tasuki.store.models import Person, Record, Recording, RecordKey, RematchMark
from tasuki.sync import apply_records

RCFG = RecordingsConfig()
AT = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)
USERS = {f"005U{i}": f"rep{i}@example.co.jp" for i in range(4)}


@pytest.fixture
def rt(settings: Settings, store: Store) -> Iterator[runtime.Runtime]:
    crm = LocalCrm(settings.data_dir / "crm.db")
    yield runtime.Runtime(settings, store, crm, redis_connection=None)


def sync(rt: runtime.Runtime, logical: str, records: dict[str, dict[str, Any] | None]) -> None:
    """Store snapshots the way a sync does: CRM field names in, through ``apply_records``
    (``None``: the CRM deleted the record)."""
    mapper = Mapper(rt.settings.config)
    raws = [
        RawRecord(rid, {}, deleted=True)
        if fields is None
        else RawRecord(rid, {mapper.physical_field(logical, k): v for k, v in fields.items()})
        for rid, fields in records.items()
    ]
    with rt.store.session() as s:
        apply_records(rt, s, logical, raws)


def users(rt: runtime.Runtime, emails: dict[str, str]) -> None:
    with rt.store.session() as s:
        for uid, email in emails.items():
            person = s.scalars(select(Person).where(Person.user_id == uid)).one_or_none()
            if person is None:
                s.add(Person(system=rt.system, user_id=uid, name=uid, email=email))
            else:
                person.email = email
    sync(rt, "user", {uid: {"name": uid, "email": e} for uid, e in emails.items()})


def call(cid: str, *phones: str, user: str = "rep0@example.co.jp", at: datetime = AT) -> Capture:
    url = f"https://x.miitel.jp/app/calls/{cid}"
    return Capture("miitel", cid, Kind.CALL, url, at, phones=phones, host_email=user)


def meeting(mid: str, *emails: str, host: str = "rep1@example.co.jp", at: datetime = AT) -> Capture:
    url = f"https://zoom.us/rec/share/{mid}"
    return Capture("zoom", mid, Kind.MEETING, url, at, emails=emails, host_email=host)


def kept(store: Store, *captures: Capture) -> None:
    with store.session() as s:
        for c in captures:
            keep(s, c)


Links = dict[str, tuple[str, str | None, str | None, str]]


def links(store: Store) -> Links:
    with store.session() as s:
        return {
            r.external_id: (r.status, r.matched_object, r.matched_record_id, r.reason)
            for r in s.scalars(select(Recording))
        }


def restore(store: Store, before: Links) -> None:
    with store.session() as s:
        for ext, (status, obj, rid, reason) in before.items():
            s.execute(
                update(Recording)
                .where(Recording.external_id == ext)
                .values(
                    status=status,
                    matched_object=obj,
                    matched_record_id=rid,
                    system="local" if obj else None,
                    reason=reason,
                )
            )


def pass_(rt: runtime.Runtime, full: bool = False) -> list[tuple[str, str]]:
    with rt.store.session() as s:
        return rematch(s, rt.settings.config, rt.system, RCFG, full=full)


def mark_count(store: Store) -> int:
    with store.session() as s:
        return int(s.scalar(select(func.count()).select_from(RematchMark)) or 0) - 1


# --- a random org: few phones, emails and domains, so that records collide -----------------

PHONES = [f"03-5555-{i:04d}" for i in range(25)]
DOMAINS = ["corp-a.example.jp", "corp-b.example.jp", "sub.corp-b.example.jp", "corp-c.example.jp"]


def _email(r: random.Random) -> str:
    """Some at no account's domain, so that deals are found through leads and hosts too."""
    return f"p{r.randrange(12)}@{r.choice([*DOMAINS, 'solo.example.jp', 'gmail.com'])}"


def _lead(r: random.Random) -> dict[str, Any]:
    return {
        "phone": r.choice(PHONES) if r.random() < 0.8 else None,
        "email": _email(r) if r.random() < 0.8 else None,
        "owner": r.choice(list(USERS)),
        "account_id": f"001A{r.randrange(8)}" if r.random() < 0.7 else None,
    }


def _deal(r: random.Random) -> dict[str, Any]:
    return {
        "lead_id": f"00Q{r.randrange(60)}" if r.random() < 0.7 else None,
        "account_id": f"001A{r.randrange(8)}" if r.random() < 0.5 else None,
        "owner": r.choice(list(USERS)),
        "sourced_by": r.choice(list(USERS)),
        "meeting_date": (AT + timedelta(hours=r.choice([0, 1, 30, -50]))).isoformat(),
    }


def _account(r: random.Random) -> dict[str, Any]:
    return {"name": "x", "domain": f"https://www.{r.choice(DOMAINS)}/"}


def _org(rt: runtime.Runtime, r: random.Random) -> None:
    users(rt, USERS)
    sync(rt, "account", {f"001A{i}": _account(r) for i in range(6)})
    sync(rt, "lead", {f"00Q{i}": _lead(r) for i in range(50)})
    sync(rt, "deal", {f"006D{i}": _deal(r) for i in range(30)})
    captures = [
        call(f"c{i}", r.choice(PHONES + ["045-000-0000"]), user=r.choice(list(USERS.values())))
        for i in range(60)
    ] + [
        meeting(f"m{i}", _email(r), _email(r), host=r.choice(list(USERS.values())))
        for i in range(40)
    ]
    kept(rt.store, *captures)


def _changes(rt: runtime.Runtime, r: random.Random, round_: int) -> None:
    """A sync's worth of changes: new, edited and deleted leads, deals and accounts; a user's
    email; new recordings."""
    leads: dict[str, dict[str, Any] | None] = {}
    for _ in range(r.randrange(4)):
        leads[f"00Q{r.randrange(60)}"] = None if r.random() < 0.2 else _lead(r)
    sync(rt, "lead", leads)
    deals: dict[str, dict[str, Any] | None] = {}
    for _ in range(r.randrange(4)):
        deals[f"006D{r.randrange(36)}"] = None if r.random() < 0.2 else _deal(r)
    sync(rt, "deal", deals)
    if r.random() < 0.5:
        sync(rt, "account", {f"001A{r.randrange(8)}": _account(r) if r.random() < 0.8 else None})
    if r.random() < 0.3:
        uid = r.choice(list(USERS))
        users(rt, {uid: f"rep{r.randrange(6)}@{r.choice(['example.co.jp', DOMAINS[0]])}"})
    if r.random() < 0.3:
        kept(rt.store, call(f"c{round_}+", r.choice(PHONES)), meeting(f"m{round_}+", _email(r)))


def test_the_pass_after_a_sync_links_what_the_full_pass_links(rt: runtime.Runtime) -> None:
    r = random.Random(17)
    _org(rt, r)
    assert pass_(rt)  # no full pass yet: this one is full, and links some
    assert mark_count(rt.store) == 0
    relinked = 0
    for round_ in range(30):
        _changes(rt, r, round_)
        before = links(rt.store)
        incremental = sorted(pass_(rt))
        after = links(rt.store)
        assert mark_count(rt.store) == 0
        restore(rt.store, before)
        assert links(rt.store) == before
        assert sorted(pass_(rt, full=True)) == incremental, f"round {round_}"
        assert links(rt.store) == after, f"round {round_}"
        relinked += sum(1 for k in after if after[k] != before.get(k))
    assert relinked > 30  # the changes did change links


# --- rows read -------------------------------------------------------------------------------


class SnapshotReads:
    """Counts the rows the ORM session reads from ``records`` (the snapshots)."""

    def __init__(self) -> None:
        self.rows = 0

    def __call__(self, state: ORMExecuteState) -> Any:
        if not state.is_select:
            return None
        tables = {getattr(f, "name", None) for f in state.statement.get_final_froms()}  # type: ignore[attr-defined]
        if "records" not in tables:
            return None
        frozen = state.invoke_statement().freeze()
        self.rows += len(frozen().all())
        return frozen()


@pytest.fixture
def snapshot_reads() -> Iterator[SnapshotReads]:
    counter = SnapshotReads()
    event.listen(Session, "do_orm_execute", counter)
    yield counter
    event.remove(Session, "do_orm_execute", counter)


def test_the_pass_reads_only_the_snapshots_of_records_that_could_match(
    rt: runtime.Runtime, snapshot_reads: SnapshotReads
) -> None:
    users(rt, USERS)
    sync(rt, "account", {f"001X{i}": {"domain": f"co{i}.example.jp"} for i in range(40)})
    sync(rt, "lead", {f"00QX{i}": {"phone": f"06-6000-{i:04d}"} for i in range(200)})
    sync(rt, "deal", {f"006X{i}": {"account_id": f"001X{i}"} for i in range(40)})
    kept(rt.store, *(call(f"c{i}", f"045-111-{i:04d}") for i in range(30)))
    kept(rt.store, *(meeting(f"m{i}", f"ceo@new{i}.example.jp") for i in range(20)))
    snapshot_reads.rows = 0
    pass_(rt)  # the first pass is full: every lead, account and deal
    assert snapshot_reads.rows == 200 + 40 + 40
    assert all(s == "unmatched" for s, *_ in links(rt.store).values())

    # A lead takes the number of call c7; an account the domain of meeting m3; and a deal is
    # opened on that account. 197 leads, 39 accounts and 40 deals change nothing.
    sync(rt, "lead", {"00QX5": {"phone": "045-111-0007"}})
    sync(rt, "account", {"001X9": {"domain": "new3.example.jp"}})
    sync(rt, "deal", {"006N": {"account_id": "001X9", "owner": "005U1"}})
    snapshot_reads.rows = 0
    touched = pass_(rt)
    # the lead (found by phone), the account (by domain), its two deals (by account)
    assert snapshot_reads.rows == 1 + 1 + 2
    assert sorted(touched) == [("deal", "006N"), ("lead", "00QX5")]
    now = links(rt.store)
    assert now["c7"][:3] == ("matched", "lead", "00QX5")
    assert now["m3"][:3] == ("matched", "deal", "006N")

    snapshot_reads.rows = 0
    assert pass_(rt) == [] and snapshot_reads.rows == 0  # nothing marked: nothing read


def test_a_change_no_recording_waits_for_leaves_no_mark(rt: runtime.Runtime) -> None:
    users(rt, USERS)
    kept(rt.store, call("c1", "045-111-0001"))
    pass_(rt)
    sync(rt, "lead", {"00Q1": {"phone": "045-111-0001"}})
    pass_(rt)
    assert links(rt.store)["c1"][:3] == ("matched", "lead", "00Q1")
    # Nothing pending: a sync's marks are forgotten at once (a later recording is matched
    # against these snapshots anyway) ...
    sync(rt, "lead", {"00Q2": {"phone": "045-111-0002"}, "00Q1": None})
    assert mark_count(rt.store) > 0
    with rt.store.session() as s:
        assert forget_if_idle(s) > 0
    assert mark_count(rt.store) == 0
    # ... and a recording kept later finds the record all the same.
    kept(rt.store, call("c2", "045-111-0002"))
    assert pass_(rt) == [("lead", "00Q2")]
    # While something is pending, the marks stay for its pass.
    kept(rt.store, call("c3", "045-111-0003"))
    sync(rt, "lead", {"00Q3": {"phone": "045-111-0003"}})
    with rt.store.session() as s:
        assert forget_if_idle(s) == 0
    assert pass_(rt) == [("lead", "00Q3")]


def test_the_index_follows_the_snapshots(rt: runtime.Runtime) -> None:
    sync(rt, "lead", {"00Q1": {"phone": "03-1234-5678", "email": "Ken@Corp.example.jp "}})
    sync(rt, "lead", {"00Q1": {"phone": "03-1234-9999", "email": "ken@corp.example.jp"}})
    sync(rt, "lead", {"00Q2": {"phone": "06-6123-4567"}})
    sync(rt, "lead", {"00Q2": None})
    with rt.store.session() as s:
        stored = {
            (o, rid, k, v)
            for o, rid, k, v in s.execute(
                select(RecordKey.object, RecordKey.record_id, RecordKey.kind, RecordKey.value)
            )
        }
        snapshot = s.scalars(select(Record).where(Record.record_id == "00Q1")).one()
        assert {(k, v) for _, rid, k, v in stored if rid == "00Q1"} == record_keys(
            "lead", snapshot.fields
        )
    assert stored == {
        ("lead", "00Q1", "phone", "+81312349999"),
        ("lead", "00Q1", "email", "ken@corp.example.jp"),
    }


def test_new_matching_settings_make_the_next_pass_full(rt: runtime.Runtime) -> None:
    kept(rt.store, call("c1", "045-111-0001"))
    pass_(rt)
    config = rt.settings.config
    with rt.store.session() as s:
        assert marks.pending(s, rt.system, settings_digest(config, RCFG)) == []
        other = RecordingsConfig.model_validate({"matching": {"call_objects": ["lead"]}})
        assert marks.pending(s, rt.system, settings_digest(config, other)) is None


def test_a_deals_change_reaches_meetings_through_its_lead_and_its_account(
    rt: runtime.Runtime,
) -> None:
    users(rt, USERS)
    sync(rt, "account", {"001A": {"domain": "corp-a.example.jp"}})
    # each guest's email is on two leads: ambiguous until a deal decides
    sync(rt, "lead", {"00Q1": {"email": "ken@solo.example.jp"}})
    sync(rt, "lead", {"00Q3": {"email": "ken@solo.example.jp"}})
    sync(rt, "lead", {"00Q2": {"email": "mei@gmail.com", "account_id": "001A"}})
    sync(rt, "lead", {"00Q4": {"email": "mei@gmail.com"}})
    sync(rt, "deal", {"006A": {"owner": "005U0"}, "006B": {"owner": "005U0"}})
    # hosted by someone who owns no deal: only the deals' lead and account lead to them
    host = "rep3@example.co.jp"
    kept(rt.store, meeting("m1", "ken@solo.example.jp", host=host))
    kept(rt.store, meeting("m2", "mei@gmail.com", host=host))
    pass_(rt)
    assert [links(rt.store)[m][0] for m in ("m1", "m2")] == ["ambiguous", "ambiguous"]

    sync(rt, "deal", {"006A": {"owner": "005U0", "lead_id": "00Q1"}})
    sync(rt, "deal", {"006B": {"owner": "005U0", "account_id": "001A"}})
    with rt.store.session() as s:
        before = marks.pending(s, rt.system, settings_digest(rt.settings.config, RCFG))
        assert before is not None
        assert not any(m.kind == "email" for m in before)  # reached through the deals only
    assert sorted(pass_(rt)) == [("deal", "006A"), ("deal", "006B")]
    assert links(rt.store)["m1"][:3] == ("matched", "deal", "006A")
    assert links(rt.store)["m2"][:3] == ("matched", "deal", "006B")
