"""Linking recordings to CRM records, from the store's snapshots (no CRM call).

A **call** matches the lead or contact whose phone, in E.164, is one the call connected; when
several share it, the one owned by the CRM user behind the MiiTel user wins. A **meeting**
matches the deal converted from a participant's lead, or a deal of the account whose domain a
participant's email has; among several, the host's deal whose ``meeting_date`` (its calendar
event) is nearest the recording's start wins. With no deal: the host's only deal booked at that
time, else the participant's lead, else the account. Anything else stays unmatched or
ambiguous, with the reason, and is tried again after the next sync.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from types import MappingProxyType
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tasuki.recordings import index
from tasuki.recordings.capture import Kind, parse_time
from tasuki.recordings.config import RecordingsConfig
from tasuki.recordings.keys import (
    ACCOUNT_OBJECT,
    DEAL_OBJECT,
    LEAD_OBJECT,
    Key,
    KeyKind,
    email_domain,
    owner_day,
    parent_domains,
    record_keys,
    snapshot_email,
    web_domain,
)
from tasuki.recordings.phones import to_e164
from tasuki.recordings.store import PENDING, Status
from tasuki.settings import Config
from tasuki.store.models import Person, Record, Recording, utcnow

SHOWN_CANDIDATES = 5
"""Candidates named in the reason of an ambiguous match."""


@dataclass(frozen=True)
class Link:
    """The outcome of matching one recording."""

    status: Status
    object: str | None = None
    record_id: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class Candidate:
    """A CRM record a recording may belong to."""

    object: str
    record_id: str
    fields: dict[str, Any]

    def __str__(self) -> str:
        return f"{self.object} {self.record_id}"


class Directory:
    """Look-ups into one CRM's snapshots for one matching pass, each built once, on demand."""

    def __init__(
        self, session: Session, config: Config, system: str, rcfg: RecordingsConfig
    ) -> None:
        self.session = session
        self.config = config
        self.system = system
        self.rcfg = rcfg

    def _mapped(self, obj: str, field: str | None = None) -> bool:
        per = self.config.objects.get(obj, {})
        if self.config.crm not in per:
            return False
        return field is None or field in per[self.config.crm].fields

    def records(self, obj: str) -> list[Candidate]:
        """Live snapshots of ``obj`` (empty when it is not mapped)."""
        if obj not in self._cache:
            rows = (
                self.session.execute(
                    select(Record.record_id, Record.fields)
                    .where(
                        Record.system == self.system,
                        Record.object == obj,
                        Record.deleted.is_(False),
                    )
                    .order_by(Record.id)
                ).all()
                if self._mapped(obj)
                else []
            )
            self._cache[obj] = [Candidate(obj, rid, dict(f or {})) for rid, f in rows]
        return self._cache[obj]

    @cached_property
    def _cache(self) -> dict[str, list[Candidate]]:
        return {}

    @cached_property
    def users_by_email(self) -> dict[str, str]:
        """CRM user email (lower-cased) → user id."""
        rows = self.session.execute(
            select(Person.email, Person.user_id).where(Person.system == self.system)
        )
        return {email.lower(): uid for email, uid in rows if email}

    def user_for(self, email: str, provider_user_id: str = "") -> str | None:
        """The CRM user behind a provider user (by the configured map, else by email)."""
        mapped = self.rcfg.miitel.users.get(provider_user_id) if provider_user_id else None
        return self.users_by_email.get((mapped or email).lower())

    @cached_property
    def _by_phone(self) -> dict[str, list[Candidate]]:
        out: dict[str, list[Candidate]] = defaultdict(list)
        for obj in self.rcfg.matching.call_objects:
            if not self._mapped(obj, "phone"):
                continue
            for c in self.records(obj):
                e164 = to_e164(c.fields.get("phone"))
                if e164:
                    out[e164].append(c)
        return out

    def by_phone(self, e164: str) -> list[Candidate]:
        """Leads and contacts whose phone is ``e164``."""
        return self._by_phone.get(e164, [])

    @cached_property
    def _by_email(self) -> dict[str, list[Candidate]]:
        out: dict[str, list[Candidate]] = defaultdict(list)
        for obj in self.rcfg.matching.call_objects:
            if not self._mapped(obj, "email"):
                continue
            for c in self.records(obj):
                email = snapshot_email(c.fields)
                if email:
                    out[email].append(c)
        return out

    def by_email(self, email: str) -> list[Candidate]:
        """Leads and contacts whose email is ``email``."""
        return self._by_email.get(email.lower(), [])

    @cached_property
    def _accounts_by_domain(self) -> dict[str, list[Candidate]]:
        out: dict[str, list[Candidate]] = defaultdict(list)
        if self._mapped(ACCOUNT_OBJECT, "domain"):
            for c in self.records(ACCOUNT_OBJECT):
                domain = web_domain(c.fields.get("domain"))
                if domain:
                    out[domain].append(c)
        return out

    def accounts_by_domain(self, domain: str) -> list[Candidate]:
        """Accounts whose website or domain is ``domain`` (or a parent domain of it)."""
        for parent in parent_domains(domain):
            found = self._accounts_by_domain.get(parent)
            if found:
                return found
        return []

    @cached_property
    def _deals(self) -> list[Candidate]:
        return self.records(DEAL_OBJECT)

    def deals_where(self, field: str, values: Iterable[str]) -> list[Candidate]:
        """Deals whose ``field`` holds one of ``values``."""
        wanted = set(values)
        return [d for d in self._deals if str(d.fields.get(field) or "") in wanted]

    def deals_booked(self, owner: str, at: datetime | None, window: timedelta) -> list[Candidate]:
        """Deals of ``owner`` whose meeting date is within ``window`` of ``at``."""
        return [x for x in self.deals_where("owner", [owner]) if _near(x, at, window)]


