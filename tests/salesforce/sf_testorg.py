"""The emulated org the Salesforce tests and the bench use: objects, fields and credentials."""

from __future__ import annotations

from tests.salesforce.sf_emulator import Org

CONSUMER_KEY = "3MVG9tasuki.test.consumer.key"
USERNAME = "tasuki-integration@example.com"
PASSWORD = "correct horse"
TOKEN = "battery staple"

LEAD_FIELDS = {
    "OwnerId": "string",
    "Status": "string",
    "Name": "string",
    "Company": "string",
    "Email": "string",
    "Phone": "string",
    "LeadSource": "string",
    "Inquiry__c": "string",
    "Account__c": "string",
    "MQL_Date__c": "datetime",
    "First_Touch_At__c": "datetime",
    "Tasuki_Verdict__c": "string",
    "Tasuki_Score__c": "number",
    "Tasuki_Violations__c": "string",
}
OPPORTUNITY_FIELDS = {
    "OwnerId": "string",
    "Name": "string",
    "StageName": "string",
    "Amount": "number",
    "Tasuki_Verdict__c": "string",
    "Tasuki_Score__c": "number",
    "Tasuki_Violations__c": "string",
}


def seeded_org(public_key_pem: bytes | None = None) -> Org:
    """An org with Lead and Opportunity as tasuki.yaml maps them, and the integration user
    allowed to sign in by password and (given the app's public key) by JWT."""
    org = Org()
    org.define("Lead", LEAD_FIELDS)
    org.define("Opportunity", OPPORTUNITY_FIELDS)
    org.allow_login(USERNAME, PASSWORD, TOKEN)
    if public_key_pem is not None:
        org.register_app(CONSUMER_KEY, public_key_pem)
    return org
