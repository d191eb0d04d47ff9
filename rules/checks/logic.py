"""Combinations and expressions: all, any, not, expression.

``expression`` evaluates a Python-like expression with :mod:`simpleeval` (no ``eval``): names
are the logical objects (``deal.amount > 1000000 and lead.lead_source == "Web"``), plus
``handoff.at`` and ``now`` (aware datetimes) and a few safe functions. Every ``object.field``
is checked against the catalogue when the file is loaded; an absent field reads as None. The
language and its bounds in time and memory are :mod:`rules.expressions`.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rules.checks.base import Check, CheckParser, YamlPath, register
from rules.expressions import EXPRESSION_ERRORS, BoundedEvaluator, Record, TooCostly, examine
from rules.values import HANDOFF_AT
from tasuki.calendar import BusinessCalendar
from tasuki.verdicts import HandoffContext


@dataclass(frozen=True, slots=True)
class _Combination(Check):
    """A check over the list of checks in ``of`` (``all``, ``any``)."""

    of: tuple[Check, ...]
    required = ("of",)

    @classmethod
    def parse(cls, p: CheckParser, at: YamlPath, data: Mapping[str, Any]) -> Check | None:
        of = p.checks(at + ("of",), data["of"])
        return None if of is None else cls(of)


@register("all")
@dataclass(frozen=True, slots=True)
class All(_Combination):
    """Every check in ``of`` holds."""

    name = "all"

    def evaluate(self, ctx: HandoffContext, calendar: BusinessCalendar) -> str | None:
        reasons = [r for c in self.of if (r := c.evaluate(ctx, calendar)) is not None]
        return "; ".join(reasons) if reasons else None

    def describe(self) -> str:
        return " and ".join(f"({c.describe()})" for c in self.of)


@register("any")
@dataclass(frozen=True, slots=True)
class AnyOf(_Combination):
    """At least one check in ``of`` holds."""

    name = "any"

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


@register("expression")
@dataclass(frozen=True, slots=True)
class Expression(Check):
    """``expr`` is true. Objects are read as ``deal.amount``; empty fields are None."""

    expr: str
    tree: ast.Expr
    """The parsed expression, parsed and checked once at load."""
    objects: tuple[str, ...]
    name = "expression"
    required = ("expr",)

    @classmethod
    def parse(cls, p: CheckParser, at: YamlPath, data: Mapping[str, Any]) -> Check | None:
        text = p.text(at + ("expr",), data["expr"])
        if text is None:
            return None
        found = examine(text, tuple(p.catalog))
        for problem in found.problems:
            p.error(at + ("expr",), problem)
        ok = not found.problems
        objects = []
        for ref in found.fields:
            if ref == HANDOFF_AT:
                continue
            if p.field(at + ("expr",), ref) is None:
                ok = False
            else:
                objects.append(ref.partition(".")[0])
        if not ok or found.tree is None:
            return None
        return cls(text, found.tree, tuple(sorted(set(objects))))

    def evaluate(self, ctx: HandoffContext, calendar: BusinessCalendar) -> str | None:
        names: dict[str, Any] = {"now": ctx.now, "handoff": Record(at=ctx.handed_at)}
        for obj in self.objects:
            rec = ctx.record if obj == ctx.object else ctx.related.get(obj)
            names[obj] = Record(rec or {})
        try:
            result = BoundedEvaluator(names).eval(self.expr, previously_parsed=self.tree)
        except TooCostly as exc:
            return f"expression stopped: {exc}"
        except EXPRESSION_ERRORS as exc:  # a job timeout or MemoryError is not the rule's
            return f"expression failed: {type(exc).__name__}: {exc}"
        return None if result else f"not true: {self.expr}"

    def describe(self) -> str:
        return self.expr
