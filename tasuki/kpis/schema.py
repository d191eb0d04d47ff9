"""KPI definitions: YAML → frozen typed objects, every error placed at file:line:col.

A KPI file looks like this (see ``tasuki/defaults/kpis/default.yaml`` for the shipped set)::

    period: month              # month | quarter | fiscal_year (a KPI may override it)
    fiscal_year_start: 4       # first month of the fiscal year (and of Q1)
    kpis:
      - id: mk_mql_to_meeting
        label: MQL→meeting rate            # any language
        kind: rate                          # count sum rate duration sla handoff_pass_rate
        events: {handoffs: MK→IS}           # or {records: deal, at: close_date}
                                            # or {transitions: deal.stage, to: Closed Won}
        credit: sender                      # sender | receiver | by | a user field of the record
        where: [{field: lead_source, in: [Web, Event]}]
        success: {reached: IS→FS, within_days: 30}
        record_field: tasuki_converted      # optional: each record's part, on the record
    goals:
      MK:
        weights: {own: 0.6, neighbour: 0.4}
        own: {mk_mqls: 20}
        neighbour: {mk_mql_to_meeting: {target: 0.4, weight: 2}}
    targets:                                # per person or team, over the department's goal
      people: {"005000000000001": {mk_mqls: 30}}
      teams: {East: {mk_mqls: 25}}
    # or, so that a change applies from a period on and never rewrites a closed one:
    # targets:
    #   - {from: 2026-04, departments: {MK: {mk_mqls: 20}}, teams: {East: {mk_mqls: 25}}}
    #   - {from: 2026-12, departments: {MK: {mk_mqls: 24}}}

Parsing (pydantic, strict, frozen) is kept apart from the cross-checks against the config
(boundaries, objects, fields, related lookups); all problems of all files are raised at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tasuki.errors import ConfigError, Problem
from tasuki.kpis.periods import PeriodKind, first_month, kind_of
from tasuki.yamlsource import Located, load_all, problems_from_validation

DEPARTMENT_PAIRS = {f"{a}→{b}" for a in ("MK", "IS", "FS", "CS") for b in ("MK", "IS", "FS", "CS")}
"""Every well-formed boundary id; a KPI may name one the config does not detect (yet)."""


class KpiKind(str, Enum):
    """What a KPI computes from its events."""

    COUNT = "count"
    SUM = "sum"
    RATE = "rate"
    DURATION = "duration"
    SLA = "sla"
    HANDOFF_PASS_RATE = "handoff_pass_rate"


RATIO_KINDS = (KpiKind.RATE, KpiKind.SLA, KpiKind.HANDOFF_PASS_RATE)
"""Kinds whose value is numerator / denominator (``None`` when the denominator is 0)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _boundary(value: str) -> str:
    return value.replace("->", "→")


class Events(_Strict):
    """What a KPI counts: one boundary's handoffs, one object's records, or one field's changes.

    Each event has a time (the handoff, the record's ``at`` field, the change) that places it in
    a period, and a record whose snapshot the filters read.
    """

    handoffs: str | None = None
    object: str | None = None
    """Only for a boundary the config does not detect: the object its handoffs carry."""
    records: str | None = None
    at: str | None = None
    transitions: str | None = None
    to: str | None = None

    @field_validator("handoffs")
    @classmethod
    def _b(cls, value: str | None) -> str | None:
        return None if value is None else _boundary(value)

    @model_validator(mode="after")
    def _one(self) -> Events:
        if sum(x is not None for x in (self.handoffs, self.records, self.transitions)) != 1:
            raise ValueError("events: exactly one of handoffs, records, transitions")
        if self.records is not None and self.at is None:
            raise ValueError("events: records needs at (the field that dates each record)")
        if self.transitions is not None and "." not in self.transitions:
            raise ValueError("events: transitions is object.field, e.g. deal.stage")
        if self.object is not None and self.handoffs is None:
            raise ValueError("events: object goes with handoffs")
        return self


