"""Just enough SOQL for the Salesforce emulator: the query shapes tasuki's connector sends.

``SELECT f, ... FROM Obj [WHERE cond] [ORDER BY f [, f]] [LIMIT n]`` where ``cond`` combines
``field op value`` with AND, OR and parentheses; ``op`` is one of ``= != < <= > >= IN``; a value is
a quoted string (with SOQL's backslash escapes), a datetime or date literal, a number,
``true``/``false``/``null`` or a parenthesised list. Anything else is rejected with
``MALFORMED_QUERY``, as Salesforce would.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

Row = dict[str, Any]
Predicate = Callable[[Row], bool]

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>'(?:[^'\\]|\\.)*')
    | (?P<dt>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
    | (?P<date>\d{4}-\d{2}-\d{2})
    | (?P<num>-?\d+(?:\.\d+)?)
    | (?P<op><=|>=|!=|<>|=|<|>)
    | (?P<punct>[(),])
    | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)
_UNESCAPE = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}


class SoqlError(ValueError):
    """The query is not SOQL this emulator (or Salesforce) accepts."""


@dataclass
class Query:
    """A parsed SELECT."""

    fields: list[str]
    object: str
    where: Predicate | None = None
    order_by: list[str] = field(default_factory=list)
    limit: int | None = None
    count: bool = False
    """``SELECT COUNT() FROM ...``: only ``totalSize`` is answered."""


def parse_datetime(text: str) -> datetime:
    """A SOQL datetime literal or an API datetime string (``...000+0000``) as aware UTC."""
    text = text.replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", text):
        text = f"{text[:-2]}:{text[-2:]}"
    return datetime.fromisoformat(text).astimezone(UTC)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise SoqlError(f"unexpected token at: {text[pos : pos + 20]!r}")
        kind = m.lastgroup
        assert kind is not None
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise SoqlError("unexpected end of query")
        self.i += 1
        return tok

    def keyword(self, word: str) -> bool:
        tok = self.peek()
        if tok is not None and tok[0] == "word" and tok[1].upper() == word:
            self.i += 1
            return True
        return False

    def expect_punct(self, p: str) -> None:
        if self.take() != ("punct", p):
            raise SoqlError(f"expected {p!r}")

    def query(self) -> Query:
        if not self.keyword("SELECT"):
            raise SoqlError("expected SELECT")
        count = False
        if self.peek() is not None and self.peek()[1].upper() == "COUNT":  # type: ignore[index]
            self.take()
            self.expect_punct("(")
            self.expect_punct(")")
            fields: list[str] = []
            count = True
        else:
            fields = [self.take()[1]]
            while self.peek() == ("punct", ","):
                self.take()
                fields.append(self.take()[1])
        if not self.keyword("FROM"):
            raise SoqlError("expected FROM")
        q = Query(fields=fields, object=self.take()[1], count=count)
        if self.keyword("WHERE"):
            q.where = self.disjunction()
        if self.keyword("ORDER"):
            if not self.keyword("BY"):
                raise SoqlError("expected BY")
            q.order_by.append(self.take()[1])
            while self.peek() == ("punct", ","):
                self.take()
                q.order_by.append(self.take()[1])
        if self.keyword("LIMIT"):
            q.limit = int(self.take()[1])
        if self.peek() is not None:
            raise SoqlError(f"unexpected {self.peek()!r}")
        return q

    def disjunction(self) -> Predicate:
        parts = [self.conjunction()]
        while self.keyword("OR"):
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else (lambda row: any(p(row) for p in parts))

    def conjunction(self) -> Predicate:
        parts = [self.factor()]
        while self.keyword("AND"):
            parts.append(self.factor())
        return parts[0] if len(parts) == 1 else (lambda row: all(p(row) for p in parts))

    def factor(self) -> Predicate:
        if self.peek() == ("punct", "("):
            self.take()
            inner = self.disjunction()
            self.expect_punct(")")
            return inner
        kind, name = self.take()
        if kind != "word":
            raise SoqlError(f"expected a field, got {name!r}")
        if self.keyword("IN"):
            values = self.value_list()
            return lambda row: _norm(row.get(name)) in values
        if self.keyword("NOT"):
            if not self.keyword("IN"):
                raise SoqlError("expected IN")
            values = self.value_list()
            return lambda row: _norm(row.get(name)) not in values
        kind, op = self.take()
        if kind != "op":
            raise SoqlError(f"expected an operator, got {op!r}")
        value = self.value()
        return _compare(name, op, value)

    def value_list(self) -> list[Any]:
        self.expect_punct("(")
        values = [self.value()]
        while self.peek() == ("punct", ","):
            self.take()
            values.append(self.value())
        self.expect_punct(")")
        return values

    def value(self) -> Any:
        kind, text = self.take()
        if kind == "str":
            return re.sub(r"\\(.)", lambda m: _UNESCAPE.get(m.group(1), m.group(1)), text[1:-1])
        if kind == "dt":
            return parse_datetime(text)
        if kind == "date":
            return date.fromisoformat(text)
        if kind == "num":
            return float(text) if "." in text else int(text)
        if kind == "word" and text.lower() in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[text.lower()]
        raise SoqlError(f"expected a value, got {text!r}")


def _norm(value: Any) -> Any:
    if isinstance(value, str) and re.match(r"^\d{4}-\d{2}-\d{2}T", value):
        return parse_datetime(value)
    return value


def _compare(name: str, op: str, value: Any) -> Predicate:
    def check(row: Row) -> bool:
        have = _norm(row.get(name))
        if op == "=":
            return bool(have == value)
        if op in ("!=", "<>"):
            return bool(have != value)
        if have is None or value is None:
            return False
        if op == "<":
            return bool(have < value)
        if op == "<=":
            return bool(have <= value)
        if op == ">":
            return bool(have > value)
        return bool(have >= value)

    return check


def parse(text: str) -> Query:
    """Parse one SELECT; raises :class:`SoqlError` on anything unsupported."""
    return _Parser(text).query()


def sort_key(row: Row, order_by: list[str]) -> tuple[Any, ...]:
    """Sort key for ORDER BY (ascending, nulls first, as SOQL's default)."""
    return tuple((row.get(f) is not None, _norm(row.get(f)) or "") for f in order_by)
