"""Settings: ``tasuki.yaml`` (validated, every error placed) plus secrets from the environment.

One object, :class:`Settings`, is built once at start by :func:`load_settings` and handed to
whatever needs it; nothing else reads the environment (each CRM's variables are typed in
:mod:`tasuki.providers`), and :mod:`tasuki.preflight` checks it with every file it leads to.
Secrets are :class:`pydantic.SecretStr`: they print as ``**********``. The database and Redis
URLs stay plain strings for the libraries they are handed to, and the settings print them with
their passwords masked (:func:`masked_url`).
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, time
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_pkg
from croniter import CroniterError, croniter
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from tasuki.errors import ConfigError, Problem
from tasuki.messaging import SlackSettings, SmtpSettings, smtp_from_env
from tasuki.providers import HubSpotSettings, SalesforceSettings
from tasuki.signin import ConsoleSettings
from tasuki.yamlsource import KeptReads, Located, load, problems_from_validation

DEFAULT_CONFIG = "builtin:tasuki.yaml"
"""What ``TASUKI_CONFIG`` means when unset: the configuration shipped inside the package."""

DEFAULT_DATA_DIR = ".tasuki"
"""Folder of the default SQLite store, the embedded CRM and the report (``TASUKI_DATA_DIR``)."""

DEPARTMENTS = ("MK", "IS", "FS", "CS")
"""The four stages of The Model, in funnel order."""

Department = Literal["MK", "IS", "FS", "CS"]
System = Literal["local", "salesforce", "hubspot"]
Receiver = Literal["miitel", "zoom"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_BOUNDARY_RE = re.compile(r"^(MK|IS|FS|CS)(?:→|->)(MK|IS|FS|CS)$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ObjectMapping(_Strict):
    """How one logical object is called in one CRM: its object name and field names."""

    object: str
    fields: dict[str, str]
    external_id: str | None = None
    """The logical field tasuki upserts on, for objects it writes without knowing CRM ids (its
    KPI rows): a Salesforce External ID field, a HubSpot property with unique values."""


class CalendarConfig(_Strict):
    """The company calendar SLAs are counted in."""

    timezone: str = "Asia/Tokyo"
    workday_start: time = time(9, 0)
    workday_end: time = time(18, 0)
    workdays: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")
    holidays: str | None = "JP"
    extra_holidays: list[date] = Field(default_factory=list)

    @field_validator("holidays")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        if value is not None and value not in holidays_pkg.list_supported_countries():
            raise ValueError(f"no public-holiday calendar for country code {value!r}")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}") from exc
        return value

    @field_validator("workday_end")
    @classmethod
    def _end(cls, value: time, info: ValidationInfo) -> time:
        start = info.data.get("workday_start")
        if start is not None and value <= start:
            raise ValueError("workday_end must be after workday_start")
        return value


class DepartmentConfig(_Strict):
    """A user's department is read from one logical user field and mapped to MK/IS/FS/CS."""

    user_field: str = "department"
    values: dict[str, Department]


class OwnerMoves(_Strict):
    """The record's owner changes from a user of one department to a user of another."""

    from_: Department = Field(alias="from")
    to: Department


class FieldBecomes(_Strict):
    """A logical field takes a value (e.g. ``stage`` becomes ``Closed Won``)."""

    field: str
    becomes: str


class Trigger(_Strict):
    """What makes a change a handoff: exactly one of ``owner_moves`` or ``field`` + ``becomes``."""

    owner_moves: OwnerMoves | None = None
    field: str | None = None
    becomes: str | None = None

    @model_validator(mode="after")
    def _one(self) -> Trigger:
        has_field = self.field is not None or self.becomes is not None
        if (self.owner_moves is None) == (not has_field):
            raise ValueError("a trigger is either owner_moves or field + becomes")
        if has_field and (self.field is None or self.becomes is None):
            raise ValueError("field and becomes go together")
        return self


class BoundaryConfig(_Strict):
    """A directed pair of departments and what marks a record crossing it."""

    id: str
    object: str
    trigger: Trigger
    sender: str | None = None
    receiver: str | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _BOUNDARY_RE.match(value):
            raise ValueError(f"boundary id {value!r} must look like IS→FS")
        return value.replace("->", "→")

    @property
    def departments(self) -> tuple[Department, Department]:
        """(sender department, receiver department)."""
        m = _BOUNDARY_RE.match(self.id)
        assert m
        return m.group(1), m.group(2)  # type: ignore[return-value]