class Condition(_Strict):
    """One test of an event's record; a list of them must all hold.

    ``field`` (optionally on the ``related`` record) with one of ``equals``, ``in``, ``not_in``,
    ``is_set``; or ``reached``: the record (or a record pointing at it) crossed that boundary at or
    after the event, within ``within_days`` when given (the cohort window); or ``verdict``: the
    handoff's latest verdict had that outcome.
    """

    field: str | None = None
    related: str | None = None
    equals: str | None = None
    in_: tuple[str, ...] | None = Field(None, alias="in")
    not_in: tuple[str, ...] | None = None
    is_set: bool | None = None
    reached: str | None = None
    within_days: int | None = Field(None, gt=0)
    verdict: Literal["passed", "warned", "failed"] | None = None

    @field_validator("equals", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return str(value).lower() if isinstance(value, bool) else value

    @field_validator("reached")
    @classmethod
    def _b(cls, value: str | None) -> str | None:
        return None if value is None else _boundary(value)

    @model_validator(mode="after")
    def _shape(self) -> Condition:
        if sum(x is not None for x in (self.field, self.reached, self.verdict)) != 1:
            raise ValueError("a condition is one of: field, reached, verdict")
        tests = (self.equals, self.in_, self.not_in, self.is_set)
        if self.field is not None and sum(t is not None for t in tests) != 1:
            raise ValueError("field needs exactly one of equals, in, not_in, is_set")
        if self.field is None and (any(t is not None for t in tests) or self.related):
            raise ValueError("equals/in/not_in/is_set/related go with field")
        if self.within_days is not None and self.reached is None:
            raise ValueError("within_days goes with reached")
        return self


def _listed(value: Any) -> Any:
    return [value] if isinstance(value, dict) else value


class Kpi(_Strict):
    """One KPI: which events, which of them succeed, to whom each counts, in which period."""

    id: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,79}$")
    label: str
    kind: KpiKind
    events: Events
    credit: str
    where: tuple[Condition, ...] = ()
    success: tuple[Condition, ...] = ()
    value: str | None = None
    """For ``sum``: the numeric field added up."""
    until: str | None = None
    """For ``duration`` and ``sla``: the datetime field that ends the clock started by the event."""
    percentile: float = Field(50, gt=0, le=100)
    within_hours: float | None = Field(None, gt=0)
    business_hours: bool = True
    """Durations and SLAs in the company's business hours (else wall-clock hours)."""
    better: Literal["higher", "lower"] | None = None
    period: PeriodKind | None = None
    warned_counts_as: Literal["passed", "failed"] | None = None
    """For ``handoff_pass_rate``: what a warned handoff (only ``warn`` rules broken) counts as;
    default ``passed``, as the rules say ("warn only warns")."""
    record_field: str | None = None
    """A field of the events' record that receives what this record adds to the figure (a
    lead's business hours to first touch, 1/0 for an SLA met or missed)."""

    _where_list = field_validator("where", "success", mode="before")(_listed)

    @model_validator(mode="after")
    def _check(self) -> Kpi:
        k = self.kind
        if k == KpiKind.RATE and not self.success:
            raise ValueError("a rate needs success")
        if k not in (KpiKind.RATE,) and self.success:
            raise ValueError(f"success only goes with kind rate (this is {k.value})")
        if (k == KpiKind.SUM) != (self.value is not None):
            raise ValueError("value (the field summed) goes with kind sum, and sum needs it")
        if (k in (KpiKind.DURATION, KpiKind.SLA)) != (self.until is not None):
            raise ValueError("until goes with kinds duration and sla, and they need it")
        if (k == KpiKind.SLA) != (self.within_hours is not None):
            raise ValueError("within_hours goes with kind sla, and sla needs it")
        if self.warned_counts_as is not None and k != KpiKind.HANDOFF_PASS_RATE:
            raise ValueError("warned_counts_as goes with kind handoff_pass_rate")
        if k == KpiKind.HANDOFF_PASS_RATE and self.events.handoffs is None:
            raise ValueError("handoff_pass_rate counts handoffs: events: {handoffs: BOUNDARY}")
        return self

    @property
    def lower_is_better(self) -> bool:
        """Durations shrink when things go well; everything else grows."""
        return self.better == "lower" or (self.better is None and self.kind == KpiKind.DURATION)

    @property
    def passing(self) -> tuple[str, ...]:
        """The verdicts a ``handoff_pass_rate`` counts as passed."""
        if self.warned_counts_as == "failed":
            return ("passed",)
        return ("passed", "warned")

    @property
    def passing_label(self) -> str:
        """What the pass rate counts, as outputs say it."""
        if self.kind != KpiKind.HANDOFF_PASS_RATE:
            return ""
        return "warned counts as " + ("failed" if self.passing == ("passed",) else "passed")

    @property
    def is_ratio(self) -> bool:
        """Whether the value is numerator / denominator, shown as a percentage."""
        return self.kind in RATIO_KINDS


