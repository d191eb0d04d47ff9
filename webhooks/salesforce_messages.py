"""What Salesforce sends tasuki: Outbound Messages (SOAP) and relayed change events (JSON).

Pure parsing, no I/O. An Outbound Message is parsed with defusedxml with DTDs, entity
declarations and external references all forbidden, so an XML bomb or an external entity is a
:class:`BadMessage` before anything is expanded or fetched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

OUTBOUND_NS = "http://soap.sforce.com/2005/09/outbound"
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
MAX_NOTIFICATIONS = 100
"""Salesforce puts at most 100 notifications in one message."""

SYSTEM_FIELDS = frozenset(
    {"LastModifiedDate", "LastModifiedById", "SystemModstamp", "LastReferencedDate"}
)
"""Fields every save bumps: a change of only these (and tasuki's own fields) is no change."""

ACK = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    f'<soapenv:Envelope xmlns:soapenv="{SOAP_NS}"><soapenv:Body>'
    f'<notificationsResponse xmlns="{OUTBOUND_NS}"><Ack>true</Ack></notificationsResponse>'
    "</soapenv:Body></soapenv:Envelope>"
)
"""The answer that tells Salesforce a message was received (and stops its retries)."""

_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")


class BadMessage(ValueError):
    """The request is not a message tasuki accepts (answered 400)."""


@dataclass(frozen=True)
class Notification:
    """One record change in an Outbound Message."""

    id: str
    """The notification's own id: the same notification sent twice has the same id."""
    object: str
    record_id: str
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OutboundMessage:
    """An Outbound Message: the sending org and its notifications."""

    organization_id: str
    notifications: list[Notification]


@dataclass(frozen=True)
class ChangeEvent:
    """One Change Data Capture event as relayed: its header fields tasuki uses."""

    delivery_id: str
    object: str
    record_ids: list[str]
    change_type: str
    changed_fields: list[str]
    commit_user: str | None


def same_id(a: str, b: str) -> bool:
    """Whether two Salesforce ids (org, user, record) are the same: the 15-character form and
    the 18-character one compare equal."""
    return len(a) >= 15 and len(b) >= 15 and a[:15] == b[:15]


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(parent: Element, name: str) -> Element | None:
    return next((c for c in parent if _local(c.tag) == name), None)


def parse_outbound_message(body: bytes) -> OutboundMessage:
    """The Outbound Message in ``body``; raises :class:`BadMessage` for anything else, including
    any DTD, entity declaration or external reference."""
    try:
        root = SafeET.fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (DefusedXmlException, ParseError, ValueError, LookupError) as exc:
        # expat raises ValueError for a multi-byte encoding it cannot read, and the codec
        # registry LookupError for an unknown one (``<?xml encoding="x"?>``).
        raise BadMessage(f"not acceptable XML: {type(exc).__name__}") from exc
    found = root.find(f".//{{{OUTBOUND_NS}}}notifications")
    if found is None:
        raise BadMessage("no notifications element")
    org = _child(found, "OrganizationId")
    if org is None or not (org.text or "").strip():
        raise BadMessage("no OrganizationId")
    items = [c for c in found if _local(c.tag) == "Notification"]
    if not items or len(items) > MAX_NOTIFICATIONS:
        raise BadMessage(f"{len(items)} notifications (1 to {MAX_NOTIFICATIONS} expected)")
    return OutboundMessage((org.text or "").strip(), [_notification(n) for n in items])


def _notification(item: Element) -> Notification:
    nid = _child(item, "Id")
    sobject = _child(item, "sObject")
    if nid is None or sobject is None or not (nid.text or "").strip():
        raise BadMessage("a Notification without Id or sObject")
    kind = sobject.get(XSI_TYPE, "")
    object_name = kind.rsplit(":", 1)[-1]
    fields = {_local(c.tag): (c.text or "").strip() for c in sobject}
    record_id = fields.get("Id", "")
    if not object_name or not _ID.match(record_id):
        raise BadMessage("a Notification without object type or record Id")
    return Notification((nid.text or "").strip(), object_name, record_id, fields)


def _strings(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [str(v) for v in value if isinstance(v, str | int)]


def parse_change_events(payload: Any) -> list[ChangeEvent]:
    """The change events in a relayed JSON body: a list of events, one event, or
    ``{"events": [...]}``; each with a ``ChangeEventHeader``."""
    if isinstance(payload, Mapping) and "events" in payload:
        payload = payload["events"]
    events = payload if isinstance(payload, list) else [payload]
    out: list[ChangeEvent] = []
    for n, event in enumerate(events):
        header = event.get("ChangeEventHeader") if isinstance(event, Mapping) else None
        if not isinstance(header, Mapping):
            raise BadMessage(f"event {n} has no ChangeEventHeader")
        entity = str(header.get("entityName") or "")
        ids = [i for i in _strings(header.get("recordIds")) if _ID.match(i)]
        key = header.get("transactionKey")
        if not entity or not ids or not key:
            raise BadMessage(f"event {n} lacks entityName, recordIds or transactionKey")
        sequence = header.get("sequenceNumber", n)
        commit_user = header.get("commitUser")
        out.append(
            ChangeEvent(
                delivery_id=f"{key}:{sequence}",
                object=entity,
                record_ids=ids,
                change_type=str(header.get("changeType") or ""),
                changed_fields=_strings(header.get("changedFields")),
                commit_user=str(commit_user) if commit_user else None,
            )
        )
    return out


def is_echo(
    changed_fields: Iterable[str], by: str | None, written: set[str], integration_user: str | None
) -> bool:
    """Whether a change is tasuki's own write coming back: made by the integration user, or
    changing only fields tasuki writes (and the ones every save bumps)."""
    if integration_user and by and same_id(by, integration_user):
        return True
    changed = set(changed_fields) - SYSTEM_FIELDS
    return bool(set(changed_fields)) and changed <= written
