"""The language of the ``expression`` check, bounded so that no rule can hurt the worker.

An expression is Python-like and evaluated by :mod:`simpleeval` (never ``eval``). It reads
records as ``object.field``, plus ``handoff.at``, ``now``, the :data:`FUNCTIONS` and the
variables of its own comprehensions; values offer only the methods in :data:`METHODS`.

The bounds are kept in two places:

* when the file is loaded, :func:`examine` refuses what can never be cheap: an expression longer
  than :data:`MAX_LENGTH` or nested deeper than :data:`MAX_DEPTH`, syntax outside the language
  (``lambda``, ``:=``, ``f"{x:>999999999}"``), a method not in :data:`METHODS`, and any part
  that reads no record and cannot be computed within the bounds below (``9 ** 4000000``,
  ``'x' * 10 ** 9``); the file's problem says so at the expression's line and column;
* while it runs, :class:`BoundedEvaluator` counts steps (:data:`MAX_STEPS`), watches a deadline
  (:data:`MAX_SECONDS`) and refuses a number over :data:`MAX_INT_BITS` bits, a value over
  :data:`MAX_SIZE` and more than :data:`MAX_MADE` made in all. Operations that could allocate
  much in one call (``*``, ``+``, ``**``, ``<<``, ``join``, ``replace``) are measured before
  they run; comprehensions stop after :data:`MAX_ITEMS` items (simpleeval's own bound).

Errors: :data:`EXPRESSION_ERRORS` is what a user's expression may raise, a "no" for its rule.
Anything else (rq's ``JobTimeoutException``, ``MemoryError``, ``KeyboardInterrupt``) is not the
expression's to swallow and passes through::

    simpleeval.InvalidExpression     what simpleeval refuses (an unknown function, ...)
     └── TooCostly                   a bound crossed while evaluating
"""

from __future__ import annotations

import ast
import math
import operator as op
import time
import types
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial
from itertools import chain
from typing import Any

from simpleeval import (
    DISALLOW_FUNCTIONS,
    MAX_COMPREHENSION_LENGTH,
    EvalWithCompoundTypes,
    FeatureNotAvailable,
    InvalidExpression,
    IterableTooLong,
)

from rules.values import is_empty

MAX_LENGTH = 2_000
"""Characters in one expression."""
MAX_DEPTH = 100
"""Levels of nesting of an expression's syntax tree; evaluation recurses once per level."""
MAX_INT_BITS = 1_024
"""Bits of any whole number an expression holds (about 308 decimal digits)."""
MAX_SIZE = 200_000
"""Characters of a text, or items of a list, tuple, set or dict counted through its nested
ones, that one value may have: more than the longest text field of Salesforce or HubSpot."""
MAX_MADE = 2_000_000
"""Characters and items of all the values one evaluation makes, added up: its memory bound."""
MAX_STEPS = 50_000
"""Parts of the syntax tree one evaluation may visit (a comprehension's body once per item)."""
MAX_SECONDS = 0.5
"""Wall time one evaluation may take, checked at every step."""
MAX_ITEMS: int = MAX_COMPREHENSION_LENGTH
"""Items the comprehensions of one evaluation may go through together (simpleeval's bound)."""


class TooCostly(InvalidExpression):  # type: ignore[misc]  # simpleeval ships no types
    """An evaluation crossed one of the bounds of this module; the message names it."""


EXPRESSION_ERRORS: tuple[type[Exception], ...] = (
    InvalidExpression,
    ArithmeticError,
    LookupError,
    TypeError,
    ValueError,
    AttributeError,
)
"""What evaluating a user's expression may raise: its rule is broken, the worker goes on."""


class Record(dict[str, Any]):
    """A record read by ``object.field``: an absent field reads as None, never raises."""

    def __missing__(self, key: str) -> None:
        return None


def _too_long() -> TooCostly:
    return TooCostly(f"a value of more than {MAX_SIZE:,} characters or items")


def _too_big() -> TooCostly:
    return TooCostly(f"a number of more than {MAX_INT_BITS:,} bits")


def _length(value: Any) -> int | None:
    return len(value) if isinstance(value, str | bytes | list | tuple) else None


def _add(a: Any, b: Any) -> Any:
    la, lb = _length(a), _length(b)
    if la is not None and lb is not None and la + lb > MAX_SIZE:
        raise _too_long()
    return a + b


def _mul(a: Any, b: Any) -> Any:
    for seq, n in ((a, b), (b, a)):
        size = _length(seq)
        if size is not None and isinstance(n, int) and size * n > MAX_SIZE:
            raise _too_long()
    return a * b


def _pow(a: Any, b: Any) -> Any:
    if isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a) > 1:
        if b * math.log2(abs(a)) > MAX_INT_BITS:
            raise _too_big()
    return a**b


