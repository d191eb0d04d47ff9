"""Membership over time: each person's department and team as intervals with dates.

Handoff detection, credit and every team, department and org figure read a person's membership
*at the time of the event* (:meth:`Memberships.at`), never today's. Two sources feed the
``memberships`` table:

- **observed**: every people sync (:func:`observe`) compares each CRM user with the interval
  tasuki holds open for them. First sight opens an interval from the beginning of time (from
  the user's ``created_at`` when the user mapping has it); a changed department or team closes
  the open interval and opens the new one at the user's last-modified time in the CRM (when it
  falls after the interval held and no later than the sync), else at the instant of the sync.
- **file**: an optional ``people.yaml`` (or ``people.csv``) next to ``tasuki.yaml`` in which the
  admin writes the past tasuki did not see (:mod:`tasuki.people_file`). For the instants it
  covers, the file wins over observations.

Intervals are half-open, ``[from, to)``: an event exactly at the instant of a change belongs to
the new membership. A person with no interval covering an instant (before the first one, when
their CRM user was created later) has no department then; a person with no observed interval
(a store filled before memberships were kept) is read from the people table as they are now
wherever the file does not speak.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tasuki.settings import Settings
from tasuki.store.models import Membership, Person, utcnow
from tasuki.store.upsert import insert_ignore

BEGINNING = datetime(1900, 1, 1, tzinfo=UTC)
"""The start of an interval that reaches back to the beginning of time."""

DEPARTMENTS = ("MK", "IS", "FS", "CS")


class Source(str, Enum):
    """Where an interval was learned."""

    OBSERVED = "observed"
    FILE = "file"


@dataclass(frozen=True)
class Interval:
    """A department and team held over ``[start, end)`` (``end`` None: still held)."""

    department: str | None
    team: str | None
    start: datetime
    end: datetime | None

    def covers(self, at: datetime) -> bool:
        return self.start <= at and (self.end is None or at < self.end)


Member = tuple[str | None, str | None]
"""(department, team)."""


class Memberships:
    """Who belonged where, when, for one system (read once per computation or detection)."""

    def __init__(
        self,
        observed: Mapping[str, Sequence[Interval]],
        filed: Mapping[str, Sequence[Interval]],
        current: Mapping[str, Member],
    ) -> None:
        self.observed = {k: _normalised(v) for k, v in observed.items()}
        self.filed = {k: sorted(v, key=lambda i: i.start) for k, v in filed.items()}
        self.current = dict(current)
        self._breaks: dict[str, list[datetime]] = {}
        for uid in set(self.observed) | set(self.filed):
            points = {
                x
                for i in (*self.observed.get(uid, ()), *self.filed.get(uid, ()))
                for x in (i.start, i.end)
                if x is not None and x != BEGINNING
            }
            self._breaks[uid] = sorted(points)

    @classmethod
    def load(cls, session: Session, system: str) -> Memberships:
        """Every interval of ``system`` and every person as they are now."""
        observed: dict[str, list[Interval]] = defaultdict(list)
        filed: dict[str, list[Interval]] = defaultdict(list)
        for m in session.scalars(select(Membership).where(Membership.system == system)):
            target = filed if m.source == Source.FILE.value else observed
            target[m.user_id].append(Interval(m.department, m.team, m.valid_from, m.valid_to))
        current = {
            uid: (dept, team)
            for uid, dept, team in session.execute(
                select(Person.user_id, Person.department, Person.team).where(
                    Person.system == system
                )
            )
        }
        return cls(observed, filed, current)

    def at(self, user_id: str | None, when: datetime) -> Member:
        """``user_id``'s (department, team) at the instant ``when``: the file's interval covering
        it, else the observed one, else nothing; a person tasuki has observed no interval for
        is read as they are now."""
        if not user_id:
            return (None, None)
        for source in (self.filed, self.observed):
            for i in source.get(user_id, ()):
                if i.covers(when):
                    return (i.department, i.team)
        if user_id in self.observed:
            return (None, None)
        return self.current.get(user_id, (None, None))

    def department(self, user_id: str | None, when: datetime) -> str | None:
        """``user_id``'s department at ``when`` (see :meth:`at`)."""
        return self.at(user_id, when)[0]

    def changes_within(self, user_id: str, start: datetime, end: datetime) -> bool:
        """Whether ``user_id``'s membership may change inside ``(start, end)`` (an interval
        starts or ends there); when not, :meth:`at` ``start`` holds for the whole span."""
        points = self._breaks.get(user_id)
        if not points:
            return False
        i = bisect_right(points, start)
        return i < len(points) and points[i] < end

    def movers(self, start: datetime, end: datetime) -> set[str]:
        """People whose membership may change inside ``(start, end)``."""
        return {uid for uid in self._breaks if self.changes_within(uid, start, end)}

    def people_in(self, when: datetime) -> dict[str, Member]:
        """Everyone tasuki knows (people table and intervals) with their membership at ``when``."""
        uids = set(self.current) | set(self.observed) | set(self.filed)
        return {uid: self.at(uid, when) for uid in uids}


