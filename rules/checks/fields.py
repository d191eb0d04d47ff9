"""Checks on one field's value: required, length, pattern, one_of, range, url.

Every check but ``required`` takes ``optional: true`` to let an empty value pass (the value is
then checked only when it is filled in); by default an empty value fails it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rules.checks.base import Check, CheckParser, YamlPath, register
from rules.values import FieldRef, is_empty, same_value, shown, to_number
from tasuki.calendar import BusinessCalendar
from tasuki.verdicts import HandoffContext


@register("required", "not_empty")
@dataclass(frozen=True, slots=True)
class Required(Check):
    """The field is filled in: not missing, not blank, not an empty list."""

    field: FieldRef
    name = "required"
    required = ("field",)

    @classmethod
    def parse(cls, p: CheckParser, at: YamlPath, data: Mapping[str, Any]) -> Check | None:
        ref = p.field(at + ("field",), data["field"])
        return None if ref is None else cls(ref)

    def evaluate(self, ctx: HandoffContext, calendar: BusinessCalendar) -> str | None:
        # FieldRef.get and is_empty written out: the most common check, on the hot path.
        ref = self.field
        rec = ctx.record if ctx.object == ref.object else ctx.related.get(ref.object)
        value = None if rec is None else rec.get(ref.field)
        if value is None:
            return f"{ref} is empty"
        if type(value) is str:
            return f"{ref} is empty" if not value or value.isspace() else None
        return f"{ref} is empty" if is_empty(value) else None

    def describe(self) -> str:
        return f"{self.field} is filled in"


def char_length(text: str) -> int:
    """Length in characters as a person counts them (NFC, so 'が' is one, not two)."""
    text = text.strip()
    return len(text) if text.isascii() else len(unicodedata.normalize("NFC", text))


@register("length", "min_length")
@dataclass(frozen=True, slots=True)
class Length(Check):
    """The text has at least ``min`` and at most ``max`` characters (characters, not bytes)."""

    field: FieldRef
    min: int | None
    max: int | None
    optional_: bool
    name = "length"
    required = ("field",)
    optional = ("min", "max", "optional")

    @classmethod
    def parse(cls, p: CheckParser, at: YamlPath, data: Mapping[str, Any]) -> Check | None:
        ref = p.field(at + ("field",), data["field"])
        lo = p.count(at + ("min",), data["min"]) if "min" in data else None
        hi = p.count(at + ("max",), data["max"]) if "max" in data else None
        if "min" not in data and "max" not in data:
            p.error(at, "check 'length' needs 'min' or 'max'")
            return None
        if lo is not None and hi is not None and hi < lo:
            p.error(at + ("max",), f"max {hi} is below min {lo}")
            return None
        opt = p.flag(at + ("optional",), data["optional"]) if "optional" in data else False
        return None if ref is None else cls(ref, lo, hi, opt)

    def evaluate(self, ctx: HandoffContext, calendar: BusinessCalendar) -> str | None:
        ref = self.field
        rec = ctx.record if ctx.object == ref.object else ctx.related.get(ref.object)
        value = None if rec is None else rec.get(ref.field)
        if is_empty(value):
            return None if self.optional_ or not self.min else f"{ref} is empty"
        if type(value) is str and value.isascii():
            n = len(value.strip())
        else:
            n = char_length(value if isinstance(value, str) else str(value))
        if self.min is not None and n < self.min:
            return f"{self.field} has {n} characters, fewer than {self.min}"
        if self.max is not None and n > self.max:
            return f"{self.field} has {n} characters, more than {self.max}"
        return None

    def describe(self) -> str:
        bounds = [f"at least {self.min}"] if self.min is not None else []
        bounds += [f"at most {self.max}"] if self.max is not None else []
        return f"{self.field} has {' and '.join(bounds)} characters"


@register("pattern")
@dataclass(frozen=True, slots=True)
class Pattern(Check):
    """The text contains a match of ``regex`` (anchor it with ^ and $ to match it whole)."""

    field: FieldRef
    regex: re.Pattern[str]
    optional_: bool
    name = "pattern"
    required = ("field", "regex")
    optional = ("ignore_case", "optional")

    @classmethod
    def parse(cls, p: CheckParser, at: YamlPath, data: Mapping[str, Any]) -> Check | None:
        ref = p.field(at + ("field",), data["field"])
        icase = p.flag(at + ("ignore_case",), data["ignore_case"]) if "ignore_case" in data else 0
        rx = p.regex(at + ("regex",), data["regex"], re.IGNORECASE if icase else 0)
        opt = p.flag(at + ("optional",), data["optional"]) if "optional" in data else False
        return None if ref is None or rx is None else cls(ref, rx, opt)

    def evaluate(self, ctx: HandoffContext, calendar: BusinessCalendar) -> str | None:
        value = self.field.get(ctx)
        if is_empty(value):
            return None if self.optional_ else f"{self.field} is empty"
        if self.regex.search(value if isinstance(value, str) else str(value)) is None:
            return f"{self.field} {shown(value)} does not match {self.regex.pattern}"
        return None

    def describe(self) -> str:
        return f"{self.field} matches {self.regex.pattern}"


@register("one_of")
@dataclass(frozen=True, slots=True)
class OneOf(Check):
    """The value is one of ``values`` (``true`` also matches the text "true", 3 matches "3")."""

    field: FieldRef
    values: tuple[Any, ...]
    optional_: bool
    name = "one_of"
    required = ("field", "values")
    optional = ("optional",)

    @classmethod
    def parse(cls, p: CheckParser, at: YamlPath, data: Mapping[str, Any]) -> Check | None:
        ref = p.field(at + ("field",), data["field"])
        values = data["values"]
        if not isinstance(values, list) or not values:
            p.error(at + ("values",), "expected a non-empty list of values")
            return None
        for i, v in enumerate(values):
            if not isinstance(v, str | int | float | bool):
                p.error(at + ("values", i), f"{v!r} is not a text, number or true/false")
                return None
        opt = p.flag(at + ("optional",), data["optional"]) if "optional" in data else False
        return None if ref is None else cls(ref, tuple(values), opt)

    def evaluate(self, ctx: HandoffContext, calendar: BusinessCalendar) -> str | None:
        value = self.field.get(ctx)
        if is_empty(value):
            return None if self.optional_ else f"{self.field} is empty"
        for allowed in self.values:
            if same_value(value, allowed):
                return None
        return f"{self.field} is {shown(value)}, not one of {self._listed()}"

    def _listed(self) -> str:
        return ", ".join(shown(v) for v in self.values)

    def describe(self) -> str:
        return f"{self.field} is one of {self._listed()}"


@register("range")
@dataclass(frozen=True, slots=True)
class Range(Check):
    """The number is at least ``min`` and at most ``max`` (numeric text is read as a number)."""

    field: FieldRef
    min: float | None
    max: float | None
    optional_: bool
    name = "range"
    required = ("field",)
    optional = ("min", "max", "optional")

    @classmethod
    def parse(cls, p: CheckParser, at: YamlPath, data: Mapping[str, Any]) -> Check | None:
        ref = p.field(at + ("field",), data["field"])
        if "min" not in data and "max" not in data:
            p.error(at, "check 'range' needs 'min' or 'max'")
            return None
        lo = p.number(at + ("min",), data["min"]) if "min" in data else None
        hi = p.number(at + ("max",), data["max"]) if "max" in data else None
        if lo is not None and hi is not None and hi < lo:
            p.error(at + ("max",), f"max {data['max']} is below min {data['min']}")
            return None
        opt = p.flag(at + ("optional",), data["optional"]) if "optional" in data else False
        return None if ref is None else cls(ref, lo, hi, opt)

    def evaluate(self, ctx: HandoffContext, calendar: BusinessCalendar) -> str | None:
        raw = self.field.get(ctx)
        number = to_number(raw)
        if number is None:
            return None if self.optional_ else f"{self.field} is empty"
        if self.min is not None and number < self.min:
            return f"{self.field} is {raw}, below {_num(self.min)}"
        if self.max is not None and number > self.max:
            return f"{self.field} is {raw}, above {_num(self.max)}"
        return None

    def describe(self) -> str:
        bounds = [f">= {_num(self.min)}"] if self.min is not None else []
        bounds += [f"<= {_num(self.max)}"] if self.max is not None else []
        return f"{self.field} {' and '.join(bounds)}"


def _num(x: float) -> str:
    return str(int(x)) if x == int(x) else str(x)


def host_allowed(host: str, patterns: tuple[str, ...]) -> bool:
    """``*.zoom.us`` allows any subdomain of zoom.us; other patterns are exact host names."""
    host = host.lower().rstrip(".")
    for pat in patterns:
        if pat.startswith("*."):
            if host.endswith(pat[1:]):
                return True
        elif host == pat:
            return True
    return False


# scheme://[userinfo@]host[:port](/|?|#|end): all a host check needs, and far cheaper than
# urlsplit on the hot path.
_URL_RE = re.compile(
    r"^([A-Za-z][A-Za-z0-9+.\-]*)://(?:[^/?#@\s]*@)?([^/?#:@\s\[\]]+)(?::\d+)?(?:[/?#]\S*)?$"
)


def url_problem(value: str, hosts: tuple[str, ...], schemes: tuple[str, ...]) -> str | None:
    """Why ``value`` is not a URL on an allowed host, or None when it is one."""
    m = _URL_RE.match(value.strip())
    if m is None or m.group(1).lower() not in schemes:
        return f"is not a {'/'.join(schemes)} URL"
    host = m.group(2)
    if hosts and not host_allowed(host, hosts):
        return f"is on {host}, not on {', '.join(hosts)}"
    return None


def parse_hosts(p: CheckParser, at: YamlPath, value: Any) -> tuple[str, ...] | None:
    """Host patterns: names like ``zoom.us`` or ``*.miitel.jp``, lower-cased."""
    hosts = p.texts(at, value)
    if hosts is None:
        return None
    for i, h in enumerate(hosts):
        bare = h.removeprefix("*.")
        if "*" in bare or "/" in h or ":" in h or "." not in bare:
            p.error(at + (i,), f"{h!r} is not a host name or *.domain pattern")
            return None
    return tuple(h.lower() for h in hosts)


@register("url")
@dataclass(frozen=True, slots=True)
class Url(Check):
    """The value is a URL (https by default) on one of the allowed ``hosts``, if any are given."""

    field: FieldRef
    hosts: tuple[str, ...]
    schemes: tuple[str, ...]
    optional_: bool
    name = "url"
    required = ("field",)
    optional = ("hosts", "schemes", "optional")

    @classmethod
    def parse(cls, p: CheckParser, at: YamlPath, data: Mapping[str, Any]) -> Check | None:
        ref = p.field(at + ("field",), data["field"])
        hosts = parse_hosts(p, at + ("hosts",), data["hosts"]) if "hosts" in data else ()
        schemes = p.texts(at + ("schemes",), data["schemes"]) if "schemes" in data else ("https",)
        opt = p.flag(at + ("optional",), data["optional"]) if "optional" in data else False
        if ref is None or hosts is None or schemes is None:
            return None
        return cls(ref, hosts, tuple(s.lower() for s in schemes), opt)

    def evaluate(self, ctx: HandoffContext, calendar: BusinessCalendar) -> str | None:
        value = self.field.get(ctx)
        if is_empty(value):
            return None if self.optional_ else f"{self.field} is empty"
        why = url_problem(str(value), self.hosts, self.schemes)
        return None if why is None else f"{self.field} {shown(value)} {why}"

    def describe(self) -> str:
        where = f" on {', '.join(self.hosts)}" if self.hosts else ""
        return f"{self.field} is a {'/'.join(self.schemes)} URL{where}"
