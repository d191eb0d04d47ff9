"""Logical ↔ CRM names: the one place field mappings from tasuki.yaml are applied."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from tasuki.settings import Config


def ledger_value(value: Any) -> str | None:
    """A value in the canonical text form the ledger compares (``None`` stays ``None``)."""
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _loose(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"{float(value):.10g}"
    text = str(value)
    try:
        return f"{float(text):.10g}"  # "100", "100.0" and 100 are the same figure
    except ValueError:
        return text


def crm_holds(ledger_text: str | None, crm_value: Any) -> bool:
    """Whether the CRM's value is what the ledger says tasuki wrote, allowing for how CRMs
    hand values back (HubSpot: every property a string; Salesforce: numbers as floats)."""
    written = None if ledger_text is None else json.loads(ledger_text)
    return _loose(written) == _loose(crm_value)


@dataclass(frozen=True)
class Mapper:
    """Translates records of the active CRM between its names and tasuki's logical names."""

    config: Config

    @cached_property
    def _by_physical(self) -> dict[str, str]:
        return {self.config.mapping(obj).object: obj for obj in self.objects}

    @property
    def objects(self) -> list[str]:
        """Logical objects mapped for the active CRM that tasuki syncs (not its KPI rows)."""
        skip = self.config.write_only_objects
        return [
            o for o, per in self.config.objects.items() if self.config.crm in per and o not in skip
        ]

    def physical_object(self, logical_object: str) -> str:
        """The CRM's name for ``logical_object`` (``deal`` → ``Opportunity``)."""
        return self.config.mapping(logical_object).object

    def logical_object(self, physical_object: str) -> str | None:
        """The logical name of a CRM object, or ``None`` when tasuki does not track it."""
        return self._by_physical.get(physical_object)

    def key_field(self, logical_object: str) -> str | None:
        """The CRM field ``logical_object`` is upserted on, or ``None`` (written by id)."""
        m = self.config.mapping(logical_object)
        return None if m.external_id is None else m.fields[m.external_id]

    def physical_field(self, logical_object: str, field: str) -> str:
        """The CRM's name for a logical field."""
        return self.config.mapping(logical_object).fields[field]

    def physical_fields(self, logical_object: str) -> list[str]:
        """Every CRM field tasuki reads for ``logical_object``."""
        return sorted(set(self.config.mapping(logical_object).fields.values()))

    def to_logical(self, logical_object: str, raw: Mapping[str, Any]) -> dict[str, Any]:
        """A CRM record's fields renamed to logical names (unmapped fields dropped)."""
        fields = self.config.mapping(logical_object).fields
        return {name: raw.get(physical) for name, physical in fields.items() if physical in raw}

    def to_physical(self, logical_object: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """Logical values renamed to the CRM's field names."""
        fields = self.config.mapping(logical_object).fields
        return {fields[name]: value for name, value in values.items()}

    def tracked_fields(self, logical_object: str) -> list[str]:
        """Logical fields whose history makes handoffs: owner plus every trigger field."""
        tracked = {"owner"} if "owner" in self.config.mapping(logical_object).fields else set()
        for b in self.config.boundaries:
            if b.object == logical_object and b.trigger.field:
                tracked.add(b.trigger.field)
        return sorted(tracked)

    def written_fields(self, logical_object: str) -> set[str]:
        """Logical fields tasuki itself writes on ``logical_object`` (for echo suppression): the
        configured verdict and KPI fields, and by convention every ``tasuki_*`` field (a KPI's
        ``record_field``)."""
        wb = self.config.writeback
        names = {wb.verdict.outcome, wb.verdict.score, wb.verdict.violations}
        names |= {f for f in self.config.mapping(logical_object).fields if f.startswith("tasuki_")}
        names |= {n for n in (wb.kpi.own, wb.kpi.neighbour, wb.kpi.attainment) if n}
        return names & set(self.config.mapping(logical_object).fields)
