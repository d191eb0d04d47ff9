"""The admin's people file: past memberships tasuki did not see (see :mod:`tasuki.membership`).

``people.yaml`` (or ``people.csv``, same columns) next to ``tasuki.yaml``::

    people:                       # person: CRM user id, e-mail or name
      - {person: emma@example.com, department: IS, team: East, to: 2026-10-16}
      - {person: emma@example.com, department: Field Sales, from: 2026-10-16}

:func:`read_people_file` validates it (every mistake at once, FILE:LINE:COL; ``check-config``
runs it), :func:`resolve_people` names each person's CRM user, :func:`apply_people_file` puts
the intervals into the store when they changed. For the instants it covers, the file wins over
what people syncs observed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from tasuki.errors import ConfigError, Problem
from tasuki.membership import BEGINNING, DEPARTMENTS, Source
from tasuki.owed import Owed, owe
from tasuki.settings import Config, Settings
from tasuki.store.models import Membership, Person, SyncCursor, Transition, utcnow
from tasuki.store.upsert import insert_ignore, upsert
from tasuki.yamlsource import Located, load

log = logging.getLogger(__name__)

PEOPLE_FILES = ("people.yaml", "people.yml", "people.csv")
"""The admin's file of past memberships, looked for next to ``tasuki.yaml`` in this order."""

FILE_CURSOR = "tasuki:people-file"
"""The ``sync_cursors`` row holding the digest of the file's intervals last put in the store."""

FILE_COLUMNS = ("person", "department", "team", "from", "to")


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
    before = set(
        session.scalars(
            select(Membership.user_id).where(
                Membership.system == system, Membership.source == Source.FILE.value
            )
        )
    )
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
    _owe_detection(session, settings, before | {r["user_id"] for r in rows})
    return written


def _owe_detection(session: Session, settings: Settings, people: set[str]) -> None:
    """Owe detection and judging (then the KPIs) of every record whose owner changes involve
    ``people``, whose past the file just rewrote: handoffs the old memberships hid are found by
    the next judging pass (the recovery sweep runs it within minutes)."""
    config = settings.config
    objects = sorted({b.object for b in config.boundaries if b.trigger.owner_moves is not None})
    if not people or not objects:
        return
    found: set[tuple[str, str]] = set()
    ids = sorted(people)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        found.update(
            (obj, rid)
            for obj, rid in session.execute(
                select(Transition.object, Transition.record_id).where(
                    Transition.system == config.crm,
                    Transition.object.in_(objects),
                    Transition.field == "owner",
                    or_(Transition.old.in_(chunk), Transition.new.in_(chunk)),
                )
            )
        )
    if found:
        owe(session, Owed.JUDGE, sorted(found))
        owe(session, Owed.KPIS)