DEAL_KEYS = MappingProxyType(
    {"lead_id": KeyKind.DEAL_LEAD.value, "account_id": KeyKind.DEAL_ACCOUNT.value}
)
"""The deal fields :meth:`Directory.deals_where` is asked about, and their key kinds."""


class IndexedDirectory(Directory):
    """The same look-ups through the match-key index (:mod:`tasuki.recordings.index`): reads the
    snapshots of the records a key leads to and no other, in the order :class:`Directory` gives
    (objects in ``call_objects`` order, then oldest snapshot first), so both link alike.

    A record found through the index is kept only if its snapshot still holds the key (the index
    may say too much after two concurrent syncs of one record, never too little)."""

    def _objects(self, objs: Iterable[str], field: str | None) -> list[str]:
        return [o for o in dict.fromkeys(objs) if self._mapped(o, field)]

    def _found(self, kind: str, values: Iterable[str], objects: Sequence[str]) -> list[Candidate]:
        wanted = set(values)
        # Links stored so far need no flush before each look-up: none of them is read here.
        with self.session.no_autoflush:
            pairs = index.records_with(self.session, self.system, kind, wanted, objects)
            self._load(pairs)
        rank = {o: i for i, o in enumerate(objects)}
        hits = [
            (rank[o], self._row_ids[(o, r)], self._snapshots[(o, r)])
            for o, r in pairs
            if (o, r) in self._snapshots
            and any((kind, v) in self._keys_of(self._snapshots[(o, r)]) for v in wanted)
        ]
        return [c for _, _, c in sorted(hits, key=lambda t: (t[0], t[1]))]

    def _load(self, pairs: Iterable[tuple[str, str]]) -> None:
        missing: dict[str, list[str]] = defaultdict(list)
        for o, r in pairs:
            if (o, r) not in self._seen:
                self._seen.add((o, r))
                missing[o].append(r)
        for obj, ids in missing.items():
            for start in range(0, len(ids), index.CHUNK):
                rows = self.session.execute(
                    select(Record.id, Record.record_id, Record.fields).where(
                        Record.system == self.system,
                        Record.object == obj,
                        Record.record_id.in_(ids[start : start + index.CHUNK]),
                        Record.deleted.is_(False),
                    )
                )
                for row_id, rid, fields in rows:
                    self._snapshots[(obj, rid)] = Candidate(obj, rid, dict(fields or {}))
                    self._row_ids[(obj, rid)] = row_id

    def _keys_of(self, c: Candidate) -> set[Key]:
        found = self._key_cache.get((c.object, c.record_id))
        if found is None:
            found = self._key_cache[(c.object, c.record_id)] = record_keys(c.object, c.fields)
        return found

    @cached_property
    def _seen(self) -> set[tuple[str, str]]:
        return set()

    @cached_property
    def _snapshots(self) -> dict[tuple[str, str], Candidate]:
        return {}

    @cached_property
    def _row_ids(self) -> dict[tuple[str, str], int]:
        return {}

    @cached_property
    def _key_cache(self) -> dict[tuple[str, str], set[Key]]:
        return {}

    def by_phone(self, e164: str) -> list[Candidate]:
        objects = self._objects(self.rcfg.matching.call_objects, "phone")
        return self._found(KeyKind.PHONE.value, [e164], objects)

    def by_email(self, email: str) -> list[Candidate]:
        objects = self._objects(self.rcfg.matching.call_objects, "email")
        return self._found(KeyKind.EMAIL.value, [email.lower()], objects)

    def accounts_by_domain(self, domain: str) -> list[Candidate]:
        objects = self._objects([ACCOUNT_OBJECT], "domain")
        for parent in parent_domains(domain):
            found = self._found(KeyKind.DOMAIN.value, [parent], objects)
            if found:
                return found
        return []

    def deals_where(self, field: str, values: Iterable[str]) -> list[Candidate]:
        kind = DEAL_KEYS.get(field)
        if kind is None:
            raise ValueError(f"deals are not indexed by {field!r}; by: {', '.join(DEAL_KEYS)}")
        return self._found(kind, values, self._objects([DEAL_OBJECT], None))

    def deals_booked(self, owner: str, at: datetime | None, window: timedelta) -> list[Candidate]:
        if at is None:
            return []
        first, last = (at - window).astimezone(UTC).date(), (at + window).astimezone(UTC).date()
        days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        objects = self._objects([DEAL_OBJECT], None)
        found = self._found(KeyKind.DEAL_OWNER.value, [owner_day(owner, d) for d in days], objects)
        return [x for x in found if _near(x, at, window)]


