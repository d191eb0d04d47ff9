"""What a check type is, the registry of check types by YAML name, and the located parser.

A check is written in YAML as a mapping with ``check: NAME`` and the type's own settings::

    {check: length, field: deal.hearing_notes, min: 30}

Each check type is a frozen dataclass registered under its YAML name with :func:`register`. Its
``parse`` classmethod turns the YAML mapping into an instance through a :class:`CheckParser`,
which knows the file, the place of every value and the logical field catalogue, and collects
every problem (never stops at the first). Its ``evaluate`` method is pure and fast: it returns
None when the handoff satisfies the check, otherwise the reason why not, in plain words.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from rules.values import HANDOFF_AT, INSTANT_NAMES, NOW, FieldRef, InstantRef
from tasuki.calendar import BusinessCalendar
from tasuki.durations import Duration, parse_duration
from tasuki.errors import Problem
from tasuki.verdicts import HandoffContext
from tasuki.yamlsource import Located

YamlPath = tuple[str | int, ...]


class Check(ABC):
    """One condition a handoff can satisfy or not."""

    name: ClassVar[str]
    """The YAML name the type is registered under."""
    required: ClassVar[tuple[str, ...]] = ()
    """Settings the YAML must give."""
    optional: ClassVar[tuple[str, ...]] = ()
    """Settings the YAML may give."""

    @classmethod
    @abstractmethod
    def parse(cls, p: CheckParser, at: YamlPath, data: Mapping[str, Any]) -> Check | None:
        """The check described by ``data`` (at ``at`` in the file); None after reporting."""

    @abstractmethod
    def evaluate(self, ctx: HandoffContext, calendar: BusinessCalendar) -> str | None:
        """None when ``ctx`` satisfies the check, else why not. Pure; may raise ValueError."""

    @abstractmethod
    def describe(self) -> str:
        """What the check demands, in one line (for ``rules explain``)."""

    def note(self, ctx: HandoffContext, calendar: BusinessCalendar) -> str | None:
        """Something worth saying about a satisfied check (a pending SLA's deadline)."""
        return None


CHECK_TYPES: dict[str, type[Check]] = {}
"""Every check type by its YAML name (aliases included)."""

C = TypeVar("C", bound=type[Check])


def register(*names: str) -> Callable[[C], C]:
    """Class decorator: make a check type available in YAML under ``names``."""

    def add(cls: C) -> C:
        for n in names:
            if n in CHECK_TYPES:
                raise RuntimeError(f"check type {n!r} registered twice")
            CHECK_TYPES[n] = cls
        return cls

    return add


def known_checks() -> str:
    """The registered YAML names, sorted, for error messages."""
    return ", ".join(sorted(CHECK_TYPES))


@dataclass
class CheckParser:
    """Turns YAML values into typed parts of checks, reporting every problem with its place."""

    doc: Located
    catalog: Mapping[str, Sequence[str]]
    problems: list[Problem] = field(default_factory=list)

    def error(self, at: Sequence[str | int], message: str, *, key: bool = False) -> None:
        """Record a problem at ``at``."""
        self.problems.append(self.doc.problem(at, message, key=key))

    def check(self, at: YamlPath, data: Any, *, also_allowed: Sequence[str] = ()) -> Check | None:
        """A check from its YAML mapping; ``also_allowed`` are keys the caller consumes."""
        if not isinstance(data, dict):
            self.error(at, "a check is a mapping with 'check: TYPE' and its settings")
            return None
        name = data.get("check")
        if name is None:
            self.error(at, f"missing 'check'; known check types: {known_checks()}")
            return None
        cls = CHECK_TYPES.get(name) if isinstance(name, str) else None
        if cls is None:
            self.error(
                at + ("check",), f"unknown check type {name!r}; known check types: {known_checks()}"
            )
            return None
        allowed = {"check", *cls.required, *cls.optional, *also_allowed}
        ok = True
        for key in data:
            if key not in allowed:
                expected = ", ".join((*cls.required, *cls.optional)) or "nothing"
                self.error(
                    at + (key,),
                    f"unknown setting {key!r} for check {name!r}; expected: {expected}",
                    key=True,
                )
                ok = False
        missing = [key for key in cls.required if key not in data]
        for key in missing:
            self.error(at, f"check {name!r} needs {key!r}")
        if missing:
            return None
        check = cls.parse(self, at, data)  # even after an unknown key: report all problems
        return check if ok else None

    def field(self, at: YamlPath, value: Any) -> FieldRef | None:
        """``object.field`` checked against the catalogue."""
        if not isinstance(value, str) or "." not in value:
            self.error(at, f"{value!r} is not a field; write object.field, e.g. deal.amount")
            return None
        obj, _, name = value.partition(".")
        if obj not in self.catalog:
            self.error(at, f"unknown object {obj!r}; known objects: {', '.join(self.catalog)}")
            return None
        fields = self.catalog[obj]
        if name not in fields:
            self.error(at, f"unknown field {value}; {obj} fields: {', '.join(fields)}")
            return None
        return FieldRef(obj, name)

    def instant(self, at: YamlPath, value: Any) -> InstantRef | None:
        """A field holding an instant, or ``handoff.at`` / ``now``."""
        if value in INSTANT_NAMES:
            return InstantRef(HANDOFF_AT if value == HANDOFF_AT else NOW)
        ref = self.field(at, value)
        return None if ref is None else InstantRef(str(ref), ref)

    def duration(self, at: YamlPath, value: Any) -> Duration | None:
        """A duration like ``1 business hour``."""
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.error(at, str(exc))
            return None

    def number(self, at: YamlPath, value: Any) -> float | None:
        """A number (not a bool)."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error(at, f"{value!r} is not a number")
            return None
        return float(value)

    def count(self, at: YamlPath, value: Any) -> int | None:
        """A whole number, zero or more."""
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.error(at, f"{value!r} is not a whole number of zero or more")
            return None
        return value

    def flag(self, at: YamlPath, value: Any) -> bool:
        """true or false."""
        if not isinstance(value, bool):
            self.error(at, f"{value!r} is not true or false")
            return False
        return value

    def text(self, at: YamlPath, value: Any) -> str | None:
        """A non-empty string."""
        if not isinstance(value, str) or not value.strip():
            self.error(at, f"{value!r} is not a non-empty text")
            return None
        return value

    def texts(self, at: YamlPath, value: Any) -> tuple[str, ...] | None:
        """One string or a non-empty list of strings."""
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items:
            self.error(at, "expected a text or a non-empty list of texts")
            return None
        out = []
        for i, item in enumerate(items):
            t = self.text(at + (i,) if isinstance(value, list) else at, item)
            if t is not None:
                out.append(t)
        return tuple(out) if len(out) == len(items) else None

    def regex(self, at: YamlPath, value: Any, flags: int = 0) -> re.Pattern[str] | None:
        """A regular expression that compiles."""
        if not isinstance(value, str):
            self.error(at, f"{value!r} is not a regular expression")
            return None
        try:
            return re.compile(value, flags)
        except re.error as exc:
            self.error(at, f"bad regular expression: {exc}")
            return None

    def checks(self, at: YamlPath, value: Any) -> tuple[Check, ...] | None:
        """A non-empty list of checks."""
        if not isinstance(value, list) or not value:
            self.error(at, "expected a non-empty list of checks")
            return None
        parsed = [self.check(at + (i,), item) for i, item in enumerate(value)]
        if any(c is None for c in parsed):
            return None
        return tuple(c for c in parsed if c is not None)
