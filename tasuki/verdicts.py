"""What rule evaluation takes in and gives out: handoff context, artifacts, verdicts.

These types are the contract between the pipeline and the rule engine. Evaluation is pure: it
gets a :class:`HandoffContext` (the record, its related records, its artifacts, the time of the
handoff and "now") and returns a :class:`Verdict`; it does no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any


class Outcome(str, Enum):
    """The result of checking one handoff."""

    PASSED = "passed"
    WARNED = "warned"
    FAILED = "failed"


class Severity(str, Enum):
    """``error`` fails the handoff; ``warn`` only warns."""

    ERROR = "error"
    WARN = "warn"


@dataclass(frozen=True)
class Violation:
    """One rule a handoff broke, with the message the rule's author wrote."""

    rule_id: str
    severity: Severity
    message: str


@dataclass(frozen=True)
class Verdict:
    """Outcome, score 0–100 and the violations, in rule order."""

    outcome: Outcome
    score: int
    violations: tuple[Violation, ...] = ()


@dataclass(frozen=True)
class Artifact:
    """A call or meeting recording linked to a record."""

    kind: str
    """``call`` (MiiTel) or ``meeting`` (Zoom)."""
    url: str
    at: datetime
    source: str = ""
    """The provider: ``miitel``, ``zoom``, ``crm`` ..."""


@dataclass(frozen=True)
class HandoffContext:
    """Everything a rule may look at, already in logical names."""

    boundary: str
    object: str
    record: Mapping[str, Any]
    handed_at: datetime
    now: datetime
    related: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Related records by logical object name, e.g. ``{"account": {...}}``."""
    artifacts: Sequence[Artifact] = ()
    sender_id: str | None = None
    receiver_id: str | None = None
