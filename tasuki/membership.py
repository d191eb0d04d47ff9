"""Membership over time: each person's department and team as intervals with dates.

Handoff detection, credit and every team, department and org figure read a person's membership
*at the time of the event* (:meth:`Memberships.at`), never today's. Two sources feed the
``memberships`` table:

- **observed**: every people sync (:func:`observe`) compares each CRM user with the interval
  tasuki holds open for them. First sight opens an interval from the beginning of time (from
  the user's ``created_at`` when the user mapping has it); a changed department or team closes
  the open interval at the instant of the sync and opens the new one there.
- **file**: an optional ``people.yaml`` (or ``people.csv``) next to ``tasuki.yaml`` in which the
  admin writes the past tasuki did not see (:func:`read_people_file`, checked by
  ``check-config``; :func:`apply_people_file` puts it into the store). For the instants it
  covers, the file wins over observations.

Intervals are half-open, ``[from, to)``: an event exactly at the instant of a change belongs to
the new membership. A person with no interval covering an instant (before the first one, when
their CRM user was created later) has no department then; a person with no observed interval
(a store filled before memberships were kept) is read from the people table as they are now
wherever the file does not speak.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import Enum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from tasuki.errors import ConfigError, Problem
from tasuki.settings import Config, Settings
from tasuki.store.models import Membership, Person, SyncCursor, utcnow
from tasuki.store.upsert import insert_ignore, upsert
from tasuki.yamlsource import Located, load

log = logging.getLogger(__name__)

BEGINNING = datetime(1900, 1, 1, tzinfo=UTC)
"""The start of an interval that reaches back to the beginning of time."""

DEPARTMENTS = ("MK", "IS", "FS", "CS")

PEOPLE_FILES = ("people.yaml", "people.yml", "people.csv")
"""The admin's file of past memberships, looked for next to ``tasuki.yaml`` in this order."""

FILE_CURSOR = "tasuki:people-file"
"""The ``sync_cursors`` row holding the digest of the file's intervals last put in the store."""

FILE_COLUMNS = ("person", "department", "team", "from", "to")


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


# --- the admin's file ---------------------------------------------------------------------


@dataclass(frozen=True)
class FileEntry:
    """One line of the people file: who (id, e-mail or name), where, from when to when."""

    person: str
    department: str
    team: str | None
    start: datetime
    end: datetime | None
    file: str
    line: int
    column: int

    def problem(self, message: str) -> Problem:
        return Problem(self.file, self.line, self.column, message)


def people_file(settings: Settings) -> Path | None:
    """The people file next to ``tasuki.yaml``, if the admin wrote one."""
    for name in PEOPLE_FILES:
        path = settings.config_path.parent / name
        if path.is_file():
            return path
    return None


class _Entries:
    """Collects entries and problems from either format."""

    def __init__(self, config: Config, file: str) -> None:
        self.config = config
        self.tz = ZoneInfo(config.calendar.timezone)
        self.file = file
        self.entries: list[FileEntry] = []
        self.problems: list[Problem] = []

    def add(self, values: Mapping[str, Any], where: Mapping[str, tuple[int, int]]) -> None:
        """One entry; ``where`` places each column (and ``""``, the entry itself)."""

        def bad(column: str, message: str) -> None:
            line, col = where.get(column, where[""])
            self.problems.append(Problem(self.file, line, col, message))

        before = len(self.problems)
        for key in values:
            if key not in FILE_COLUMNS:
                bad(key, f"unknown column {key!r}; expected {', '.join(FILE_COLUMNS)}")
        person = str(values.get("person") or "").strip()
        if not person:
            bad("person", "person is missing (a CRM user id, e-mail or name)")
        raw_dept = str(values.get("department") or "").strip()
        dept = raw_dept if raw_dept in DEPARTMENTS else self.config.departments.values.get(raw_dept)
        if dept is None:
            known = ", ".join([*DEPARTMENTS, *self.config.departments.values])
            bad("department", f"unknown department {raw_dept!r}; known: {known}")
        team = str(values.get("team") or "").strip() or None
        start = self._instant(values.get("from"), "from", bad)
        end = self._instant(values.get("to"), "to", bad)
        if start is not None and end is not None and end <= start:
            bad("to", "to must be after from")
        if len(self.problems) > before or dept is None:
            return
        line, col = where[""]
        self.entries.append(
            FileEntry(person, dept, team, start or BEGINNING, end, self.file, line, col)
        )

    def _instant(self, value: Any, column: str, bad: Any) -> datetime | None:
        """A date (local midnight) or a date and time (naive = the company's zone) as UTC."""
        if value is None or value == "":
            return None
        if isinstance(value, datetime):
            at = value
        elif isinstance(value, date):
            at = datetime(value.year, value.month, value.day)
        else:
            try:
                at = datetime.fromisoformat(str(value).strip())
            except ValueError:
                bad(column, f"{column}: not a date: {value!r} (expected YYYY-MM-DD)")
                return None
        local = at if at.tzinfo else at.replace(tzinfo=self.tz)
        return local.astimezone(UTC)