def _unique(cands: Iterable[Candidate]) -> list[Candidate]:
    seen: dict[tuple[str, str], Candidate] = {}
    for c in cands:
        seen.setdefault((c.object, c.record_id), c)
    return list(seen.values())


def _named(cands: Sequence[Candidate]) -> str:
    shown = ", ".join(str(c) for c in cands[:SHOWN_CANDIDATES])
    more = len(cands) - SHOWN_CANDIDATES
    return shown + (f" and {more} more" if more > 0 else "")


def _one(cands: Sequence[Candidate], why: str) -> Link:
    if len(cands) == 1:
        return Link(Status.MATCHED, cands[0].object, cands[0].record_id, why)
    return Link(Status.AMBIGUOUS, reason=f"{len(cands)} candidates ({why}): {_named(cands)}")


def match_call(rec: Recording, d: Directory) -> Link:
    """The lead or contact a call belongs to, by phone and then by its caller's CRM user."""
    numbers = [n for n in (to_e164(p) for p in rec.phones) if n]
    if not numbers:
        shown = ", ".join(rec.phones) or "none in the payload"
        return Link(Status.UNMATCHED, reason=f"no usable phone number ({shown})")
    hits = _unique(c for n in numbers for c in d.by_phone(n))
    if not hits:
        return Link(Status.UNMATCHED, reason=f"no lead or contact has phone {', '.join(numbers)}")
    owner = d.user_for(rec.host_email, rec.user_id)
    why = f"phone {', '.join(numbers)}"
    if len(hits) > 1 and owner:
        mine = [c for c in hits if c.fields.get("owner") == owner]
        if mine:
            hits, why = mine, f"{why}, owned by the caller"
    elif len(hits) > 1:
        who = rec.host_email or rec.user_id or "unknown"
        why = f"{why}; the caller ({who}) is not a CRM user"
    return _one(hits, why)


def _near(deal: Candidate, at: datetime | None, window: timedelta) -> bool:
    when = parse_time(deal.fields.get("meeting_date"))
    return at is not None and when is not None and abs(when - at) <= window