class GoalItem(_Strict):
    """A KPI in a goal: the target and its weight within the own or neighbour part."""

    target: float = Field(gt=0)
    weight: float = Field(1.0, ge=0)


def _items(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: {"target": v} if isinstance(v, int | float) else v for k, v in value.items()}
    return value


class Weights(_Strict):
    own: float = Field(0.5, ge=0)
    neighbour: float = Field(0.5, ge=0)


class Goal(_Strict):
    """A department's goal: own and neighbour KPIs with targets, and the weight of each part."""

    own: dict[str, GoalItem]
    neighbour: dict[str, GoalItem] = Field(default_factory=dict)
    weights: Weights = Weights()

    _items = field_validator("own", "neighbour", mode="before")(_items)


Department = Literal["MK", "IS", "FS", "CS"]


class Targets(_Strict):
    """Targets overriding the department's, per person (CRM user id) or per team."""

    people: dict[str, dict[str, float]] = Field(default_factory=dict)
    teams: dict[str, dict[str, float]] = Field(default_factory=dict)


class TargetChange(_Strict):
    """Targets that apply from a period on (``from: 2026-12``): a department's goal targets,
    a person's or a team's. A closed period keeps the targets it had; a later entry wins over
    an earlier one for the periods both cover."""

    from_: str = Field(alias="from")
    departments: dict[Department, dict[str, float]] = Field(default_factory=dict)
    people: dict[str, dict[str, float]] = Field(default_factory=dict)
    teams: dict[str, dict[str, float]] = Field(default_factory=dict)

    @field_validator("from_", mode="before")
    @classmethod
    def _period(cls, value: Any) -> Any:
        text = str(value).strip()
        kind_of(text.upper() if text[:2].upper() == "FY" else text)
        return text.upper() if text[:2].upper() == "FY" else text

    def tables(self) -> tuple[tuple[str, Mapping[str, Mapping[str, float]]], ...]:
        departments: dict[str, Mapping[str, float]] = {
            str(k): v for k, v in self.departments.items()
        }
        return (("departments", departments), ("people", self.people), ("teams", self.teams))


class KpiFile(_Strict):
    """A KPI file; each KPI is validated on its own, so one bad KPI hides no other problem."""

    period: PeriodKind = PeriodKind.MONTH
    fiscal_year_start: int = Field(4, ge=1, le=12)
    kpis: list[dict[str, Any]] = Field(default_factory=list)
    goals: dict[Department, Goal] = Field(default_factory=dict)
    targets: dict[str, Any] | list[Any] = Field(default_factory=dict)
    """A :class:`Targets` mapping, or a list of :class:`TargetChange` (validated apart, so that
    each mistake is placed where it is)."""


class KpiBook(_Strict):
    """Every KPI and goal, validated against the config's boundaries, objects and fields."""

    period: PeriodKind
    fiscal_year_start: int
    kpis: dict[str, Kpi]
    goals: dict[str, Goal]
    targets: Targets = Targets()
    target_changes: tuple[TargetChange, ...] = ()
    """Targets from a period on, in the order of their ``from``."""
    event_objects: dict[str, str] = Field(default_factory=dict)
    """KPI id → the logical object of its events' records."""

    def period_kind(self, kpi: Kpi) -> PeriodKind:
        """The KPI's own period kind, else the book's."""
        return kpi.period or self.period


