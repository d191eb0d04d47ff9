"""KPI definitions: YAML → frozen typed objects, every error placed at file:line:col."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tasuki.errors import ConfigError, Problem
from tasuki.yamlsource import load, problems_from_validation


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Where(_Strict):
    """Which handoffs count as a success for a ``rate``: exactly one condition."""

    became: str | None = None
    """The record went on to cross this boundary too (a lead whose deal reached IS→FS)."""
    field: str | None = None
    equals: str | None = None
    related: str | None = None
    """Read ``field`` on this related record (e.g. the deal's account) instead."""
    verdict: Literal["passed", "warned", "failed"] | None = None

    @model_validator(mode="after")
    def _one(self) -> Where:
        kinds = [self.became is not None, self.field is not None, self.verdict is not None]
        if sum(kinds) != 1:
            raise ValueError("where: exactly one of became, field + equals, verdict")
        if self.field is not None and self.equals is None:
            raise ValueError("where: field needs equals")
        return self


class Kpi(_Strict):
    """One KPI over one boundary's handoffs in a period, credited to sender or receiver."""

    id: str
    label: str
    kind: Literal["count", "rate", "sum"]
    boundary: str
    credit: Literal["sender", "receiver"]
    where: Where | None = None
    field: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Kpi:
        if self.kind == "rate" and self.where is None:
            raise ValueError("a rate needs where")
        if self.kind == "sum" and self.field is None:
            raise ValueError("a sum needs field")
        return self


class Weights(_Strict):
    own: float = Field(0.5, ge=0, le=1)
    neighbour: float = Field(0.5, ge=0, le=1)


class Goal(_Strict):
    """A department's goal: own and neighbour KPIs with their targets, and the weights."""

    own: dict[str, float]
    neighbour: dict[str, float]
    weights: Weights = Weights()


class KpiFile(_Strict):
    period: Literal["month", "quarter", "fiscal_year"] = "month"
    fiscal_year_start: int = Field(4, ge=1, le=12)
    kpis: list[Kpi]
    goals: dict[Literal["MK", "IS", "FS", "CS"], Goal] = Field(default_factory=dict)


class KpiBook(_Strict):
    """Every KPI and goal, validated against the boundaries and fields of the config."""

    period: Literal["month", "quarter", "fiscal_year"]
    fiscal_year_start: int
    kpis: dict[str, Kpi]
    goals: dict[str, Goal]


def load_kpibook(
    paths: Sequence[Path], catalog: Mapping[str, Sequence[str]], boundaries: Sequence[str]
) -> KpiBook:
    """Read and validate ``paths``; all problems raised at once as :class:`ConfigError`."""
    problems: list[Problem] = []
    kpis: dict[str, Kpi] = {}
    goals: dict[str, Goal] = {}
    period: Literal["month", "quarter", "fiscal_year"] = "month"
    fy = 4
    fields = {f for names in catalog.values() for f in names}
    for path in paths:
        doc = load(path)
        try:
            parsed = KpiFile.model_validate(doc.data)
        except ValidationError as exc:
            problems.extend(problems_from_validation(doc, exc))
            continue
        period, fy = parsed.period, parsed.fiscal_year_start
        for i, k in enumerate(parsed.kpis):
            at = ("kpis", i)
            if k.id in kpis:
                problems.append(doc.problem(at + ("id",), f"duplicate KPI id {k.id!r}"))
            if k.boundary.replace("->", "→") not in boundaries:
                problems.append(
                    doc.problem(
                        at + ("boundary",),
                        f"unknown boundary {k.boundary!r}; configured: {', '.join(boundaries)}",
                    )
                )
            for name in filter(None, (k.field, k.where.field if k.where else None)):
                if name not in fields:
                    problems.append(doc.problem(at, f"{k.id}: unknown field {name!r}"))
            if k.where and k.where.became and k.where.became not in boundaries:
                problems.append(doc.problem(at + ("where", "became"), "unknown boundary"))
            kpis[k.id] = k
        for dept, goal in parsed.goals.items():
            for part in ("own", "neighbour"):
                for kpi_id in getattr(goal, part):
                    if kpi_id not in kpis:
                        problems.append(
                            doc.problem(
                                ("goals", dept, part, kpi_id), f"unknown KPI {kpi_id!r}", key=True
                            )
                        )
            goals[dept] = goal
    if problems:
        raise ConfigError(problems)
    return KpiBook(period=period, fiscal_year_start=fy, kpis=kpis, goals=goals)
