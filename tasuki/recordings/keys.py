"""Match keys: the values a recording and a CRM record can meet on, so that a re-match pass
looks only at the recordings a change could concern.

Matching (:mod:`tasuki.recordings.matching`) finds a recording's candidates by a few values:
a call's phone numbers in E.164, a meeting's participant emails, their domains, its host. The
same values, taken from a CRM record's snapshot, are that record's keys; the store keeps both
sides indexed (:mod:`tasuki.recordings.index`). A key is a (kind, value) pair:

    phone         E.164 number          a lead's or contact's phone; a call's numbers
    email         lower-cased email     a lead's or contact's email; a meeting's participants;
                                        a CRM user's email (users' emails are not guests)
    domain        email / web domain    an account's website; every parent domain of a
                                        participant's email domain; a CRM user's email domain
    host          lower-cased email     a CRM user's email; a meeting's host, a call's caller
    miitel_user   MiiTel user id        a call's caller (``recordings.yaml`` maps it to a user)
    lead_account  account id            a lead's or contact's account: look-ups only
    deal_lead     lead id               a deal's lead
    deal_account  account id            a deal's account
    deal_owner    user id, UTC day      a deal's owner and its meeting's day (``005… 2026-11-20``:
                                        the host's deals booked at a meeting's time)

The first five are on both sides. The deal kinds lead from a changed deal to the recordings
through the records they name (the lead's email, the account's domain and its leads' emails,
the owner's email); ``lead_account`` serves that last step. Everything here is a pure function
of one snapshot or one recording, the same for every configuration: which objects are searched
is decided when reading, so the index never has to be rebuilt when ``recordings.yaml`` changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

from tasuki.recordings.capture import Kind, parse_time
from tasuki.recordings.phones import to_e164


class KeyKind(str, Enum):
    """What a match key's value is (see the module docstring)."""

    PHONE = "phone"
    EMAIL = "email"
    DOMAIN = "domain"
    HOST = "host"
    MIITEL_USER = "miitel_user"
    LEAD_ACCOUNT = "lead_account"
    DEAL_LEAD = "deal_lead"
    DEAL_ACCOUNT = "deal_account"
    DEAL_OWNER = "deal_owner"


Key = tuple[str, str]
"""A (kind, value) pair, the kind a :class:`KeyKind` value."""

USER_OBJECT = "user"
"""The logical object of CRM users: their emails decide who is a guest and who hosts."""
ACCOUNT_OBJECT = "account"
"""The logical object searched by a participant's email domain."""
DEAL_OBJECT = "deal"
"""The logical object a meeting links to first."""
LEAD_OBJECT = "lead"
"""The logical object a deal names in ``lead_id``."""

MATCH_FIELDS = frozenset(
    {"phone", "email", "domain", "owner", "sourced_by", "account_id", "lead_id", "meeting_date"}
)
"""The logical fields matching reads. A synced change to any of them (or a record appearing or
going) marks the record's keys for the next pass; a change to any other field cannot change a
link. Keep it in step with :mod:`tasuki.recordings.matching`."""

MARKED_KINDS = frozenset(k.value for k in KeyKind) - {KeyKind.LEAD_ACCOUNT.value}
"""Kinds a change marks: a lead's account matters only once the lead is found by its email,
which its ``email`` key already covers."""


def email_domain(email: str) -> str:
    """The part after ``@``, lower-cased (empty when there is none)."""
    return email.rsplit("@", 1)[1].lower() if "@" in email else ""


def web_domain(value: object) -> str:
    """``https://www.corp.example.jp/about`` → ``corp.example.jp``; a bare domain stays."""
    text = str(value or "").strip().lower()
    if not text:
        return ""
    host = urlsplit(text if "//" in text else f"//{text}").hostname or ""
    return host.removeprefix("www.")


def parent_domains(domain: str) -> list[str]:
    """``a.corp.example.jp`` → itself and each parent down to two labels, nearest first (the
    order in which an account is looked for)."""
    parts = domain.lower().split(".")
    return [".".join(parts[i:]) for i in range(len(parts) - 1)]


def snapshot_email(fields: Mapping[str, Any]) -> str:
    """A record's email as matching compares it."""
    return str(fields.get("email") or "").strip().lower()


def owner_day(owner: str, day: date) -> str:
    """The value of a ``deal_owner`` key: the owner's id and the meeting's UTC day."""
    return f"{owner} {day.isoformat()}"


def _text(value: object) -> str:
    return str(value or "")


def record_keys(obj: str, fields: Mapping[str, Any]) -> set[Key]:
    """The keys of one live snapshot of logical object ``obj``."""
    if obj == USER_OBJECT:
        email = snapshot_email(fields)
        if not email:
            return set()
        out = {(KeyKind.EMAIL.value, email), (KeyKind.HOST.value, email)}
        if domain := email_domain(email):
            out.add((KeyKind.DOMAIN.value, domain))
        return out
    out = set()
    if phone := to_e164(fields.get("phone")):
        out.add((KeyKind.PHONE.value, phone))
    if email := snapshot_email(fields):
        out.add((KeyKind.EMAIL.value, email))
    if obj == ACCOUNT_OBJECT:
        if domain := web_domain(fields.get("domain")):
            out.add((KeyKind.DOMAIN.value, domain))
    elif obj == DEAL_OBJECT:
        for kind, name in ((KeyKind.DEAL_LEAD, "lead_id"), (KeyKind.DEAL_ACCOUNT, "account_id")):
            if value := _text(fields.get(name)):
                out.add((kind.value, value))
        owner, booked = _text(fields.get("owner")), parse_time(fields.get("meeting_date"))
        if owner and booked is not None:
            out.add((KeyKind.DEAL_OWNER.value, owner_day(owner, booked.date())))
    elif account := _text(fields.get("account_id")):
        out.add((KeyKind.LEAD_ACCOUNT.value, account))
    return out


def match_fields_differ(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> bool:
    """True when a record appeared, went, or changed a field matching reads (``None``: no live
    snapshot)."""
    if before is None or after is None:
        return before is not after
    return any(before.get(f) != after.get(f) for f in MATCH_FIELDS)


def recording_keys(
    kind: str, phones: Iterable[str], emails: Iterable[str], host_email: str, user_id: str
) -> set[Key]:
    """The keys of one recording, from what its provider told (no CRM look-up)."""
    out: set[Key] = set()
    if host_email:
        out.add((KeyKind.HOST.value, host_email.lower()))
    if kind == Kind.CALL.value:
        out.update((KeyKind.PHONE.value, n) for n in (to_e164(p) for p in phones) if n)
        if user_id:
            out.add((KeyKind.MIITEL_USER.value, user_id))
        return out
    for email in emails:
        out.add((KeyKind.EMAIL.value, email.lower()))
        out.update((KeyKind.DOMAIN.value, d) for d in parent_domains(email_domain(email)))
    return out
