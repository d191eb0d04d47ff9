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

KPI_OBJECT = "Tasuki_KPI__c"
KPI_KEY = "Tasuki_Key__c"
KPI_FIELDS = {
    KPI_KEY: "string",
    "User__c": "string",
    "Subject_Kind__c": "string",
    "Subject__c": "string",
    "KPI_Id__c": "string",
    "KPI_Label__c": "string",
    "Period__c": "string",
    "Value__c": "number",
    "Target__c": "number",
    "Attainment__c": "number",
    "Numerator__c": "number",
    "Denominator__c": "number",
}
"""tasuki's own KPI rows (docs/salesforce.md): one per person (team, department, org), KPI and
period, upserted on ``Tasuki_Key__c`` (External ID, Unique)."""


def seeded_org(public_key_pem: bytes | None = None) -> Org:
    """An org with Lead, Opportunity and Tasuki_KPI__c as tasuki.yaml maps them, and the
    integration user allowed to sign in by password and (given the app's public key) by JWT."""
    org = Org()
    org.define("Lead", LEAD_FIELDS)
    org.define("Opportunity", OPPORTUNITY_FIELDS)
    org.define(KPI_OBJECT, KPI_FIELDS, external_ids=[KPI_KEY])
    org.allow_login(USERNAME, PASSWORD, TOKEN)
    if public_key_pem is not None:
        org.register_app(CONSUMER_KEY, public_key_pem)
    return org
