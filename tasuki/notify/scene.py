"""What event finders look at: the store as of one sweep, with people and records at hand.

A finder (:mod:`tasuki.notify.events`, :mod:`tasuki.notify.ops_events`) turns store state into
:class:`Occurrence` values: one thing that happened, its key (so it is announced once), when it
happened (so quiet hours and ``max_age`` can be applied), the message, and the people it names
by role (``sender``, ``receiver_manager`` …).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tasuki.meeting.links import record_link
from tasuki.notify.message import Link, Message
from tasuki.notify.schema import NotificationBook, NotificationRule
from tasuki.runtime import Runtime
from tasuki.store.models import Handoff, Person, Record


@dataclass(frozen=True)
class Occurrence:
    """One thing worth telling, found in the store."""

    subject: str
    """What it is about (``handoff:12``, ``sync:local:Lead``)."""
    key: str
    """Which occurrence of it (``breach``, a digest of what to fix, a period): a new key is a
    new message, the same key never is."""
    at: datetime
    """When it happened (its message may go out from then on)."""
    message: Message
    people: Mapping[str, str | None] = field(default_factory=dict)
    """CRM user ids by role."""


class Scene:
    """The store as one sweep sees it (read in one session)."""

    def __init__(
        self, rt: Runtime, session: Session, now: datetime, book: NotificationBook
    ) -> None:
        self.rt = rt
        self.session = session
        self.now = now
        self.book = book
        self.system = rt.system
        self.calendar = rt.calendar

    @cached_property
    def people(self) -> dict[str, Person]:
        """Every person of the CRM, by user id."""
        rows = self.session.scalars(select(Person).where(Person.system == self.system))
        return {p.user_id: p for p in rows}

    def name(self, user_id: str | None) -> str:
        """A person's name as the CRM has it (the id when unknown, ``nobody`` when None)."""
        if not user_id:
            return "nobody"
        person = self.people.get(user_id)
        return (person.name or user_id) if person else user_id

    @cached_property
    def _user_records(self) -> dict[str, dict[str, Any]]:
        rows = self.session.execute(
            select(Record.record_id, Record.fields).where(
                Record.system == self.system, Record.object == "user"
            )
        )
        return {rid: dict(fields or {}) for rid, fields in rows}

    def manager(self, user_id: str | None) -> str | None:
        """The manager of ``user_id`` (the user field ``people.manager_field`` names), if the
        CRM says and tasuki knows that person."""
        if not user_id:
            return None
        found = self._user_records.get(user_id, {}).get(self.book.people.manager_field)
        return str(found) if found and str(found) in self.people else None

    def record(self, logical: str, record_id: str | None) -> dict[str, Any]:
        """The latest snapshot of a record (empty when tasuki has none)."""
        if not record_id:
            return {}
        fields = self.session.scalars(
            select(Record.fields).where(
                Record.system == self.system,
                Record.object == logical,
                Record.record_id == record_id,
            )
        ).first()
        return dict(fields or {})

    def title(self, logical: str, record_id: str, fields: Mapping[str, Any]) -> str:
        """How people call a record: its name, with the company when that says more."""
        name = str(fields.get("name") or "").strip()
        company = str(fields.get("company") or "").strip()
        if not company and fields.get("account_id"):
            account = self.record("account", str(fields["account_id"]))
            company = str(account.get("name") or "").strip()
        if name and company and company not in name:
            return f"{name} ({company})"
        return name or company or f"{logical} {record_id}"

    def link(self, logical: str, record_id: str) -> Link | None:
        """A link to the record in the CRM, when the settings allow one."""
        url = record_link(self.rt.settings, logical, record_id)
        return Link(url, "Open in the CRM") if url else None

    def local(self, at: datetime) -> str:
        """An instant in the company's timezone, as people read it."""
        return at.astimezone(self.calendar.tz).strftime("%Y-%m-%d %H:%M")

    def handoff_people(self, h: Handoff) -> dict[str, str | None]:
        """The roles of a handoff event."""
        return {
            "sender": h.sender_id,
            "receiver": h.receiver_id,
            "sender_manager": self.manager(h.sender_id),
            "receiver_manager": self.manager(h.receiver_id),
        }


Finder = Callable[[Scene, NotificationRule], list[Occurrence]]
"""Finds the occurrences of one rule's event."""


def span(seconds: float) -> str:
    """A duration as people read it: ``5h30m``, ``45m``, ``2d 3h`` (days of 24 hours)."""
    minutes = int(abs(seconds)) // 60
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    return f"{hours}h{mins:02d}m" if hours else f"{mins}m"
