"""Alarm definitions: ``alarms.yaml`` → frozen typed objects, every error placed at file:line:col.

The file (``alarms.yaml`` beside ``tasuki.yaml``, else ``tasuki/defaults/alarms.yaml``)::

    defaults:                       # what a pair does not say itself
      own_improves_by: 10%          # relative change of the own KPI, at least
      neighbour_worsens_by: 10%     # relative fall of the neighbour KPI, at least
      min_events: 5                 # a rate on fewer events in either period is not judged
      subjects: [department, person]
    alarms:
      - id: mk_mqls_vs_meetings
        department: MK
        label: MQLs up while the MQL→meeting rate falls
        own: mk_mqls                # the department's own KPI …
        neighbour: mk_mql_to_meeting  # … and the neighbour KPI it feeds
        neighbour_worsens_by: 5%    # any default may be set per pair

Thresholds are written as a percentage (``10%``) or a fraction (``0.1``). The KPI ids are
checked against the KPI book; both KPIs of a pair must be counted over the same kind of period,
so the two periods compared are the same for both. Parsing (pydantic, strict, frozen) is kept
apart from the cross-checks; every problem of the file is raised at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tasuki import kpis
from tasuki.errors import ConfigError, Problem
from tasuki.kpis.periods import PeriodKind
from tasuki.kpis.schema import Kpi
from tasuki.settings import Settings, builtin_path
from tasuki.yamlsource import Located, load, problems_from_validation

FILE_NAME = "alarms.yaml"
"""The alarms file's name, beside ``tasuki.yaml`` or among the shipped defaults."""

SubjectKind = Literal["department", "team", "person"]
"""Whose figures an alarm compares (``kpi_values.subject_kind``)."""

Department = Literal["MK", "IS", "FS", "CS"]


def _fraction(value: Any) -> Any:
    """``"10%"`` → 0.1; numbers are fractions already; anything else is left to pydantic."""
    if isinstance(value, str) and value.strip().endswith("%"):
        number = value.strip()[:-1].strip()
        try:
            return float(number) / 100
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a percentage (write 10% or 0.1)") from exc
    if isinstance(value, bool):
        raise ValueError("a threshold is a percentage (10%) or a fraction (0.1)")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Defaults(_Strict):
    """Thresholds and subjects a pair takes unless it sets its own."""

    own_improves_by: float = Field(0.1, ge=0)
    neighbour_worsens_by: float = Field(0.1, ge=0, le=1)
    min_events: int = Field(5, ge=0)
    subjects: tuple[SubjectKind, ...] = ("department", "person")

    _pct = field_validator("own_improves_by", "neighbour_worsens_by", mode="before")(_fraction)


class _RawPair(_Strict):
    """One pair as written: thresholds left out take the file's defaults."""

    id: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,79}$")
    department: Department
    label: str = Field("", max_length=200)
    own: str
    neighbour: str
    own_improves_by: float | None = Field(None, ge=0)
    neighbour_worsens_by: float | None = Field(None, ge=0, le=1)
    min_events: int | None = Field(None, ge=0)
    subjects: tuple[SubjectKind, ...] | None = None

    _pct = field_validator("own_improves_by", "neighbour_worsens_by", mode="before")(_fraction)


class AlarmPair(_Strict):
    """One alarm: the department's ``own`` KPI against the ``neighbour`` KPI it feeds."""

    id: str
    department: Department
    label: str
    own: str
    neighbour: str
    own_improves_by: float
    """The own KPI's relative improvement over the previous period, at least (0.1 = 10 %)."""
    neighbour_worsens_by: float
    """The neighbour KPI's relative fall from the previous period, at least."""
    min_events: int
    """A ratio KPI with a smaller denominator in either period is not judged (too thin)."""
    subjects: tuple[SubjectKind, ...]


class _File(_Strict):
    defaults: dict[str, Any] = Field(default_factory=dict)
    alarms: list[dict[str, Any]] = Field(default_factory=list)


class AlarmBook(_Strict):
    """Every alarm pair of the file, validated against the KPI book."""

    pairs: tuple[AlarmPair, ...]
    file: str