def _lshift(a: Any, b: Any) -> Any:
    if isinstance(a, int) and isinstance(b, int) and a and a.bit_length() + b > MAX_INT_BITS:
        raise _too_big()
    return a << b


def _mod(a: Any, b: Any) -> Any:
    if isinstance(a, str | bytes):  # "%999999999d" % 1 would be a gigabyte
        raise FeatureNotAvailable("text formatting with % is not available")
    return a % b


OPERATORS: Mapping[type[ast.AST], Callable[..., Any]] = {
    ast.Add: _add,
    ast.Sub: op.sub,
    ast.Mult: _mul,
    ast.Div: op.truediv,
    ast.FloorDiv: op.floordiv,
    ast.Mod: _mod,
    ast.Pow: _pow,
    ast.LShift: _lshift,
    ast.RShift: op.rshift,
    ast.BitAnd: op.and_,
    ast.BitOr: op.or_,
    ast.BitXor: op.xor,
    ast.Invert: op.invert,
    ast.Not: op.not_,
    ast.USub: op.neg,
    ast.UAdd: op.pos,
    ast.Eq: op.eq,
    ast.NotEq: op.ne,
    ast.Lt: op.lt,
    ast.LtE: op.le,
    ast.Gt: op.gt,
    ast.GtE: op.ge,
    ast.In: lambda x, y: x in y,
    ast.NotIn: lambda x, y: x not in y,
    ast.Is: lambda x, y: x is y,
    ast.IsNot: lambda x, y: x is not y,
}
"""The operators an expression may use; those that can grow a value check its size first."""


def _lower(value: Any) -> str:
    return str(value).lower()


FUNCTIONS: Mapping[str, Callable[..., Any]] = {
    "len": len,
    "str": str,
    "int": int,
    "float": float,
    "lower": _lower,
    "empty": is_empty,
    "list": list,
    "tuple": tuple,
    "set": set,
    "dict": dict,
}
"""Functions an expression may call; each makes at most a few times what it is given."""

TEXT_METHODS = frozenset(
    {
        "capitalize",
        "casefold",
        "count",
        "endswith",
        "find",
        "index",
        "isalnum",
        "isalpha",
        "isascii",
        "isdecimal",
        "isdigit",
        "islower",
        "isnumeric",
        "isspace",
        "istitle",
        "isupper",
        "join",
        "lower",
        "lstrip",
        "partition",
        "removeprefix",
        "removesuffix",
        "replace",
        "rfind",
        "rindex",
        "rpartition",
        "rsplit",
        "rstrip",
        "split",
        "splitlines",
        "startswith",
        "strip",
        "swapcase",
        "title",
        "upper",
    }
)
"""Methods of texts. Left out: those that pad to a given width (``ljust``, ``center``,
``zfill``, ``expandtabs``), format (``format``, ``%``), translate or encode."""

METHODS: tuple[tuple[type | tuple[type, ...], frozenset[str]], ...] = (
    (str, TEXT_METHODS),
    (
        date,  # and datetime, a date too
        frozenset(
            {
                "year",
                "month",
                "day",
                "hour",
                "minute",
                "second",
                "microsecond",
                "weekday",
                "isoweekday",
                "isoformat",
                "date",
                "timestamp",
            }
        ),
    ),
    (timedelta, frozenset({"days", "seconds", "microseconds", "total_seconds"})),
    ((list, tuple), frozenset({"count", "index"})),
    (dict, frozenset({"get", "items", "keys", "values"})),
    (
        (set, frozenset),
        frozenset(
            {
                "difference",
                "intersection",
                "isdisjoint",
                "issubset",
                "issuperset",
                "symmetric_difference",
                "union",
            }
        ),
    ),
)
"""Attributes and methods by the type of the value: none that change a value or grow it
without bound. Numbers and booleans have none."""

ALL_METHODS = frozenset(chain.from_iterable(names for _, names in METHODS))
"""Every name in :data:`METHODS`, for the check at load."""


def _join(sep: str, items: Iterable[Any]) -> str:
    items = list(items)
    total = len(sep) * max(len(items) - 1, 0) + sum(len(x) for x in items if isinstance(x, str))
    if total > MAX_SIZE:
        raise _too_long()
    return sep.join(items)


def _replace(text: str, old: str, new: str, count: int = -1) -> str:
    n = text.count(old)
    if count >= 0:
        n = min(n, count)
    if len(text) + n * (len(new) - len(old)) > MAX_SIZE:
        raise _too_long()
    return text.replace(old, new, count)


_MEASURED_TEXT_METHODS: Mapping[str, Callable[..., str]] = {"join": _join, "replace": _replace}
"""Text methods whose result is measured before it is made."""


