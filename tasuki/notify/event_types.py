"""Every event a notification rule can name: the people it offers as roles, its own options
(validated by pydantic, so an unknown option is a problem at its place), its defaults.

The finders that turn each event into occurrences are in :mod:`tasuki.notify.events` and
:mod:`tasuki.notify.ops_events`, keyed by the same names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tasuki.durations import parse_duration

BUSINESS_HOURS = "business_hours"
ANY_TIME = "any_time"
_BOUNDARY_RE = re.compile(r"^(MK|IS|FS|CS)\s*(?:→|->)\s*(MK|IS|FS|CS)$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _boundaries(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    out = []
    for b in value:
        m = _BOUNDARY_RE.match(b)
        if not m:
            raise ValueError(f"boundary {b!r} must look like IS→FS")
        out.append(f"{m.group(1)}→{m.group(2)}")
    return out


class NoOptions(_Strict):
    """An event with no options of its own."""


class HandoffOptions(_Strict):
    """Options of the handoff events."""

    boundaries: list[str] | None = None
    """Only handoffs across these boundaries (default: every boundary)."""

    _check = field_validator("boundaries")(_boundaries)


class SlaOptions(HandoffOptions):
    """Options of the SLA events."""

    rules: list[str] | None = None
    """Only these SLA rules (rule ids; default: every ``sla`` rule of the rulebook)."""


class SlaWarningOptions(SlaOptions):
    """Options of ``sla_warning``."""

    at: float = Field(default=0.75, gt=0, lt=1)
    """The share of the SLA's window used (business time for business SLAs) that warns."""


class RecordingOptions(_Strict):
    """Options of ``meeting_recording``."""

    answer_fields: list[str] = ["fs_acceptance", "reject_reason", "stage"]
    """Logical deal fields that tell what FS made of the meeting, shown when set."""


class PartialOptions(_Strict):
    """Options of ``partial_optimisation``: which of the stored partial-optimisation alarms
    (:mod:`tasuki.alarms`; their pairs and thresholds are in ``alarms.yaml``) go out."""

    subjects: list[Literal["department", "team", "person"]] = ["department"]
    """Alarms of whole departments by default; ``person`` and ``team`` add their own."""
    departments: list[Literal["MK", "IS", "FS", "CS"]] | None = None
    """Only the alarms of these departments' pairs (default: every department)."""


class RejectionOptions(_Strict):
    """Options of ``writeback_rejected``."""

    shown: int = Field(default=10, ge=1, le=50)
    """Rejected records listed in one message (the rest are counted)."""


class SyncStaleOptions(_Strict):
    """Options of ``sync_stale``."""

    after: str = "30 minutes"
    """How long without a successful reconcile of an object before ops hear of it."""

    @field_validator("after")
    @classmethod
    def _duration(cls, value: str) -> str:
        if parse_duration(value).business:
            raise ValueError("a sync is late on the clock: write minutes or hours, not business")
        return value


@dataclass(frozen=True)
class EventSpec:
    """What an event offers rules: the people it names, its options, its defaults."""

    name: str
    summary: str
    roles: tuple[str, ...]
    options: type[_Strict]
    when: str
    max_age: str


HANDOFF_ROLES = ("sender", "receiver", "receiver_manager", "sender_manager")
EVENTS: dict[str, EventSpec] = {
    e.name: e
    for e in (
        EventSpec(
            "handoff_failed",
            "a handoff's verdict is failed: what to fix and a link to the record",
            HANDOFF_ROLES,
            HandoffOptions,
            BUSINESS_HOURS,
            "3 business days",
        ),
        EventSpec(
            "sla_warning",
            "an SLA has used `at` of its window and is not met yet",
            HANDOFF_ROLES,
            SlaWarningOptions,
            BUSINESS_HOURS,
            "1 business day",
        ),
        EventSpec(
            "sla_breach",
            "an SLA's deadline passed",
            HANDOFF_ROLES,
            SlaOptions,
            BUSINESS_HOURS,
            "2 business days",
        ),
        EventSpec(
            "meeting_recording",
            "the Zoom recording of an FS meeting was matched to its deal",
            ("is_person", "mk_person", "fs_person"),
            RecordingOptions,
            BUSINESS_HOURS,
            "5 business days",
        ),
        EventSpec(
            "partial_optimisation",
            "a department's own KPI rose while the neighbour KPI it feeds fell",
            (),
            PartialOptions,
            "0 10 * * mon",
            "35 days",
        ),
        EventSpec(
            "writeback_rejected",
            "the CRM refused records of a write-back pass",
            (),
            RejectionOptions,
            ANY_TIME,
            "1 day",
        ),
        EventSpec(
            "sync_stale",
            "an object has not been reconciled for `after`",
            (),
            SyncStaleOptions,
            ANY_TIME,
            "7 days",
        ),
        EventSpec("failed_jobs", "jobs in RQ's failed registry", (), NoOptions, ANY_TIME, "1 day"),
        EventSpec(
            "delivery_failed",
            "notifications Slack or the mail server refused, or whose outcome is unknown",
            (),
            NoOptions,
            ANY_TIME,
            "1 day",
        ),
    )
}
"""Every event a rule can name, by its YAML name."""


EVENT_ROLE_NAMES = frozenset(r for e in EVENTS.values() for r in e.roles)
"""Every role of every event: a destination may not take one of these names."""