class _Checker:
    """Cross-checks one parsed file against the config, collecting problems."""

    def __init__(
        self,
        doc: Located,
        catalog: Mapping[str, Sequence[str]],
        boundaries: Mapping[str, str | None],
        related: Mapping[str, Mapping[str, str]],
    ) -> None:
        self.doc = doc
        self.catalog = catalog
        self.boundaries = boundaries
        self.related = related
        self.problems: list[Problem] = []

    def add(self, at: tuple[str | int, ...], message: str) -> None:
        self.problems.append(self.doc.problem(at, message))

    def field(self, at: tuple[str | int, ...], obj: str | None, name: str) -> None:
        if obj is None or obj not in self.catalog:
            return
        if name not in self.catalog[obj]:
            self.add(at, f"{obj}.{name} is not mapped; known: {', '.join(self.catalog[obj])}")

    def boundary(self, at: tuple[str | int, ...], b: str) -> None:
        if b not in DEPARTMENT_PAIRS:
            self.add(at, f"unknown boundary {b!r}; configured: {', '.join(self.boundaries)}")

    def event_object(self, at: tuple[str | int, ...], kpi: Kpi) -> str | None:
        ev = kpi.events
        if ev.handoffs is not None:
            self.boundary(at + ("events", "handoffs"), ev.handoffs)
            configured = self.boundaries.get(ev.handoffs)
            if ev.handoffs in self.boundaries and configured is not None:
                if ev.object is not None and ev.object != configured:
                    self.add(at + ("events", "object"), f"{ev.handoffs} carries {configured}")
                return configured
            if ev.object is None and ev.handoffs in DEPARTMENT_PAIRS:
                self.add(
                    at + ("events", "handoffs"),
                    f"boundary {ev.handoffs} is not configured: name its object (events.object)",
                )
            obj = ev.object
        elif ev.records is not None:
            obj = ev.records
        else:
            obj = (ev.transitions or "").partition(".")[0]
        if obj is not None and obj not in self.catalog:
            self.add(at + ("events",), f"unknown object {obj!r}; known: {', '.join(self.catalog)}")
            return None
        return obj

    def kpi(self, at: tuple[str | int, ...], kpi: Kpi, raw: Mapping[str, Any]) -> str | None:
        obj = self.event_object(at, kpi)
        ev = kpi.events
        if ev.at is not None:
            self.field(at + ("events", "at"), obj, ev.at)
        if ev.transitions is not None:
            self.field(at + ("events", "transitions"), obj, ev.transitions.partition(".")[2])
        if kpi.credit not in ("sender", "receiver", "by"):
            self.field(at + ("credit",), obj, kpi.credit)
        elif (kpi.credit == "by") != (ev.transitions is not None):
            self.add(at + ("credit",), f"credit {kpi.credit} does not fit these events")
        elif kpi.credit in ("sender", "receiver") and ev.handoffs is None:
            self.add(at + ("credit",), f"credit {kpi.credit} needs handoff events")
        for name in ("value", "until", "record_field"):
            if getattr(kpi, name) is not None:
                self.field(at + (name,), obj, getattr(kpi, name))
        for part in ("where", "success"):
            single = isinstance(raw.get(part), dict)  # written as one mapping, not a list
            for i, c in enumerate(getattr(kpi, part)):
                self.condition(at + ((part,) if single else (part, i)), obj, kpi, c)
        return obj

    def condition(self, at: tuple[str | int, ...], obj: str | None, kpi: Kpi, c: Condition) -> None:
        if c.field is not None:
            target = obj
            if c.related is not None and obj is not None:
                if c.related not in self.related.get(obj, {}):
                    known = ", ".join(self.related.get(obj, {})) or "none"
                    self.add(
                        at + ("related",), f"{obj} has no related {c.related!r}; known: {known}"
                    )
                    return
                target = c.related
            self.field(at + ("field",), target, c.field)
        if c.reached is not None:
            self.boundary(at + ("reached",), c.reached)
            reached_obj = self.boundaries.get(c.reached)
            if (
                reached_obj is not None
                and obj is not None
                and reached_obj != obj
                and obj not in self.related.get(reached_obj, {})
            ):
                self.add(
                    at + ("reached",),
                    f"{c.reached} carries {reached_obj}, which has no lookup to {obj}",
                )
        if c.verdict is not None and kpi.events.handoffs is None:
            self.add(at + ("verdict",), "verdict conditions need handoff events")


