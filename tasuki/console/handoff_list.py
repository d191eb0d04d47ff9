"""The handoff list: filters read from a query string, checked, and one page of handoffs.

Each filter is a column of ``handoffs`` or an ``EXISTS`` on its verdict's violations, so a page
is two statements (the count and the rows) on the ``(boundary, handed_at)`` index; the search
also looks at the handed-over records' name, company and e-mail.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from tasuki.console.figures import OUTCOMES, names
from tasuki.store.models import Handoff, Person, Record, Verdict, Violation

PAGE_SIZE = 50
"""Handoffs per page."""
MAX_SEARCH = 200
"""Longest search text accepted."""
_ID = re.compile(r"^[\w.@:-]{1,64}$")
_RULE = re.compile(r"^[\w.:-]{1,120}$")
VERDICTS = (*OUTCOMES, "unjudged")


class BadFilter(ValueError):
    """A filter the list cannot apply (the message names it, in the user's words)."""


@dataclass(frozen=True)
class Filters:
    """What the list is narrowed to; each ``None`` or empty means "any"."""

    boundary: str | None = None
    verdict: str | None = None
    rule: str | None = None
    sender: str | None = None
    receiver: str | None = None
    department: str | None = None
    """Sender's department (a breakdown row's link)."""
    team: str | None = None
    """Sender's or receiver's team, with ``side``."""
    side: str = "sender"
    search: str = ""
    page: int = 1

    def query(self, **changes: Any) -> dict[str, str]:
        """These filters as query parameters (with ``changes``), for links and pagination."""
        values = {
            "boundary": self.boundary,
            "verdict": self.verdict,
            "rule": self.rule,
            "sender": self.sender,
            "receiver": self.receiver,
            "department": self.department,
            "team": self.team,
            "side": self.side if self.team else None,
            "q": self.search or None,
            "page": str(self.page) if self.page != 1 else None,
        }
        values.update(changes)
        return {k: str(v) for k, v in values.items() if v}


def parse_filters(args: Mapping[str, str], boundaries: list[str]) -> Filters:
    """The filters of a query string; :class:`BadFilter` for one that cannot be right."""

    def one(name: str, pattern: re.Pattern[str] | None = None) -> str | None:
        value = (args.get(name) or "").strip()
        if not value:
            return None
        if pattern is not None and not pattern.match(value):
            raise BadFilter(name)
        return value

    boundary = one("boundary")
    if boundary is not None:
        boundary = boundary.replace("->", "→")
        if boundary not in boundaries:
            raise BadFilter("boundary")
    verdict = one("verdict")
    if verdict is not None and verdict not in VERDICTS:
        raise BadFilter("verdict")
    department = one("department")
    if department is not None and department not in ("MK", "IS", "FS", "CS"):
        raise BadFilter("department")
    side = (args.get("side") or "sender").strip()
    if side not in ("sender", "receiver"):
        raise BadFilter("side")
    page_text = (args.get("page") or "1").strip()
    if not page_text.isdigit() or not 1 <= int(page_text) <= 1_000_000:
        raise BadFilter("page")
    search = (args.get("q") or "").strip()
    if len(search) > MAX_SEARCH:
        raise BadFilter("q")
    return Filters(
        boundary=boundary,
        verdict=verdict,
        rule=one("rule", _RULE),
        sender=one("sender", _ID),
        receiver=one("receiver", _ID),
        department=department,
        team=one("team"),
        side=side,
        search=search,
        page=int(page_text),
    )


@dataclass(frozen=True)
class HandoffRow:
    """One line of the list."""

    id: int
    boundary: str
    object: str
    record_id: str
    title: str
    company: str
    sender: str
    receiver: str
    handed_at: datetime
    outcome: str | None
    score: int | None


@dataclass(frozen=True)
class HandoffPage:
    """One page of the list and where it sits."""

    rows: list[HandoffRow]
    total: int
    page: int
    pages: int


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _conditions(
    session: Session, system: str, f: Filters, start: datetime, end: datetime
) -> list[ColumnElement[bool]]:
    conds: list[ColumnElement[bool]] = [
        Handoff.system == system,
        Handoff.handed_at >= start,
        Handoff.handed_at < end,
    ]
    if f.boundary:
        conds.append(Handoff.boundary == f.boundary)
    if f.sender:
        conds.append(Handoff.sender_id == f.sender)
    if f.receiver:
        conds.append(Handoff.receiver_id == f.receiver)
    if f.department:
        conds.append(Handoff.sender_department == f.department)
    if f.team:
        members = (
            select(Person.user_id)
            .where(Person.system == system, Person.team == f.team)
            .correlate(None)
        )
        column = Handoff.sender_id if f.side == "sender" else Handoff.receiver_id
        conds.append(column.in_(members))
    # Aliases, correlated to handoffs only: the list's own query joins verdicts and records.
    judged = aliased(Verdict)

    def verdict_where(*where: ColumnElement[bool]) -> ColumnElement[bool]:
        found = select(judged.id).where(judged.handoff_id == Handoff.id, *where)
        return exists(found.correlate(Handoff))

    if f.verdict == "unjudged":
        conds.append(~verdict_where())
    elif f.verdict:
        conds.append(verdict_where(judged.outcome == f.verdict))
    if f.rule:
        broke = select(Violation.id).where(
            Violation.verdict_id == judged.id, Violation.rule_id == f.rule
        )
        conds.append(verdict_where(exists(broke.correlate(judged))))
    if f.search:
        pattern = _like(f.search)
        shown = aliased(Record)
        fields = [shown.fields[n].as_string() for n in ("name", "company", "email")]
        # Correlated to each handoff of the period (the records' unique key finds its record):
        # bounded by the period's handoffs, never a scan of every record.
        matching = (
            select(shown.id)
            .where(
                shown.system == Handoff.system,
                shown.object == Handoff.object,
                shown.record_id == Handoff.record_id,
                or_(*(func.lower(c).like(pattern, escape="\\") for c in fields)),
            )
            .correlate(Handoff)
        )
        conds.append(or_(Handoff.record_id == f.search, exists(matching)))
    return conds


def handoff_page(
    session: Session, system: str, f: Filters, start: datetime, end: datetime
) -> HandoffPage:
    """The page ``f.page`` of the handoffs made in ``[start, end)`` that pass ``f``, newest
    first; a page past the end has no rows (the caller answers 404)."""
    conds = _conditions(session, system, f, start, end)
    total = int(session.scalar(select(func.count()).select_from(Handoff).where(*conds)) or 0)
    pages = max(1, -(-total // PAGE_SIZE))
    rows = session.execute(
        select(
            Handoff,
            Verdict.outcome,
            Verdict.score,
            Record.fields["name"].as_string(),
            Record.fields["company"].as_string(),
        )
        .outerjoin(Verdict, Verdict.handoff_id == Handoff.id)
        .outerjoin(
            Record,
            and_(
                Record.system == Handoff.system,
                Record.object == Handoff.object,
                Record.record_id == Handoff.record_id,
            ),
        )
        .where(*conds)
        .order_by(Handoff.handed_at.desc(), Handoff.id.desc())
        .limit(PAGE_SIZE)
        .offset((f.page - 1) * PAGE_SIZE)
    ).all()
    people = names(
        session, system, (i for r in rows for i in (r[0].sender_id, r[0].receiver_id) if i)
    )

    def who(user_id: str | None) -> str:
        p = people.get(user_id or "")
        return p.name if p and p.name else (user_id or "—")

    return HandoffPage(
        [
            HandoffRow(
                h.id,
                h.boundary,
                h.object,
                h.record_id,
                title or h.record_id,
                company or "",
                who(h.sender_id),
                who(h.receiver_id),
                h.handed_at,
                outcome,
                score,
            )
            for h, outcome, score, title, company in rows
        ],
        total,
        f.page,
        pages,
    )