def _methods_of(value: Any) -> frozenset[str]:
    for kind, names in METHODS:
        if isinstance(value, kind):
            return names
    return frozenset()


_READS = (ast.Name, ast.Attribute)
"""Nodes that read a value that exists already (a record's field), made by no one here."""


class BoundedEvaluator(EvalWithCompoundTypes):  # type: ignore[misc]  # simpleeval ships no types
    """simpleeval's evaluator within this module's bounds. One instance per evaluation."""

    def __init__(self, names: Mapping[str, Any]) -> None:
        super().__init__(operators=dict(OPERATORS), functions=dict(FUNCTIONS), names=dict(names))
        self._steps = 0
        self._made = 0
        self._deadline = 0.0
        self._sizes: dict[int, tuple[Any, int]] = {}
        """Size of every container measured in this evaluation (kept alive, so ids stay)."""

    def eval(self, expr: str, previously_parsed: ast.AST | None = None) -> Any:
        """The value of ``expr`` (or of its ``previously_parsed`` tree); TooCostly past a bound."""
        self._steps = 0
        self._made = 0
        self._deadline = time.monotonic() + MAX_SECONDS
        try:
            return super().eval(expr, previously_parsed)
        except IterableTooLong as exc:
            raise TooCostly(f"more than {MAX_ITEMS:,} items in comprehensions") from exc
        finally:
            self._sizes = {}

    def _eval(self, node: ast.AST) -> Any:
        self._steps += 1
        if self._steps > MAX_STEPS:
            raise TooCostly(f"more than {MAX_STEPS:,} steps")
        if time.monotonic() > self._deadline:
            raise TooCostly(f"more than {MAX_SECONDS} s")
        value = super()._eval(node)
        if not isinstance(node, _READS):
            self._count(value)
        return value

    def _count(self, value: Any) -> None:
        if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
            raise _too_big()
        size = self._size(value)
        if size > MAX_SIZE:
            raise _too_long()
        self._made += size
        if self._made > MAX_MADE:
            raise TooCostly(f"values of more than {MAX_MADE:,} characters or items in all")

    def _size(self, value: Any) -> int:
        """Characters of a text; items of a container, nested ones counted as often as they
        appear (comparing or hashing it costs that much); 1 for anything else."""
        if isinstance(value, str | bytes):
            return len(value)
        if isinstance(value, int):
            return 1 + value.bit_length() // 64
        if not isinstance(value, list | tuple | set | frozenset | dict):
            return 1
        known = self._sizes.get(id(value))
        if known is not None:
            return known[1]
        size = len(value)
        items = chain.from_iterable(value.items()) if isinstance(value, dict) else value
        for item in items:
            if size > MAX_SIZE:
                break
            size += self._size(item)
        self._sizes[id(value)] = (value, size)
        return size

    def _check_disallowed_items(self, item: Any) -> None:
        # simpleeval walks every nested container here, so [[[[1]*99]*99]*99]*99 would take
        # its 10**8 steps; the items of a container were each checked when they were made.
        if isinstance(item, types.ModuleType):
            raise FeatureNotAvailable("modules are not available")
        if callable(item) and any(item is f for f in DISALLOW_FUNCTIONS):
            raise FeatureNotAvailable("this function is not available")

    def _eval_attribute(self, node: ast.Attribute) -> Any:
        target = self._eval(node.value)
        if isinstance(target, Record):
            return target[node.attr]
        if node.attr not in _methods_of(target):
            raise FeatureNotAvailable(f"{type(target).__name__} has no .{node.attr} here")
        if isinstance(target, str) and node.attr in _MEASURED_TEXT_METHODS:
            return partial(_MEASURED_TEXT_METHODS[node.attr], target)
        return getattr(target, node.attr)

    def _eval_joinedstr(self, node: ast.JoinedStr) -> str:
        parts: list[str] = []
        length = 0
        for value in node.values:
            part = str(self._eval(value))
            length += len(part)
            if length > MAX_SIZE:
                raise _too_long()
            parts.append(part)
        return "".join(parts)

    def _eval_formattedvalue(self, node: ast.FormattedValue) -> Any:
        if node.format_spec is not None:
            raise FeatureNotAvailable("format specs in f-strings are not available")
        return self._eval(node.value)


_SYNTAX = (
    ast.Expr,
    ast.BoolOp,
    ast.BinOp,
    ast.UnaryOp,
    ast.Compare,
    ast.IfExp,
    ast.Call,
    ast.keyword,
    ast.Attribute,
    ast.Subscript,
    ast.Slice,
    ast.Name,
    ast.Constant,
    ast.List,
    ast.Tuple,
    ast.Dict,
    ast.Set,
    ast.ListComp,
    ast.GeneratorExp,
    ast.DictComp,
    ast.comprehension,
    ast.JoinedStr,
    ast.FormattedValue,
    ast.expr_context,
    ast.boolop,
)
"""The syntax of the language (operators apart: :data:`OPERATORS`)."""