def _normalised(intervals: Sequence[Interval]) -> list[Interval]:
    """Observed intervals in order, each ending where the next begins (two syncs racing over
    one change can leave two open intervals: the later one stands from its start)."""
    ordered = sorted(intervals, key=lambda i: i.start)
    out = []
    for i, cur in enumerate(ordered):
        nxt = ordered[i + 1].start if i + 1 < len(ordered) else None
        end = cur.end if nxt is None or (cur.end is not None and cur.end <= nxt) else nxt
        out.append(Interval(cur.department, cur.team, cur.start, end))
    return out


def observe(
    session: Session,
    system: str,
    people: Iterable[Mapping[str, Any]],
    at: datetime,
    created: Mapping[str, datetime] | None = None,
    changed: Mapping[str, datetime] | None = None,
) -> int:
    """Record what a people sync saw at ``at`` (rows with ``user_id``, ``department``,
    ``team``): a first sight opens an interval (from ``created[user_id]`` when known, else the
    beginning of time); a change closes the open interval and opens one at ``changed[user_id]``
    (the CRM's last-modified time of the user, when it falls after the interval held and no
    later than ``at``), else at ``at``. Idempotent: the same people seen again change nothing.
    Returns intervals opened."""
    rows = list(people)
    if not rows:
        return 0
    open_now = {
        m.user_id: m
        for m in session.scalars(
            select(Membership)
            .where(
                Membership.system == system,
                Membership.source == Source.OBSERVED.value,
                Membership.valid_to.is_(None),
            )
            .order_by(Membership.valid_from)
        )
    }
    opened = []
    for p in rows:
        uid, dept, team = p["user_id"], p.get("department"), p.get("team")
        held = open_now.get(uid)
        if held is None:
            start = (created or {}).get(uid) or BEGINNING
            opened.append(_row(system, uid, dept, team, min(start, at), at))
        elif (held.department, held.team) != (dept, team):
            when = (changed or {}).get(uid)
            if when is None or not held.valid_from < when <= at:
                when = at
            if when <= held.valid_from:
                continue  # a clock gone backwards: keep what is held, look again next time
            session.execute(
                update(Membership).where(Membership.id == held.id).values(valid_to=when)
            )
            opened.append(_row(system, uid, dept, team, when, at))
    return insert_ignore(session, Membership, opened, ["system", "user_id", "source", "valid_from"])


def _row(
    system: str, uid: str, dept: str | None, team: str | None, start: datetime, seen: datetime
) -> dict[str, Any]:
    return {
        "system": system,
        "user_id": uid,
        "department": dept,
        "team": team,
        "valid_from": start,
        "valid_to": None,
        "source": Source.OBSERVED.value,
        "observed_at": seen,
    }


def learn(
    session: Session,
    settings: Settings,
    people: Iterable[Mapping[str, Any]],
    fields: Mapping[str, Mapping[str, Any]] | None = None,
    at: datetime | None = None,
) -> None:
    """What a people sync adds to memberships: the observations of ``people`` at ``at``
    (default now; each user's logical ``fields`` give ``created_at`` and ``modified_at`` when
    mapped). The admin's file, which builds on these and may name people just synced, is
    applied after it by the caller (:func:`tasuki.people_file.apply_people_file`)."""
    when = at or utcnow()
    created: dict[str, datetime] = {}
    changed: dict[str, datetime] = {}
    for uid, f in (fields or {}).items():
        for name, into in (("created_at", created), ("modified_at", changed)):
            instant = _instant(f.get(name))
            if instant is not None:
                into[uid] = instant
    observe(session, settings.config.crm, people, when, created, changed)


def _instant(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
