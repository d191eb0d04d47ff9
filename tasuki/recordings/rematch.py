"""The re-match pass: the pending recordings a change could concern, and only those.

A pass used to try every pending recording against every lead, contact, account and deal
snapshot: O(all) after each sync, however few records changed. Now a sync marks the match keys
(:mod:`tasuki.recordings.keys`) of the records it changed and a kept recording marks itself,
in the same transaction (:mod:`tasuki.recordings.marks`), and a pass tries:

    the marked recordings (new, or with new facts)
    the pending recordings with a marked key (a phone, an email, a domain, a host), and
    the keys a marked deal leads to: its lead's email; its account's domain and the emails of
                                      that account's leads and contacts; the meetings its
                                      owner hosted near its meeting date

each against the snapshots the index leads to (:class:`~tasuki.recordings.matching.
IndexedDirectory`), then clears the marks it read. Anything a pass could link differently has
one of its keys marked: a recording's link depends only on the records its keys reach, the
users, and the settings; a user's change marks its email, domain and host, and a settings
change makes the next pass full.

The full pass (:func:`~tasuki.recordings.matching.match_pending`) stays the reference: it runs
on a store never passed fully, after the matching settings change (:func:`settings_digest`), and
when asked (``tasuki artifacts match --all``). ``tests/recordings/test_recordings_rematch.py``
holds both passes to the same links.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from tasuki.recordings import index, marks
from tasuki.recordings.config import RecordingsConfig
from tasuki.recordings.keys import ACCOUNT_OBJECT, LEAD_OBJECT, Key, KeyKind
from tasuki.recordings.matching import IndexedDirectory, link_all, match_pending
from tasuki.recordings.store import PENDING
from tasuki.settings import Config
from tasuki.store.models import Person, Recording, RematchMark

DIRECT_KINDS = frozenset(
    k.value
    for k in (KeyKind.PHONE, KeyKind.EMAIL, KeyKind.DOMAIN, KeyKind.HOST, KeyKind.MIITEL_USER)
)
"""Kinds recordings have too: a marked key of these finds its recordings directly."""
ONE_DAY = timedelta(days=1)


def settings_digest(config: Config, rcfg: RecordingsConfig) -> str:
    """A digest of what decides which records a recording can match: the CRM, every object's
    mapping, the matching settings and the MiiTel user map. When it changes, the next pass is
    full."""
    shape = {
        "crm": config.crm,
        "matching": rcfg.matching.model_dump(mode="json"),
        "miitel_users": rcfg.miitel.users,
        "mapping": {
            obj: m.model_dump(mode="json")
            for obj, systems in sorted(config.objects.items())
            if (m := systems.get(config.crm)) is not None
        },
    }
    return hashlib.sha256(json.dumps(shape, sort_keys=True, default=str).encode()).hexdigest()


def rematch(
    session: Session, config: Config, system: str, rcfg: RecordingsConfig, *, full: bool = False
) -> list[tuple[str, str]]:
    """Try again the pending recordings the marks lead to (every pending one when ``full`` or
    when a full pass is due), store their links and clear the marks read; returns the (object,
    record id) pairs whose recordings changed, for re-judging."""
    digest = settings_digest(config, rcfg)
    read = None if full else marks.pending(session, system, digest)
    if read is None:
        read = marks.every_mark(session, system)
        touched = match_pending(session, config, system, rcfg)
        marks.passed_fully(session, system, digest)
        marks.clear(session, read)
        return touched
    ids = sorted(concerned(session, system, rcfg, read))
    recordings: list[Recording] = []
    for start in range(0, len(ids), index.CHUNK):
        recordings.extend(
            session.scalars(
                select(Recording).where(
                    Recording.id.in_(ids[start : start + index.CHUNK]),
                    Recording.status.in_(PENDING),
                )
            )
        )
    recordings.sort(key=lambda r: r.id)
    touched = (
        link_all(session, recordings, IndexedDirectory(session, config, system, rcfg), system)
        if recordings
        else []
    )
    marks.clear(session, read)
    return touched


def concerned(
    session: Session, system: str, rcfg: RecordingsConfig, read: Sequence[marks.Mark]
) -> set[int]:
    """The ids of the pending recordings ``read`` marks lead to (see the module docstring)."""
    by_kind: dict[str, set[str]] = defaultdict(set)
    for m in read:
        by_kind[m.kind].add(m.value)
    keys: set[Key] = {(m.kind, m.value) for m in read if m.kind in DIRECT_KINDS}
    email, domain, host = KeyKind.EMAIL.value, KeyKind.DOMAIN.value, KeyKind.HOST.value
    leads = by_kind[KeyKind.DEAL_LEAD.value]
    keys.update((email, v) for v in index.key_values(session, system, LEAD_OBJECT, leads, email))
    accounts = by_kind[KeyKind.DEAL_ACCOUNT.value]
    keys.update(
        (domain, v) for v in index.key_values(session, system, ACCOUNT_OBJECT, accounts, domain)
    )
    members: dict[str, set[str]] = defaultdict(set)
    for obj, rid in index.records_with(
        session, system, KeyKind.LEAD_ACCOUNT.value, accounts, rcfg.matching.call_objects
    ):
        members[obj].add(rid)
    for obj, rids in sorted(members.items()):
        keys.update((email, v) for v in index.key_values(session, system, obj, rids, email))
    hosts = {v for k, v in keys if k == host}
    keys.update(
        (KeyKind.MIITEL_USER.value, uid)
        for uid, mapped in rcfg.miitel.users.items()
        if mapped.lower() in hosts
    )
    found = index.recordings_with(session, keys, PENDING)
    found.update(int(v) for v in by_kind[marks.RECORDING])
    found.update(_booked_meetings(session, system, rcfg, by_kind[KeyKind.DEAL_OWNER.value]))
    return found


def _booked_meetings(
    session: Session, system: str, rcfg: RecordingsConfig, owner_days: set[str]
) -> set[int]:
    """The pending meetings hosted by a marked deal's owner within the matching window of its
    meeting's day (those the host's-deal rule of ``match_meeting`` may link to it)."""
    days: dict[str, set[date]] = defaultdict(set)
    for value in owner_days:
        owner, _, text = value.partition(" ")
        days[owner].add(date.fromisoformat(text))
    window = timedelta(hours=rcfg.matching.meeting_window_hours)
    found: set[int] = set()
    for owner, email in sorted(_user_emails(session, system, set(days)).items()):
        for day in sorted(days[owner]):
            start = datetime.combine(day, time(), UTC) - window
            found.update(
                index.meetings_hosted(session, email, start, start + window * 2 + ONE_DAY, PENDING)
            )
    return found


def _user_emails(session: Session, system: str, user_ids: set[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    ordered = sorted(user_ids)
    for start in range(0, len(ordered), index.CHUNK):
        rows = session.execute(
            select(Person.user_id, Person.email).where(
                Person.system == system, Person.user_id.in_(ordered[start : start + index.CHUNK])
            )
        )
        out.update((uid, e.lower()) for uid, e in rows if e)
    return out


def forget_if_idle(session: Session) -> int:
    """Delete every mark when no recording is pending, in one statement; returns how many.

    No pass needs them then: a recording kept later is matched against snapshots that already
    hold the changes that marked them. One statement, so that a recording kept meanwhile is
    either seen pending (and the marks stay) or kept after every mark deleted was written."""
    waiting = exists(select(Recording.id).where(Recording.status.in_(PENDING)))
    result = session.execute(
        delete(RematchMark).where(RematchMark.kind != marks.FULL_PASS, ~waiting)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