class VerdictFields(_Strict):
    """Logical fields on a handed-over record that receive its verdict."""

    outcome: str = "tasuki_verdict"
    score: str = "tasuki_score"
    violations: str = "tasuki_violations"


class KpiFields(_Strict):
    """Logical user fields that receive each person's KPI figures (``null`` to skip one)."""

    own: str | None = "tasuki_own_kpi"
    neighbour: str | None = "tasuki_neighbour_kpi"
    attainment: str | None = "tasuki_attainment"
    rows: str | None = None
    """A logical object (mapped with ``external_id``) receiving one row per subject, KPI and
    period, upserted on its key: Salesforce ``Tasuki_KPI__c``, a HubSpot custom object."""
    row_subjects: tuple[Literal["person", "team", "department", "org"], ...] = (
        "person",
        "team",
        "department",
        "org",
    )
    """Whose rows are written: each person's, and the team, department and org totals."""


KPI_ROW_FIELDS = (
    "kpi",
    "label",
    "period",
    "subject_kind",
    "subject",
    "person",
    "value",
    "target",
    "attainment",
    "numerator",
    "denominator",
)
"""Logical fields a KPI row object may map (``kpi``, ``period`` and ``value`` it must)."""


class WritebackConfig(_Strict):
    """What tasuki writes to the CRM."""

    verdict: VerdictFields = VerdictFields()
    kpi: KpiFields = KpiFields()


def cron_problem(expression: str) -> str | None:
    """Why ``expression`` is not a cron schedule tasuki runs, or ``None``: five fields
    (minute hour day-of-month month day-of-week) or an alias such as ``@daily``, that fire at
    least once."""
    fields = expression.split()
    if not expression.startswith("@") and len(fields) != 5:
        return (
            f"{expression!r} has {len(fields)} fields; a cron expression has 5: "
            "minute hour day-of-month month day-of-week"
        )
    try:
        croniter(expression).get_next(float)
    except CroniterError as exc:
        return f"{expression!r} is not a cron expression tasuki can run: {exc}"
    return None


class Schedules(_Strict):
    """Periodic jobs, in cron syntax, read in the company's time zone (``calendar.timezone``):
    ``tasuki scheduler`` runs them."""

    reconcile: str = "*/10 * * * *"
    kpis: str = "15 * * * *"
    """KPIs of the periods changes touched (the current one always), then write-back."""
    kpis_closed: str = "45 2 * * *"
    """The previous period recomputed in full, nightly."""
    notify: str = "*/5 * * * *"
    """The notifications sweep: what is due goes out (quiet hours wait for business hours)."""

    @field_validator("reconcile", "kpis", "kpis_closed", "notify")
    @classmethod
    def _cron(cls, value: str) -> str:
        problem = cron_problem(value)
        if problem:
            raise ValueError(problem)
        return value


class RecoveryConfig(_Strict):
    """When owed work is taken for lost (``worker.recover``, every minute)."""

    grace_seconds: float = Field(default=20, ge=0)
    """Owed work younger than this is left to the job queued for it."""
    abandoned_after_seconds: float = Field(default=30, ge=0)
    """A started job whose worker sent no heartbeat for this long was abandoned (the worker
    sends one every 10 s); accepted webhooks a server read and left unstored this long are
    taken over by the next taker (its server was killed)."""


ClockTime = time
"""A wall-clock time in the company's timezone (an alias: ``MeetingConfig`` has a ``time``
field)."""
MEETING_TIME = time(10, 0)
"""When the daily handoff meeting starts, by default (company timezone)."""
MEETING_DELIVER_AT = time(9, 45)
"""When the meeting's agenda is sent, by default (company timezone)."""