_SPOKEN: Mapping[type[ast.AST], str] = {
    ast.Lambda: "lambda",
    ast.NamedExpr: "':='",
    ast.SetComp: "a set comprehension",
    ast.Starred: "'*' unpacking",
}


@dataclass(frozen=True, slots=True)
class Inspection:
    """What :func:`examine` found in one expression."""

    tree: ast.Expr | None
    """The parsed expression; None when it cannot be parsed."""
    problems: tuple[str, ...]
    """Why the expression is refused; empty when it is not."""
    fields: tuple[str, ...] = ()
    """Every ``object.field`` it reads (``handoff.at`` included), for the catalogue's check."""


def examine(text: str, objects: Collection[str]) -> Inspection:
    """``text`` parsed and checked against the language and its bounds (see the module).

    ``objects`` are the names read as ``object.field``. The problems are whole sentences for
    the file's report; fields are not looked up here.
    """
    if len(text) > MAX_LENGTH:
        return Inspection(
            None, (f"expression of {len(text):,} characters; at most {MAX_LENGTH:,}",)
        )
    try:
        body = ast.parse(text.strip()).body
    except SyntaxError as exc:
        return Inspection(None, (f"expression syntax: {exc.msg}",))
    except RecursionError:  # Python's own parser, on deep nesting
        return Inspection(None, (_too_deep(),))
    if len(body) != 1 or not isinstance(body[0], ast.Expr):
        return Inspection(None, ("write one expression, not statements",))
    tree = body[0]
    if _depth(tree) > MAX_DEPTH:
        return Inspection(tree, (_too_deep(),))
    problems = _syntax_problems(tree)
    fields, name_problems = _names(tree, objects)
    problems += name_problems
    if not problems:  # an unknown method would be reported twice
        problems += _record_free_problems(tree)
    return Inspection(tree, tuple(dict.fromkeys(problems)), tuple(fields))


def _too_deep() -> str:
    return f"expression nested more than {MAX_DEPTH} levels deep"


def _depth(tree: ast.AST) -> int:
    deepest = 0
    todo = [(tree, 1)]
    while todo and deepest <= MAX_DEPTH:
        node, depth = todo.pop()
        deepest = max(deepest, depth)
        todo.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def _syntax_problems(tree: ast.AST) -> list[str]:
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.operator | ast.unaryop | ast.cmpop):
            if type(node) not in OPERATORS:
                problems.append(f"operator {type(node).__name__} is not available")
        elif isinstance(node, ast.expr) and not isinstance(node, _SYNTAX):
            spoken = _SPOKEN.get(type(node), type(node).__name__)
            problems.append(f"{spoken} is not available in expressions")
        elif isinstance(node, ast.FormattedValue) and node.format_spec is not None:
            problems.append("format specs in f-strings ({value:spec}) are not available")
    return problems


def _names(tree: ast.AST, objects: Collection[str]) -> tuple[list[str], list[str]]:
    """The ``object.field`` read and the problems with names and methods."""
    bound = {
        n.id
        for c in ast.walk(tree)
        if isinstance(c, ast.comprehension)
        for n in ast.walk(c.target)
        if isinstance(n, ast.Name)
    }
    values = {*FUNCTIONS, "now"}
    problems = [
        f"comprehension variable {name!r} hides a name; choose another"
        for name in sorted(bound & (values | {"handoff", *objects}))
    ]
    fields: list[str] = []
    record_names: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        if isinstance(node.value, ast.Name) and node.value.id not in bound | values:
            fields.append(f"{node.value.id}.{node.attr}")
            record_names.add(id(node.value))
        elif node.attr not in ALL_METHODS:
            problems.append(f"'.{node.attr}' is not available in expressions")
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and id(node) not in record_names:
            if node.id not in bound | values:
                problems.append(f"unknown name {node.id!r}; write object.field")
    return fields, problems


def _record_free_problems(tree: ast.Expr) -> list[str]:
    """Each largest part that reads no record, computed now: one that fails always will."""
    problems = []
    evaluator = BoundedEvaluator({})
    todo: list[ast.AST] = [tree.value]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.expr) and all(
            n.id in FUNCTIONS for n in ast.walk(node) if isinstance(n, ast.Name)
        ):
            shown = ast.unparse(node)
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            try:
                evaluator.eval(shown, previously_parsed=node)
            except TooCostly as exc:
                problems.append(f"{shown} is too costly: {exc}")
            except EXPRESSION_ERRORS as exc:
                problems.append(f"{shown} always fails: {type(exc).__name__}: {exc}")
        else:
            todo.extend(ast.iter_child_nodes(node))
    return problems
