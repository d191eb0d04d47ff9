"""Links from tasuki's messages to records in the CRM."""

from __future__ import annotations

from urllib.parse import quote

from tasuki.settings import Settings


def record_link(settings: Settings, logical_object: str, record_id: str) -> str | None:
    """The URL of a record in the CRM, or ``None`` when settings give no way to build one.

    ``meeting.record_url`` (``{object}``: the CRM's object name, ``{id}``: the record id) wins;
    else, on Salesforce with ``TASUKI_SALESFORCE_INSTANCE_URL``, the org's ``/<id>`` link (which
    Salesforce redirects to the record's page).
    """
    config = settings.config
    template = config.meeting.record_url
    rid = quote(record_id, safe="")
    if template:
        try:
            crm_object = config.mapping(logical_object).object
        except KeyError:
            crm_object = logical_object
        return template.replace("{object}", quote(crm_object, safe="")).replace("{id}", rid)
    instance = settings.salesforce.instance_url
    if config.crm == "salesforce" and instance:
        return f"{instance.rstrip('/')}/{rid}"
    return None
