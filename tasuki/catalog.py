"""The logical field catalogue: which logical fields each logical object has in the active CRM."""

from __future__ import annotations

from tasuki.settings import Config


def catalog(config: Config) -> dict[str, list[str]]:
    """``{logical object: sorted logical field names}`` for the active CRM; tasuki's own
    write-only objects (KPI rows) are not something rules or KPIs read."""
    return {
        name: sorted(per_system[config.crm].fields)
        for name, per_system in config.objects.items()
        if config.crm in per_system and name not in config.write_only_objects
    }
