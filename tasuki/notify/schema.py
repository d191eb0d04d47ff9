"""Notification rules: YAML → frozen :class:`NotificationBook`, every problem placed.

A notifications file (the shipped one is ``tasuki/defaults/notifications.yaml``; ``tasuki.yaml``
names the files under ``notifications:``)::

    destinations:                   # named places a rule can send to, besides people
      sales_ops: {slack: "#sales-ops", email: [sales-ops@example.com]}
      ops: {slack: C0123ABCD}
    people:
      manager_field: manager        # the logical user field holding a person's manager
      slack_lookup_ttl: 24 hours    # how long a users.lookupByEmail answer is kept
    notifications:
      - id: handoff-failed
        event: handoff_failed       # what: one of EVENTS
        to: [sender]                # whom: the event's roles, or destinations
        via: [slack, email]         # how, in order of preference
        when: business_hours        # business_hours | any_time | a cron expression
        max_age: 3 business days    # older events are not announced any more
        fallback: managers          # a destination when a role names nobody
        boundaries: [IS→FS]         # anything else: the event's own options

Parsing is kept apart from finding and sending (:mod:`tasuki.notify.events`,
:mod:`tasuki.notify.sweep`); all problems of all files are raised together in one
:class:`~tasuki.errors.ConfigError`, each as ``FILE:LINE:COL``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from tasuki.durations import Duration, parse_duration
from tasuki.errors import ConfigError, Problem
from tasuki.notify.event_types import (
    ANY_TIME,
    BUSINESS_HOURS,
    EVENT_ROLE_NAMES,
    EVENTS,
    EventSpec,
    HandoffOptions,
    RecordingOptions,
)
from tasuki.settings import Config, cron_problem
from tasuki.yamlsource import Located, load_all, problems_from_validation

Path_ = tuple[str | int, ...]

MEDIA = ("slack", "email")
"""How a message can travel (``via:``)."""
FILE_KEYS = ("version", "destinations", "people", "notifications")
RULE_KEYS = ("id", "event", "to", "via", "when", "max_age", "fallback", "description")
"""Keys every rule has; any other key is an option of its event."""
RULE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,79}$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+$")


@dataclass(frozen=True)
class Destination:
    """A named place messages go besides people: a Slack channel and/or e-mail addresses."""

    name: str
    slack: str | None
    email: tuple[str, ...]


@dataclass(frozen=True)
class When:
    """When a rule's messages may go out."""

    kind: Literal["business_hours", "any_time", "cron"]
    cron: str | None = None

    def __str__(self) -> str:
        return self.cron or self.kind


@dataclass(frozen=True)
class NotificationRule:
    """One rule: an event, to whom, through what, when."""

    id: str
    event: str
    to: tuple[str, ...]
    via: tuple[str, ...]
    when: When
    max_age: Duration
    fallback: str | None
    options: Any
    """The event's options (an instance of its :attr:`EventSpec.options`)."""
    description: str
    file: str
    line: int
    column: int


@dataclass(frozen=True)
class People:
    """How people are found: their manager, their Slack account."""

    manager_field: str = "manager"
    """The logical user field (``objects.user``) holding the manager's CRM user id; unmapped:
    managers are unknown and rules fall back to their ``fallback`` destination."""
    slack_lookup_ttl: Duration = parse_duration("24 hours")


@dataclass(frozen=True)
class NotificationBook:
    """Every notification rule and destination, validated."""

    rules: tuple[NotificationRule, ...]
    destinations: Mapping[str, Destination]
    people: People
    files: tuple[str, ...]