def match_meeting(rec: Recording, d: Directory) -> Link:
    """The deal (else lead, else account) a meeting belongs to; see the module docstring."""
    if not rec.url:
        return Link(Status.UNMATCHED, reason="no recording yet (waiting for recording.completed)")
    m = d.rcfg.matching
    window = timedelta(hours=m.meeting_window_hours)
    host = d.user_for(rec.host_email) if rec.host_email else None
    own_domains = {email_domain(e) for e in d.users_by_email} | {email_domain(rec.host_email)}
    guests = [
        e
        for e in rec.emails
        if e.lower() not in d.users_by_email and email_domain(e) not in own_domains
    ]
    leads = _unique(c for e in guests for c in d.by_email(e))
    domains = sorted({email_domain(e) for e in guests} - set(m.free_mail_domains) - {""})
    accounts = _unique(a for dom in domains for a in d.accounts_by_domain(dom))
    lead_accounts = {str(c.fields.get("account_id")) for c in leads if c.fields.get("account_id")}
    deals = d.deals_where("lead_id", [c.record_id for c in leads if c.object == LEAD_OBJECT])
    why = "participant's lead"
    if not deals:
        deals = d.deals_where("account_id", {a.record_id for a in accounts} | lead_accounts)
        why = "participant's company"
    if deals:
        if host:
            mine = [x for x in deals if host in (x.fields.get("owner"), x.fields.get("sourced_by"))]
            if mine:
                deals, why = mine, f"{why}, hosted by its owner"
        timely = [x for x in deals if _near(x, rec.at, window)]
        if timely:
            deals, why = timely, f"{why}, meeting date at the recording's time"
        return _one(deals, why)
    if host:
        booked = d.deals_booked(host, rec.at, window)
        if booked:
            return _one(booked, "host's deal with a meeting at the recording's time")
    if leads:
        return _one(leads, "participant's email")
    if accounts:
        return _one(accounts, f"participant's domain {', '.join(domains)}")
    who = ", ".join(guests) or "no outside participant"
    host_text = f"host {rec.host_email or 'unknown'}" + ("" if host else " (not a CRM user)")
    return Link(Status.UNMATCHED, reason=f"no deal, lead or account for {who}; {host_text}")


def link(rec: Recording, d: Directory) -> Link:
    """Match ``rec`` by its kind."""
    return match_call(rec, d) if rec.kind == Kind.CALL.value else match_meeting(rec, d)


def link_all(
    session: Session, recordings: Sequence[Recording], d: Directory, system: str
) -> list[tuple[str, str]]:
    """Match each of ``recordings`` through ``d`` and store the outcome; returns the (object,
    record id) pairs whose recordings changed, for re-judging."""
    touched: list[tuple[str, str]] = []
    now = utcnow()
    for rec in recordings:
        found = link(rec, d)
        rec.reason = found.reason[:2000]
        before = (rec.matched_object, rec.matched_record_id or "") if rec.matched_object else None
        if found.status != Status.MATCHED:
            rec.status = found.status.value
            rec.system = rec.matched_object = rec.matched_record_id = None
            if before is not None:
                touched.append(before)  # its record just lost a recording
            continue
        assert found.object is not None and found.record_id is not None
        rec.status = Status.MATCHED.value
        rec.system, rec.matched_object, rec.matched_record_id = (
            system,
            found.object,
            found.record_id,
        )
        rec.matched_at = now
        touched.append((found.object, found.record_id))
        if before is not None and before != (found.object, found.record_id):
            touched.append(before)
    return touched


def match_pending(
    session: Session, config: Config, system: str, rcfg: RecordingsConfig
) -> list[tuple[str, str]]:
    """Try every unmatched or ambiguous recording again, against every snapshot (the full pass,
    the reference for :mod:`tasuki.recordings.rematch`); returns the (object, record id) pairs
    whose recordings changed, for re-judging. Running it twice changes nothing the second
    time."""
    pending = session.scalars(
        select(Recording).where(Recording.status.in_(PENDING)).order_by(Recording.id)
    ).all()
    if not pending:
        return []
    return link_all(session, pending, Directory(session, config, system, rcfg), system)