class MeetingConfig(_Strict):
    """The daily handoff meeting (申し送り会議): when, which boundary, where its agenda goes
    (see :mod:`tasuki.meeting`). Times are read in ``calendar.timezone``; meetings are held on
    the calendar's business days."""

    time: ClockTime = MEETING_TIME
    duration_minutes: int = Field(default=30, gt=0, le=24 * 60)
    boundary: str | None = None
    """The boundary walked through (e.g. ``FS→CS``); unset: ``IS→FS``."""
    deliver_at: ClockTime = MEETING_DELIVER_AT
    slack_channel: str | None = Field(default=None, pattern=r"^\S+$")
    """A channel name (``#handoffs``) or id (``C0123…``) the agenda is posted to."""
    email_to: list[str] = Field(default_factory=list)
    record_url: str | None = None
    """A link to a CRM record: ``{id}`` is the record id, ``{object}`` the CRM's object name,
    e.g. ``https://acme.lightning.force.com/lightning/r/{object}/{id}/view``."""

    @field_validator("time", "deliver_at", mode="before")
    @classmethod
    def _quoted(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            # YAML 1.1 reads an unquoted 10:00 as the number 600.
            raise ValueError('write the time in quotes, e.g. "10:00"')
        return value

    @field_validator("email_to")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if not re.fullmatch(r"[^@\s]+@[^@\s]+", address):
                raise ValueError(f"{address!r} is not an e-mail address")
        return value

    @field_validator("record_url")
    @classmethod
    def _record_url(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"https?://\S*\{id\}\S*", value):
            raise ValueError("record_url is an http(s) URL with {id} in it")
        return value

    @field_validator("boundary")
    @classmethod
    def _boundary(cls, value: str | None) -> str | None:
        if value is not None and not _BOUNDARY_RE.match(value):
            raise ValueError(f"boundary id {value!r} must look like IS→FS")
        return None if value is None else value.replace("->", "→")


class Config(_Strict):
    """The whole of ``tasuki.yaml``."""

    crm: System = "local"
    calendar: CalendarConfig = CalendarConfig()
    departments: DepartmentConfig
    objects: dict[str, dict[System, ObjectMapping]]
    related: dict[str, dict[str, str]] = Field(default_factory=dict)
    boundaries: Annotated[list[BoundaryConfig], Field(min_length=1)]
    rules: list[str] = Field(default_factory=lambda: ["builtin:default"])
    kpis: list[str] = Field(default_factory=lambda: ["builtin:default"])
    notifications: list[str] = Field(default_factory=lambda: ["builtin:notifications"])
    """Notification rules files (:mod:`tasuki.notify.schema`)."""
    writeback: WritebackConfig = WritebackConfig()
    schedules: Schedules = Schedules()
    recovery: RecoveryConfig = RecoveryConfig()
    meeting: MeetingConfig = MeetingConfig()
    queue_name: str = "tasuki"
    receivers: list[Receiver] = Field(default_factory=list)
    """Webhook receivers in use besides the CRM's own and ``/webhooks/local``: their secrets
    must be set (``tasuki check-config``, ``tasuki serve``)."""

    def mapping(self, logical_object: str) -> ObjectMapping:
        """The active CRM's mapping of ``logical_object``."""
        return self.objects[logical_object][self.crm]

    def fields(self, logical_object: str) -> list[str]:
        """Logical field names known for ``logical_object`` in the active CRM."""
        return sorted(self.mapping(logical_object).fields)

    @property
    def write_only_objects(self) -> frozenset[str]:
        """Logical objects tasuki only writes (its KPI rows): never synced, never judged."""
        rows = self.writeback.kpi.rows
        return frozenset({rows} if rows else ())


def _cross_check(cfg: Config, doc: Located) -> list[Problem]:
    problems: list[Problem] = []
    for name, per_system in cfg.objects.items():
        if cfg.crm not in per_system:
            problems.append(doc.problem(("objects", name), f"objects.{name}: no {cfg.crm} mapping"))
    for required in ("user",):
        if required not in cfg.objects:
            problems.append(doc.problem(("objects",), f"objects.{required} must be mapped"))
    if "user" in cfg.objects and cfg.crm in cfg.objects["user"]:
        if cfg.departments.user_field not in cfg.mapping("user").fields:
            problems.append(
                doc.problem(
                    ("departments", "user_field"),
                    f"user field {cfg.departments.user_field!r} is not mapped on objects.user",
                )
            )
    problems += _check_kpi_rows(cfg, doc)
    meeting = cfg.meeting.boundary
    if meeting is not None and meeting not in {b.id for b in cfg.boundaries}:
        ids = ", ".join(b.id for b in cfg.boundaries)
        problems.append(
            doc.problem(("meeting", "boundary"), f"no boundary {meeting}; known: {ids}")
        )
    for name, per_system in cfg.objects.items():
        m = per_system.get(cfg.crm)
        if m is not None and m.external_id is not None and m.external_id not in m.fields:
            problems.append(
                doc.problem(
                    ("objects", name, cfg.crm, "external_id"),
                    f"external_id {m.external_id!r} is not one of {name}'s fields",
                )
            )
    seen: set[str] = set()
    for i, b in enumerate(cfg.boundaries):
        at = ("boundaries", i)
        if b.id in seen:
            problems.append(doc.problem(at + ("id",), f"duplicate boundary {b.id}"))
        seen.add(b.id)
        if b.object not in cfg.objects or cfg.crm not in cfg.objects[b.object]:
            problems.append(doc.problem(at + ("object",), f"unknown object {b.object!r}"))
            continue
        known = cfg.fields(b.object)
        for key in ("sender", "receiver"):
            value = getattr(b, key)
            if value is not None and value not in known:
                problems.append(doc.problem(at + (key,), f"{b.object}.{value} is not mapped"))
        if b.trigger.field is not None and b.trigger.field not in known:
            problems.append(
                doc.problem(
                    at + ("trigger", "field"),
                    f"{b.object}.{b.trigger.field} is not mapped; known: {', '.join(known)}",
                )
            )
    for obj, links in cfg.related.items():
        for rel, fld in links.items():
            if obj in cfg.objects and cfg.crm in cfg.objects[obj] and fld not in cfg.fields(obj):
                problems.append(doc.problem(("related", obj, rel), f"{obj}.{fld} is not mapped"))
            if rel not in cfg.objects:
                problems.append(
                    doc.problem(("related", obj, rel), f"unknown object {rel!r}", key=True)
                )
    return problems


def _check_kpi_rows(cfg: Config, doc: Located) -> list[Problem]:
    rows = cfg.writeback.kpi.rows
    if rows is None:
        return []
    at = ("writeback", "kpi", "rows")
    if rows not in cfg.objects or cfg.crm not in cfg.objects[rows]:
        return [doc.problem(at, f"unknown object {rows!r}: map it under objects for {cfg.crm}")]
    m = cfg.mapping(rows)
    problems = []
    if m.external_id is None:
        problems.append(
            doc.problem(
                ("objects", rows, cfg.crm),
                f"objects.{rows}.{cfg.crm} needs external_id (the key upserted on)",
            )
        )
        return problems
    if m.external_id not in m.fields:
        return problems  # reported with every object's external_id
    missing = [f for f in ("kpi", "period", "value") if f not in m.fields]
    if missing:
        problems.append(doc.problem(at, f"objects.{rows} must map {', '.join(missing)}"))
    extra = sorted(set(m.fields) - set(KPI_ROW_FIELDS) - {m.external_id})
    if extra:
        problems.append(
            doc.problem(
                ("objects", rows, cfg.crm, "fields", extra[0]),
                f"{rows}.{extra[0]} is not a KPI row field; known: {', '.join(KPI_ROW_FIELDS)}",
                key=True,
            )
        )
    return problems


CORE_SECTIONS = frozenset({"crm", "departments", "objects", "related", "boundaries"})
"""Sections of ``tasuki.yaml`` the rules and KPI files are checked against."""


@dataclass(frozen=True)
class CheckedConfig:
    """A ``tasuki.yaml`` validated completely (:func:`check_config`)."""

    problems: list[Problem]
    """Every problem, each at its place."""
    usable: Config | None
    """The config to check the other files against: the file's own when it has no problem;
    with each wrong non-core section at its default and each unknown key left out, when only
    those are wrong; ``None`` when a core section (:data:`CORE_SECTIONS`) is."""
    defaulted: frozenset[str]
    """Top-level sections of :attr:`usable` that are defaults standing in for wrong ones."""


def _without(data: Any, path: tuple[str | int, ...]) -> None:
    """Remove the key at ``path`` from nested ``data``, if it is there."""
    *parents, last = path
    for p in parents:
        if not isinstance(data, dict | list):
            return
        try:
            data = data[p]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            return
    if isinstance(data, dict):
        data.pop(last, None)


def check_config(doc: Located) -> CheckedConfig:
    """Validate a parsed ``tasuki.yaml`` completely: every problem, and a config the other files
    can still be checked against when the mistakes allow it (see :class:`CheckedConfig`)."""
    try:
        cfg = Config.model_validate(doc.data)
    except ValidationError as exc:
        problems = problems_from_validation(doc, exc)
        if not isinstance(doc.data, dict):
            return CheckedConfig(problems, None, frozenset())
        data = copy.deepcopy(doc.data)
        defaulted: set[str] = set()
        for err in exc.errors():
            loc = tuple(x for x in err["loc"] if isinstance(x, str | int))
            if err["type"] == "extra_forbidden" and loc:
                _without(data, loc)
            elif loc and loc[0] not in CORE_SECTIONS:
                data.pop(loc[0], None)
                defaulted.add(str(loc[0]))
            else:
                return CheckedConfig(problems, None, frozenset())
        try:
            cfg = Config.model_validate(data)
        except ValidationError:
            return CheckedConfig(problems, None, frozenset())
        return CheckedConfig(problems + _cross_check(cfg, doc), cfg, frozenset(defaulted))
    return CheckedConfig(_cross_check(cfg, doc), cfg, frozenset())


def parse_config(doc: Located) -> Config:
    """Validate a parsed ``tasuki.yaml``; every problem at once, each with its place."""
    checked = check_config(doc)
    if checked.problems:
        raise ConfigError(checked.problems)
    assert checked.usable is not None
    return checked.usable


def builtin_path(name: str) -> Path:
    """Path of a file shipped in ``tasuki/defaults``."""
    return Path(str(resources.files("tasuki") / "defaults" / name))


def resolve_ref(ref: str, base: Path) -> Path:
    """``builtin:NAME``: the shipped file; any other path is relative to the config folder."""
    if ref.startswith("builtin:"):
        name = ref.removeprefix("builtin:")
        return builtin_path(name if name.endswith(".yaml") else f"{name}.yaml")
    p = Path(ref)
    return p if p.is_absolute() else base / p


_PASSWORD_PARAM_RE = re.compile(r"(?i)([?&](?:password|passwd|pwd)=)[^&#]*")


def masked_url(url: str) -> str:
    """``url`` with its password, in the user part or a ``password=`` parameter, as ``***``."""
    netloc = urlsplit(url).netloc
    userinfo, at, host = netloc.rpartition("@")
    if at and ":" in userinfo:
        user = userinfo.split(":", 1)[0]
        url = url.replace(netloc, f"{user}:***@{host}", 1)
    return _PASSWORD_PARAM_RE.sub(r"\1***", url)


_URL_FIELDS = frozenset({"database_url", "redis_url", "public_url"})


@dataclass(frozen=True)
class Settings:
    """Everything a tasuki process needs to know, resolved once at start."""

    config: Config
    config_path: Path
    data_dir: Path
    database_url: str
    redis_url: str | None
    public_url: str | None
    webhook_secret: SecretStr | None
    ops_token: SecretStr | None
    """``TASUKI_OPS_TOKEN``: the console's secret (signs its sessions and CSRF tokens)."""
    secrets: Mapping[str, SecretStr]
    salesforce: SalesforceSettings = SalesforceSettings()
    """``TASUKI_SALESFORCE_*``: sign-in, org id, integration user."""
    hubspot: HubSpotSettings = HubSpotSettings()
    """``TASUKI_HUBSPOT_*``: access token or OAuth app, app id, host, tier."""
    log_level: str | None = None
    """``TASUKI_LOG_LEVEL`` (DEBUG, INFO, WARNING, ERROR); unset: INFO, WARNING for the demo."""
    log_format: Literal["text", "json"] = "text"
    """``TASUKI_LOG_FORMAT``: one line of text, or one JSON object, per log record."""
    metrics_token: SecretStr | None = None
    """``TASUKI_METRICS_TOKEN``: the bearer token ``GET /metrics`` asks for (unset: 404)."""
    slack: SlackSettings = SlackSettings()
    """``TASUKI_SLACK_*``: the bot token notifications are posted with."""
    smtp: SmtpSettings | None = None
    """``TASUKI_SMTP_*``: the mail server, ``None`` when unset (no e-mail)."""
    console: ConsoleSettings = ConsoleSettings()
    """``TASUKI_OIDC_*`` and ``TASUKI_SECURE_COOKIES`` (the console's sign-in)."""
    kept: KeptReads = dataclasses.field(
        default_factory=KeptReads, init=False, compare=False, repr=False
    )
    """What was read from the files these settings name (the KPI book), by their stamps."""

    @property
    def rule_paths(self) -> list[Path]:
        """The rules files named in the config, resolved."""
        return [resolve_ref(r, self.config_path.parent) for r in self.config.rules]

    @property
    def kpi_paths(self) -> list[Path]:
        """The KPI files named in the config, resolved."""
        return [resolve_ref(r, self.config_path.parent) for r in self.config.kpis]

    @property
    def notification_paths(self) -> list[Path]:
        """The notifications files named in the config, resolved."""
        return [resolve_ref(r, self.config_path.parent) for r in self.config.notifications]

    def secret(self, name: str) -> SecretStr | None:
        """A secret by its environment name, e.g. ``TASUKI_ZOOM_SECRET_TOKEN``."""
        return self.secrets.get(name)

    def __repr__(self) -> str:
        """The dataclass's repr (``str()`` too) with passwords in URLs masked."""
        shown = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in _URL_FIELDS and isinstance(value, str):
                value = masked_url(value)
            shown.append(f"{f.name}={value!r}")
        return f"{type(self).__qualname__}({', '.join(shown)})"


def _secret(env: Mapping[str, str], name: str) -> SecretStr | None:
    value = env.get(name)
    return SecretStr(value) if value else None


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
"""What ``TASUKI_LOG_LEVEL`` may say (any case)."""


def _log_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """``log_level`` and ``log_format`` from ``TASUKI_LOG_LEVEL`` / ``TASUKI_LOG_FORMAT``."""
    level = (env.get("TASUKI_LOG_LEVEL") or "").strip().upper() or None
    fmt = (env.get("TASUKI_LOG_FORMAT") or "text").strip().lower()
    problems = []
    if level is not None and level not in LOG_LEVELS:
        problems.append(f"TASUKI_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, not {level!r}")
    if fmt not in ("text", "json"):
        problems.append(f"TASUKI_LOG_FORMAT must be text or json, not {fmt!r}")
    if problems:
        raise ConfigError([Problem("environment", 1, 1, p) for p in problems])
    return {"log_level": level, "log_format": fmt}


def config_location(env: Mapping[str, str]) -> Path:
    """The ``tasuki.yaml`` ``TASUKI_CONFIG`` names (``builtin:…`` or a path), else the default."""
    return resolve_ref(env.get("TASUKI_CONFIG") or DEFAULT_CONFIG, Path.cwd())


_POSTGRES_SCHEME_RE = re.compile(r"^postgres(?:ql)?://")


def database_driver_url(url: str) -> str:
    """``url`` with the driver tasuki uses: ``postgres://`` and ``postgresql://`` (as hosting
    services hand them out) become ``postgresql+psycopg://``; anything else is kept."""
    return _POSTGRES_SCHEME_RE.sub("postgresql+psycopg://", url, count=1)


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read ``TASUKI_*`` from ``env`` (default: the process environment) and the config file.

    Raises :class:`ConfigError` naming file, line and column when the config is wrong.
    """
    env = os.environ if env is None else env
    config_path = config_location(env)
    # A config handed in (tests, check-config's own validation) is not read again.
    config = overrides.get("config") or parse_config(load(config_path))
    data_dir = Path(env.get("TASUKI_DATA_DIR") or DEFAULT_DATA_DIR)
    database_url = database_driver_url(
        env.get("TASUKI_DATABASE_URL") or f"sqlite:///{data_dir / 'tasuki.db'}"
    )
    secrets = {
        k: SecretStr(v)
        for k, v in env.items()
        if k.startswith("TASUKI_")
        and v
        and any(s in k for s in ("SECRET", "TOKEN", "PASSWORD", "KEY", "SESSION"))
    }
    values: dict[str, Any] = dict(
        config=config,
        config_path=config_path,
        data_dir=data_dir,
        database_url=database_url,
        redis_url=env.get("TASUKI_REDIS_URL") or None,
        public_url=(env.get("TASUKI_PUBLIC_URL") or "").rstrip("/") or None,
        webhook_secret=_secret(env, "TASUKI_WEBHOOK_SECRET"),
        ops_token=_secret(env, "TASUKI_OPS_TOKEN"),
        secrets=secrets,
        salesforce=SalesforceSettings.from_env(env),
        hubspot=HubSpotSettings.from_env(env),
        **_log_settings(env),
        metrics_token=_secret(env, "TASUKI_METRICS_TOKEN"),
        slack=SlackSettings.from_env(env),
        smtp=smtp_from_env(env),
        console=ConsoleSettings.from_env(env),
    )
    values.update(overrides)
    return Settings(**values)