class _Parser:
    """Collects the problems of one file while turning it into rules and destinations."""

    def __init__(self, doc: Located, config: Config | None) -> None:
        self.doc = doc
        self.config = config
        self.problems: list[Problem] = []

    def error(self, at: Path_, message: str, *, key: bool = False) -> None:
        self.problems.append(self.doc.problem(at, message, key=key))

    def destinations(self, data: Any) -> dict[str, Destination]:
        at: Path_ = ("destinations",)
        if not isinstance(data, dict):
            self.error(at, "destinations is a mapping of names to {slack: CHANNEL, email: [...]}")
            return {}
        out = {}
        for name, spec in data.items():
            here = at + (name,)
            if not RULE_ID_RE.match(name):
                self.error(
                    here, f"destination name {name!r}: use letters, digits and . _ -", key=True
                )
                continue
            if name in EVENT_ROLE_NAMES:
                self.error(
                    here,
                    f"{name!r} is a role of an event; name the destination otherwise",
                    key=True,
                )
                continue
            if not isinstance(spec, dict):
                self.error(here, "a destination is {slack: CHANNEL} and/or {email: [ADDRESS, ...]}")
                continue
            ok = True
            for k in spec:
                if k not in MEDIA:
                    self.error(here + (k,), f"unknown channel {k!r}; known: slack, email", key=True)
                    ok = False
            slack = spec.get("slack")
            if slack is not None and (
                not isinstance(slack, str) or not re.fullmatch(r"\S+", slack)
            ):
                self.error(here + ("slack",), "slack is a channel id (C0123…) or name (#sales-ops)")
                ok = False
            emails = spec.get("email", [])
            if isinstance(emails, str):
                emails = [emails]
            if not isinstance(emails, list) or not all(
                isinstance(e, str) and _EMAIL_RE.match(e) for e in emails
            ):
                self.error(here + ("email",), "email is an address or a list of addresses")
                ok = False
            if ok and slack is None and not emails:
                self.error(here, "a destination needs slack or email")
                ok = False
            if ok:
                out[name] = Destination(name, slack, tuple(emails))
        return out

    def people(self, data: Any) -> People | None:
        at: Path_ = ("people",)
        if not isinstance(data, dict):
            self.error(at, "people is a mapping: manager_field, slack_lookup_ttl")
            return None
        ok = True
        for k in data:
            if k not in ("manager_field", "slack_lookup_ttl"):
                self.error(
                    at + (k,),
                    f"unknown setting {k!r}; known: manager_field, slack_lookup_ttl",
                    key=True,
                )
                ok = False
        manager = data.get("manager_field", "manager")
        if not isinstance(manager, str) or not manager:
            self.error(at + ("manager_field",), "manager_field is a logical user field")
            ok = False
        ttl = self.duration(at + ("slack_lookup_ttl",), data.get("slack_lookup_ttl", "24 hours"))
        if not ok or ttl is None:
            return None
        return People(manager, ttl)

    def duration(self, at: Path_, value: Any) -> Duration | None:
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.error(at, str(exc))
            return None

    def rule(self, at: Path_, data: Any, destinations: Collection[str]) -> NotificationRule | None:
        if not isinstance(data, dict):
            self.error(at, "a notification rule is a mapping with id, event and to")
            return None
        before = len(self.problems)
        rule_id = data.get("id")
        if rule_id is None:
            self.error(at, "rule needs 'id'")
        elif not isinstance(rule_id, str) or not RULE_ID_RE.match(rule_id):
            self.error(at + ("id",), f"rule id {rule_id!r}: use letters, digits and . _ - :")
        event_name = data.get("event")
        spec = EVENTS.get(event_name) if isinstance(event_name, str) else None
        if event_name is None:
            self.error(at, f"rule needs 'event'; known events: {', '.join(EVENTS)}")
        elif spec is None:
            self.error(
                at + ("event",), f"unknown event {event_name!r}; known events: {', '.join(EVENTS)}"
            )
        to = self.recipients(at, data.get("to"), spec, destinations)
        via = self.via(at + ("via",), data.get("via", list(MEDIA)))
        when = self.when(at + ("when",), data.get("when", spec.when if spec else ANY_TIME))
        max_age = self.duration(
            at + ("max_age",), data.get("max_age", spec.max_age if spec else "1 day")
        )
        fallback = data.get("fallback")
        if fallback is not None and fallback not in destinations:
            known = ", ".join(destinations) or "none declared"
            self.error(
                at + ("fallback",), f"unknown destination {fallback!r}; destinations: {known}"
            )
        description = data.get("description", "")
        if not isinstance(description, str):
            self.error(at + ("description",), "description is a text")
        options: Any = None
        if spec is not None:
            raw = {k: v for k, v in data.items() if k not in RULE_KEYS}
            try:
                options = spec.options.model_validate(raw)
            except ValidationError as exc:
                for p in problems_from_validation(self.doc, exc, at):
                    self.problems.append(
                        Problem(
                            p.file,
                            p.line,
                            p.column,
                            p.message.replace(
                                ": unknown setting", f": unknown setting for event {spec.name}"
                            ),
                        )
                    )
            else:
                self.cross_check(at, options)
        if len(self.problems) > before:
            return None
        assert isinstance(rule_id, str) and spec is not None and when is not None
        assert max_age is not None and to is not None and via is not None
        line, col = self.doc.where(at)
        return NotificationRule(
            id=rule_id,
            event=spec.name,
            to=to,
            via=via,
            when=when,
            max_age=max_age,
            fallback=fallback,
            options=options,
            description=description,
            file=self.doc.file,
            line=line,
            column=col,
        )

    def recipients(
        self, at: Path_, value: Any, spec: EventSpec | None, destinations: Collection[str]
    ) -> tuple[str, ...] | None:
        if value is None:
            self.error(at, "rule needs 'to': roles of its event or destinations")
            return None
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items:
            self.error(at + ("to",), "to is a list of roles or destinations")
            return None
        ok = True
        for i, item in enumerate(items):
            roles = spec.roles if spec else ()
            if isinstance(item, str) and (item in roles or item in destinations):
                continue
            if spec is None and isinstance(item, str):
                continue  # the unknown event is the problem
            known = ", ".join([*roles, *destinations]) or "none"
            self.error(
                at + ("to", i), f"unknown recipient {item!r}; roles and destinations: {known}"
            )
            ok = False
        return tuple(items) if ok else None

    def via(self, at: Path_, value: Any) -> tuple[str, ...] | None:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items:
            self.error(at, "via is a list of channels: slack, email")
            return None
        ok = True
        for i, item in enumerate(items):
            if item not in MEDIA:
                self.error(at + (i,), f"unknown channel {item!r}; known channels: slack, email")
                ok = False
        if ok and len(set(items)) != len(items):
            self.error(at, "via names a channel twice")
            ok = False
        return tuple(items) if ok else None

    def when(self, at: Path_, value: Any) -> When | None:
        if value in (BUSINESS_HOURS, ANY_TIME):
            return When(value)
        if isinstance(value, str):
            problem = cron_problem(value)
            if problem is None:
                return When("cron", value)
            self.error(at, f"when is business_hours, any_time or a cron expression: {problem}")
            return None
        self.error(at, f"when {value!r}: business_hours, any_time or a cron expression")
        return None

    def cross_check(self, at: Path_, options: Any) -> None:
        """Options that name boundaries, fields or KPIs the config does not have."""
        config = self.config
        if config is not None and isinstance(options, HandoffOptions) and options.boundaries:
            known = [b.id for b in config.boundaries]
            for i, b in enumerate(options.boundaries):
                if b not in known:
                    self.error(
                        at + ("boundaries", i),
                        f"unknown boundary {b}; tasuki.yaml has {', '.join(known)}",
                    )
        if config is not None and isinstance(options, RecordingOptions):
            mapped = config.objects.get("deal", {}).get(config.crm)
            if mapped is not None:
                for i, name in enumerate(options.answer_fields):
                    if name not in mapped.fields:
                        self.error(
                            at + ("answer_fields", i), f"deal.{name} is not mapped in tasuki.yaml"
                        )