def _from_yaml(doc: Located, into: _Entries) -> None:
    data = doc.data
    if not isinstance(data, dict) or not isinstance(data.get("people"), list):
        into.problems.append(doc.problem((), "expected `people:` with a list of entries"))
        return
    for key in data:
        if key != "people":
            into.problems.append(doc.problem((key,), f"unknown setting {key!r}", key=True))
    for i, item in enumerate(data["people"]):
        if not isinstance(item, dict):
            into.problems.append(doc.problem(("people", i), "an entry is a mapping"))
            continue
        where = {k: doc.where(("people", i, k)) for k in item}
        where[""] = doc.where(("people", i))
        into.add(item, where)


def _from_csv(text: str, into: _Entries) -> None:
    reader = csv.reader(io.StringIO(text))
    rows = list(reader)
    if not rows:
        into.problems.append(Problem(into.file, 1, 1, "empty: expected a header line"))
        return
    header = [h.strip() for h in rows[0]]
    offsets = _column_offsets(text.splitlines())
    for n, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        values = {header[j] if j < len(header) else f"column {j + 1}": v for j, v in enumerate(row)}
        cols = offsets.get(n, [])
        where = {
            (header[j] if j < len(header) else f"column {j + 1}"): (
                n,
                cols[j] if j < len(cols) else 1,
            )
            for j in range(len(row))
        }
        where[""] = (n, 1)
        into.add(values, where)


def _column_offsets(lines: Sequence[str]) -> dict[int, list[int]]:
    """1-based column where each cell of each line starts (commas outside quotes)."""
    out: dict[int, list[int]] = {}
    for n, line in enumerate(lines, start=1):
        starts, quoted = [1], False
        for i, ch in enumerate(line):
            if ch == '"':
                quoted = not quoted
            elif ch == "," and not quoted:
                starts.append(i + 2)
        out[n] = starts
    return out


def read_people_file(path: Path, config: Config) -> list[FileEntry]:
    """The entries of the people file at ``path``; every mistake (unknown column or department,
    bad date, ``to`` before ``from``, two entries of one person overlapping) raised at once as
    a ConfigError placed at FILE:LINE:COL."""
    into = _Entries(config, str(path))
    if path.suffix == ".csv":
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError([Problem(str(path), 1, 1, f"cannot read: {exc}")]) from exc
        _from_csv(text, into)
    else:
        _from_yaml(load(path), into)
    into.problems.extend(_overlaps(into.entries, key=lambda e: e.person.casefold()))
    if into.problems:
        raise ConfigError(into.problems)
    return into.entries


def _overlaps(entries: Sequence[FileEntry], key: Any) -> list[Problem]:
    by: dict[str, list[FileEntry]] = defaultdict(list)
    for e in entries:
        by[key(e)].append(e)
    problems = []
    for items in by.values():
        items = sorted(items, key=lambda e: e.start)
        for a, b in zip(items, items[1:], strict=False):
            if a.end is None or b.start < a.end:
                problems.append(
                    b.problem(
                        f"{b.person}: overlaps the entry at line {a.line} "
                        f"(a person is in one department at a time)"
                    )
                )
    return problems


