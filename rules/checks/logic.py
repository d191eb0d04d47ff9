"""Combinations and expressions: all, any, not, expression.

``expression`` evaluates a Python-like expression with :mod:`simpleeval` (no ``eval``): names
are the logical objects (``deal.amount > 1000000 and lead.lead_source == "Web"``), plus
``handoff.at`` and ``now`` (aware datetimes) and a few safe functions. Every ``object.field``
is checked against the catalogue when the file is loaded; an absent field reads as None.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from simpleeval import EvalWithCompoundTypes

from rules.checks.base import Check, CheckParser, YamlPath, register
from rules.values import is_empty
from rules.verdict import HandoffContext
from tasuki.calendar import BusinessCalendar


@register("all")
@dataclass(frozen=True, slots=True)
class All(Check):
    """Every check in ``of`` holds."""

    of: tuple[Check, ...]
    name = "all"
    required = ("of",)

    @classmethod
    def parse(cls, p: CheckParser, at: YamlPath, data: Mapping[str, Any]) -> Check | None:
        of = p.checks(at + ("of",), data["of"])
        return None if of is None else cls(of)

    def evaluate(self, ctx: HandoffContext, calendar: BusinessCalendar) -> str | None:
        reasons = [r for c in self.of if (r := c.evaluate(ctx, calendar)) is not None]
        return "; ".join(reasons) if reasons else None

    def describe(self) -> str:
        return " and ".join(f"({c.describe()})" for c in self.of)


@register("any")
@dataclass(frozen=True, slots=True)
class AnyOf(Check):
    """At least one check in ``of`` holds."""

    of: tuple[Check, ...]
    name = "any"
    required = ("of",)

    @classmethod
    def parse(cls, p: CheckParser, at: YamlPath, data: Mapping[str, Any]) -> Check | None:
        of = p.checks(at + ("of",), data["of"])
        return None if of is None else cls(of)

    def evaluate(self, ctx: HandoffContext, calendar: BusinessCalendar) -> str | None:
        reasons = []
        for c in self.of:
            r = c.evaluate(ctx, calendar)
            if r is None:
                return None
            reasons.append(r)
        return "none holds: " + "; ".join(reasons)

    def describe(self) -> str:
        return " or ".join(f"({c.describe()})" for c in self.of)


@register("not")
@dataclass(frozen=True, slots=True)
class Not(Check):
    """The check in ``of`` does not hold."""

    of: Check
    name = "not"
    required = ("of",)

    @classmethod
    def parse(cls, p: CheckParser, at: YamlPath, data: Mapping[str, Any]) -> Check | None:
        of = p.check(at + ("of",), data["of"])
        return None if of is None else cls(of)

    def evaluate(self, ctx: HandoffContext, calendar: BusinessCalendar) -> str | None:
        return f"holds: {self.of.describe()}" if self.of.evaluate(ctx, calendar) is None else None

    def describe(self) -> str:
        return f"not ({self.of.describe()})"


SAFE_FUNCTIONS: dict[str, Any] = {
    "len": len,
    "str": str,
    "int": int,
    "float": float,
    "lower": lambda s: str(s).lower(),
    "empty": is_empty,
}
"""Functions an expression may call."""


def _names_used(tree: ast.AST) -> list[tuple[ast.Attribute | ast.Name, str, str | None]]:
    """(node, object, field) for every ``object.field`` and bare name in the expression."""
    found: list[tuple[ast.Attribute | ast.Name, str, str | None]] = []
    attributes: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            found.append((node, node.value.id, node.attr))
            attributes.add(id(node.value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and id(node) not in attributes:
            found.append((node, node.id, None))
    return found


@register("expression")
@dataclass(frozen=True, slots=True)
class Expression(Check):
    """``expr`` is true. Objects are read as ``deal.amount``; empty fields are None."""

    expr: str
    tree: Any
    """The parsed expression (simpleeval's own AST), parsed once at load."""
    objects: tuple[str, ...]
    name = "expression"
    required = ("expr",)

    @classmethod
    def parse(cls, p: CheckParser, at: YamlPath, data: Mapping[str, Any]) -> Check | None:
        text = p.text(at + ("expr",), data["expr"])
        if text is None:
            return None
        try:
            body = ast.parse(text.strip()).body
        except SyntaxError as exc:
            p.error(at + ("expr",), f"expression syntax: {exc.msg}")
            return None
        if len(body) != 1 or not isinstance(body[0], ast.Expr):
            p.error(at + ("expr",), "write one expression, not statements")
            return None
        tree = body[0]
        objects = []
        ok = True
        for _node, obj, fld in _names_used(tree):
            if fld is None:
                if obj not in SAFE_FUNCTIONS and obj not in ("now", "True", "False", "None"):
                    p.error(at + ("expr",), f"unknown name {obj!r}; write object.field")
                    ok = False
            elif obj == "handoff" and fld == "at":
                continue
            elif p.field(at + ("expr",), f"{obj}.{fld}") is None:
                ok = False
            else:
                objects.append(obj)
        return cls(text, tree, tuple(sorted(set(objects)))) if ok else None

    def evaluate(self, ctx: HandoffContext, calendar: BusinessCalendar) -> str | None:
        names: dict[str, Any] = {"now": ctx.now, "handoff": {"at": ctx.handed_at}}
        for obj in self.objects:
            rec = ctx.record if obj == ctx.object else ctx.related.get(obj)
            names[obj] = _Fields(rec or {})
        evaluator = EvalWithCompoundTypes(names=names, functions=SAFE_FUNCTIONS)
        try:
            result = evaluator.eval(self.expr, previously_parsed=self.tree)
        except Exception as exc:  # noqa: BLE001 - any failure of a user's expression is a "no"
            return f"expression failed: {type(exc).__name__}: {exc}"
        return None if result else f"not true: {self.expr}"

    def describe(self) -> str:
        return self.expr


class _Fields(dict[str, Any]):
    """A record whose absent fields read as None, so ``deal.amount`` never raises."""

    def __missing__(self, key: str) -> None:
        return None