def _body(
    p: _Parser, data: Any, destinations: Collection[str]
) -> tuple[list[NotificationRule], People | None]:
    """Everything of a file but its destinations: top-level keys, people, rules."""
    if not isinstance(data, dict):
        p.error((), "a notifications file is a mapping with 'notifications'")
        return [], None
    for key in data:
        if key not in FILE_KEYS:
            expected = ", ".join(FILE_KEYS[1:])
            p.error((key,), f"unknown top-level key {key!r}; expected: {expected}", key=True)
    if "version" in data and data["version"] != 1:
        p.error(("version",), f"version {data['version']!r}; this tasuki reads version 1")
    people = p.people(data["people"]) if "people" in data else None
    items = data.get("notifications", [])
    if not isinstance(items, list):
        p.error(("notifications",), "'notifications' is a list of rules")
        return [], people
    rules = [p.rule(("notifications", i), item, destinations) for i, item in enumerate(items)]
    return [r for r in rules if r is not None], people


def _destinations(p: _Parser, data: Any) -> dict[str, Destination]:
    if isinstance(data, dict) and "destinations" in data:
        return p.destinations(data["destinations"])
    return {}


def _declared(data: Any) -> set[str]:
    """Destination names a file declares, right or wrong (a wrong one is reported once, at its
    place, not again at every rule that names it)."""
    found = data.get("destinations") if isinstance(data, dict) else None
    return {str(k) for k in found} if isinstance(found, dict) else set()