def resolve_people(
    entries: Sequence[FileEntry], people: Sequence[tuple[str, str, str]]
) -> dict[int, str]:
    """Each entry's CRM user id (by index), from ``people`` (user id, e-mail, name): an id, an
    e-mail (any case) or a name that fits one person. An unknown or ambiguous person, or the
    same person's entries overlapping under different spellings, is a ConfigError (all at
    once)."""
    by_id = {uid: uid for uid, _, _ in people}
    by_email: dict[str, list[str]] = defaultdict(list)
    by_name: dict[str, list[str]] = defaultdict(list)
    for uid, email, name in people:
        if email:
            by_email[email.casefold()].append(uid)
        if name:
            by_name[name.casefold()].append(uid)
    problems: list[Problem] = []
    out: dict[int, str] = {}
    for n, e in enumerate(entries):
        key = e.person.casefold()
        found = [by_id[e.person]] if e.person in by_id else by_email.get(key) or by_name.get(key)
        if not found:
            problems.append(
                e.problem(
                    f"unknown person {e.person!r} (no CRM user has this id, "
                    "e-mail or name; sync people first)"
                )
            )
        elif len(set(found)) > 1:
            problems.append(
                e.problem(
                    f"{e.person!r} names {len(found)} people: {', '.join(sorted(found))}; "
                    "give the id or e-mail"
                )
            )
        else:
            out[n] = found[0]
    resolved = [
        FileEntry(out[n], e.department, e.team, e.start, e.end, e.file, e.line, e.column)
        for n, e in enumerate(entries)
        if n in out
    ]
    problems += [p for p in _overlaps(resolved, key=lambda e: e.person) if p not in problems]
    if problems:
        raise ConfigError(problems)
    return out


def apply_people_file(session: Session, settings: Settings) -> int | None:
    """Put the people file's intervals into the store when they differ from what it holds
    (a file edited, a person it names synced since); returns intervals written, None when
    nothing changed. A file with mistakes is reported in the log and changes nothing."""
    system = settings.config.crm
    path = people_file(settings)
    rows: list[dict[str, Any]] = []
    if path is not None:
        people = [
            (uid, email, name)
            for uid, email, name in session.execute(
                select(Person.user_id, Person.email, Person.name).where(Person.system == system)
            )
        ]
        try:
            entries = read_people_file(path, settings.config)
            ids = resolve_people(entries, people)
        except ConfigError as exc:
            log.warning("people file not applied: %s", exc)
            return None
        for n, e in enumerate(entries):
            rows.append(
                {
                    "system": system,
                    "user_id": ids[n],
                    "department": e.department,
                    "team": e.team,
                    "valid_from": e.start,
                    "valid_to": e.end,
                    "source": Source.FILE.value,
                    "observed_at": utcnow(),
                }
            )
    digest = hashlib.sha256(
        repr(
            sorted(
                (
                    r["user_id"],
                    r["department"],
                    r["team"],
                    r["valid_from"].isoformat(),
                    r["valid_to"].isoformat() if r["valid_to"] else "",
                )
                for r in rows
            )
        ).encode()
    ).hexdigest()
    held = session.scalar(
        select(SyncCursor.cursor).where(
            SyncCursor.system == system, SyncCursor.object == FILE_CURSOR
        )
    )
    if held == digest or (held is None and not rows):
        return None
    session.execute(
        delete(Membership).where(
            Membership.system == system, Membership.source == Source.FILE.value
        )
    )
    written = insert_ignore(
        session, Membership, rows, ["system", "user_id", "source", "valid_from"]
    )
    upsert(
        session,
        SyncCursor,
        [{"system": system, "object": FILE_CURSOR, "cursor": digest, "updated_at": utcnow()}],
        ["system", "object"],
        ["cursor", "updated_at"],
    )
    return written


def learn(
    session: Session,
    settings: Settings,
    people: Iterable[Mapping[str, Any]],
    fields: Mapping[str, Mapping[str, Any]] | None = None,
    at: datetime | None = None,
) -> None:
    """What a people sync adds to memberships: the observations of ``people`` at ``at``
    (default now; each user's logical ``fields`` give ``created_at`` and ``modified_at`` when
    mapped), then the admin's file (which may name people just synced)."""
    when = at or utcnow()
    created: dict[str, datetime] = {}
    changed: dict[str, datetime] = {}
    for uid, f in (fields or {}).items():
        for name, into in (("created_at", created), ("modified_at", changed)):
            instant = _instant(f.get(name))
            if instant is not None:
                into[uid] = instant
    observe(session, settings.config.crm, people, when, created, changed)
    apply_people_file(session, settings)


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