def config_path(settings: Settings) -> Path:
    """``alarms.yaml`` beside the active ``tasuki.yaml``, else the shipped default."""
    beside = settings.config_path.parent / FILE_NAME
    return beside if beside.is_file() else builtin_path(FILE_NAME)


def _check_pair(
    doc: Located,
    at: tuple[str | int, ...],
    pair: AlarmPair,
    kpis: Mapping[str, Kpi] | None,
    period_kind: PeriodKind,
) -> list[Problem]:
    problems: list[Problem] = []
    if pair.own == pair.neighbour:
        problems.append(doc.problem(at + ("neighbour",), "own and neighbour are the same KPI"))
    if kpis is None:
        return problems
    known = ", ".join(sorted(kpis))
    for side in ("own", "neighbour"):
        kpi_id = getattr(pair, side)
        if kpi_id not in kpis:
            problems.append(doc.problem(at + (side,), f"unknown KPI {kpi_id!r}; known: {known}"))
    if pair.own in kpis and pair.neighbour in kpis:
        own_kind = kpis[pair.own].period or period_kind
        neighbour_kind = kpis[pair.neighbour].period or period_kind
        if own_kind != neighbour_kind:
            problems.append(
                doc.problem(
                    at + ("neighbour",),
                    f"{pair.own} is counted per {own_kind.value}, {pair.neighbour} per "
                    f"{neighbour_kind.value}: a pair compares the same periods",
                )
            )
    return problems


def load_alarm_book(
    path: Path,
    kpis: Mapping[str, Kpi] | None = None,
    period_kind: PeriodKind = PeriodKind.MONTH,
) -> AlarmBook:
    """Read and validate the alarms file at ``path``; every problem raised at once as
    :class:`ConfigError`. ``kpis`` (the KPI book's, with its ``period_kind``), when given, is
    what the pairs' KPI ids are checked against."""
    doc = load(path)
    try:
        parsed = _File.model_validate(doc.data or {})
    except ValidationError as exc:
        raise ConfigError(problems_from_validation(doc, exc)) from exc
    problems: list[Problem] = []
    try:
        d = Defaults.model_validate(parsed.defaults)
    except ValidationError as exc:
        # Reported, and the pairs still checked against the shipped defaults.
        problems.extend(problems_from_validation(doc, exc, ("defaults",)))
        d = Defaults()
    pairs: list[AlarmPair] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(parsed.alarms):
        at: tuple[str | int, ...] = ("alarms", i)
        try:
            r = _RawPair.model_validate(raw)
        except ValidationError as exc:
            problems.extend(problems_from_validation(doc, exc, at))
            continue
        if r.id in seen:
            first = doc.problem(("alarms", seen[r.id], "id"), "")
            problems.append(
                doc.problem(
                    at + ("id",), f"duplicate alarm id {r.id!r} (first at line {first.line})"
                )
            )
        seen.setdefault(r.id, i)
        pair = AlarmPair(
            id=r.id,
            department=r.department,
            label=r.label or r.id,
            own=r.own,
            neighbour=r.neighbour,
            own_improves_by=d.own_improves_by if r.own_improves_by is None else r.own_improves_by,
            neighbour_worsens_by=(
                d.neighbour_worsens_by if r.neighbour_worsens_by is None else r.neighbour_worsens_by
            ),
            min_events=d.min_events if r.min_events is None else r.min_events,
            subjects=d.subjects if r.subjects is None else r.subjects,
        )
        problems.extend(_check_pair(doc, at, pair, kpis, period_kind))
        pairs.append(pair)
    if problems:
        raise ConfigError(problems)
    return AlarmBook(pairs=tuple(pairs), file=str(path))


def alarm_book(settings: Settings) -> AlarmBook:
    """The validated alarms of the active config, checked against its KPI book (ConfigError,
    with every problem of the file, when anything is wrong)."""
    b = kpis.book(settings)
    return load_alarm_book(config_path(settings), b.kpis, b.period)