def _written_ids(doc: Located) -> list[tuple[str, Path_]]:
    """Every rule id written in the file with its place, valid rule or not (for duplicates)."""
    items = doc.data.get("notifications") if isinstance(doc.data, dict) else None
    return [
        (item["id"], ("notifications", i, "id"))
        for i, item in enumerate(items if isinstance(items, list) else [])
        if isinstance(item, dict) and isinstance(item.get("id"), str)
    ]


def parse_notifications_file(
    doc: Located, config: Config | None = None
) -> tuple[list[NotificationRule], dict[str, Destination], People | None, list[Problem]]:
    """The rules, destinations and people settings of one parsed file, and its problems."""
    p = _Parser(doc, config)
    destinations = _destinations(p, doc.data)
    rules, people = _body(p, doc.data, _declared(doc.data))
    return rules, destinations, people, p.problems


def load_notification_book(paths: Sequence[Path], config: Config | None = None) -> NotificationBook:
    """Read and validate every file in ``paths`` (a rule may send to a destination declared in
    another of them); :class:`ConfigError` with every problem of every file when anything is
    wrong. ``config``, when given, is what boundaries and deal fields in the rules are checked
    against."""
    problems: list[Problem] = []
    docs = load_all(paths, problems)
    destinations: dict[str, Destination] = {}
    for doc in docs:
        p = _Parser(doc, config)
        found = _destinations(p, doc.data)
        problems.extend(p.problems)
        for name in found:
            if name in destinations:
                problems.append(
                    doc.problem(
                        ("destinations", name), f"destination {name!r} declared twice", key=True
                    )
                )
        destinations.update(found)
    declared = set().union(*(_declared(doc.data) for doc in docs))
    rules: list[NotificationRule] = []
    people: People | None = None
    seen: dict[str, str] = {}
    for doc in docs:
        p = _Parser(doc, config)
        parsed, found_people = _body(p, doc.data, declared)
        problems.extend(p.problems)
        rules.extend(parsed)
        if found_people is not None:
            if people is not None:
                problems.append(doc.problem(("people",), "people is set in two files", key=True))
            people = found_people
        for rule_id, at in _written_ids(doc):
            where = doc.problem(at, "")
            if rule_id in seen:
                problems.append(
                    doc.problem(at, f"duplicate rule id {rule_id!r} (first at {seen[rule_id]})")
                )
            else:
                seen[rule_id] = f"{where.file}:{where.line}:{where.column}"
    if problems:
        raise ConfigError(problems)
    return NotificationBook(
        tuple(rules), destinations, people or People(), tuple(str(x) for x in paths)
    )