def load_kpibook(
    paths: Sequence[Path],
    catalog: Mapping[str, Sequence[str]],
    boundaries: Sequence[str] | Mapping[str, str | None],
    *,
    related: Mapping[str, Mapping[str, str]] | None = None,
) -> KpiBook:
    """Read and validate ``paths``; all problems of all files raised at once as ConfigError.

    ``boundaries`` are the configured boundary ids, or a mapping of each to the logical object
    its handoffs carry (then fields are checked on that object); ``related`` the config's
    lookups (``{"deal": {"account": "account_id"}}``), needed to check ``related`` conditions.
    """
    bmap: dict[str, str | None] = (
        {_boundary(k): v for k, v in boundaries.items()}
        if isinstance(boundaries, Mapping)
        else {_boundary(b): None for b in boundaries}
    )
    problems: list[Problem] = []
    kpis: dict[str, Kpi] = {}
    objects: dict[str, str] = {}
    goals: dict[str, Goal] = {}
    period = PeriodKind.MONTH
    fy = 4
    people: dict[str, dict[str, float]] = {}
    teams: dict[str, dict[str, float]] = {}
    changes: list[TargetChange] = []
    parsed_files: list[tuple[Located, KpiFile]] = []
    known_ids: set[str] = set()
    for doc in load_all(paths, problems):
        try:
            parsed = KpiFile.model_validate(doc.data)
        except ValidationError as exc:
            problems.extend(problems_from_validation(doc, exc))
            continue
        parsed_files.append((doc, parsed))
        period, fy = parsed.period, parsed.fiscal_year_start
        check = _Checker(doc, catalog, bmap, related or {})
        for i, raw in enumerate(parsed.kpis):
            try:
                k = Kpi.model_validate(raw)
            except ValidationError as exc:
                problems.extend(problems_from_validation(doc, exc, ("kpis", i)))
                if isinstance(raw.get("id"), str):
                    known_ids.add(raw["id"])  # its goals are not "unknown KPI" as well
                continue
            if k.id in kpis:
                check.add(("kpis", i, "id"), f"duplicate KPI id {k.id!r}")
            obj = check.kpi(("kpis", i), k, raw)
            kpis[k.id] = k
            if obj is not None:
                objects[k.id] = obj
        problems.extend(check.problems)
    for doc, parsed in parsed_files:
        for dept, goal in parsed.goals.items():
            for part in ("own", "neighbour"):
                for kpi_id in getattr(goal, part):
                    if kpi_id not in kpis and kpi_id not in known_ids:
                        problems.append(
                            doc.problem(
                                ("goals", dept, part, kpi_id), f"unknown KPI {kpi_id!r}", key=True
                            )
                        )
            goals[dept] = goal
        base = Targets()
        entries: list[tuple[tuple[str | int, ...], Targets | TargetChange]] = []
        raw_targets = parsed.targets
        to_check: list[tuple[tuple[str | int, ...], Any, type[Targets] | type[TargetChange]]] = (
            [(("targets", i), r, TargetChange) for i, r in enumerate(raw_targets)]
            if isinstance(raw_targets, list)
            else [(("targets",), raw_targets, Targets)]
        )
        for at, raw, model in to_check:
            try:
                entries.append((at, model.model_validate(raw)))
            except ValidationError as exc:
                problems.extend(problems_from_validation(doc, exc, at))
        for at, entry in entries:
            if isinstance(entry, TargetChange):
                changes.append(entry)
            else:
                base = entry
            tables = (
                entry.tables()
                if isinstance(entry, TargetChange)
                else (
                    ("people", entry.people),
                    ("teams", entry.teams),
                )
            )
            for kind, table in tables:
                for who, per_kpi in table.items():
                    for kpi_id in per_kpi:
                        if kpi_id not in kpis and kpi_id not in known_ids:
                            problems.append(
                                doc.problem(
                                    (*at, kind, who, kpi_id), f"unknown KPI {kpi_id!r}", key=True
                                )
                            )
        people.update(base.people)
        teams.update(base.teams)
    if problems:
        raise ConfigError(problems)
    return KpiBook(
        period=period,
        fiscal_year_start=fy,
        kpis=kpis,
        goals=goals,
        targets=Targets(people=people, teams=teams),
        target_changes=tuple(sorted(changes, key=lambda c: first_month(c.from_, fy))),
        event_objects=objects,
    )
