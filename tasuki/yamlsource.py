"""YAML read with the place of every value, so any later check can point at file, line, column.

Parsing is kept apart from validation (as soda-core does): :func:`load` returns plain data and a
:class:`Located` index; validators turn their findings into :class:`~tasuki.errors.Problem` with
:meth:`Located.problem`, and pydantic's errors go through :func:`problems_from_validation`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tasuki.errors import ConfigError, Problem

Path_ = tuple[str | int, ...]


@dataclass
class Located:
    """Plain data from one YAML document plus the (line, column) of each value, 1-based."""

    file: str
    data: Any
    marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def where(self, path: Sequence[str | int], *, key: bool = False) -> tuple[int, int]:
        """Line and column of ``path``, or of its nearest ancestor that has one."""
        p = tuple(path)
        while True:
            if key and p in self.key_marks:
                return self.key_marks[p]
            if p in self.marks:
                return self.marks[p]
            if not p:
                return (1, 1)
            p = p[:-1]

    def problem(self, path: Sequence[str | int], message: str, *, key: bool = False) -> Problem:
        """A :class:`Problem` at ``path`` in this file."""
        line, col = self.where(path, key=key)
        return Problem(self.file, line, col, message)


def _convert(node: yaml.Node, path: Path_, out: Located, problems: list[Problem]) -> Any:
    out.marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = (
                yaml.safe_load(yaml.serialize(key_node))
                if key_node.tag != "tag:yaml.org,2002:str"
                else key_node.value
            )
            key = str(key)
            if key in result:
                line, col = key_node.start_mark.line + 1, key_node.start_mark.column + 1
                problems.append(Problem(out.file, line, col, f"duplicate key {key!r}"))
            out.key_marks[path + (key,)] = (
                key_node.start_mark.line + 1,
                key_node.start_mark.column + 1,
            )
            result[key] = _convert(value_node, path + (key,), out, problems)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, path + (i,), out, problems) for i, item in enumerate(node.value)]
    if node.tag == "tag:yaml.org,2002:str":
        return node.value
    try:
        return yaml.safe_load(yaml.serialize(node))
    except (ValueError, yaml.YAMLError) as exc:
        line, col = out.marks[path]
        problems.append(Problem(out.file, line, col, f"invalid value {node.value!r}: {exc}"))
        return node.value


def loads(text: str, file: str) -> Located:
    """Parse ``text``; a syntax error or a duplicate key raises :class:`ConfigError`, placed."""
    out = Located(file=file, data=None)
    problems: list[Problem] = []
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise ConfigError([Problem(file, line, col, f"YAML syntax: {exc.problem}")]) from None
    out.data = {} if node is None else _convert(node, (), out, problems)
    if problems:
        raise ConfigError(problems)
    return out


def load(path: str | Path) -> Located:
    """Read and parse the YAML file at ``path``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([Problem(str(p), 1, 1, f"cannot read: {exc.strerror}")]) from None
    except UnicodeDecodeError:
        raise ConfigError([Problem(str(p), 1, 1, "not UTF-8 text")]) from None
    return loads(text, str(p))


def problems_from_validation(
    doc: Located, exc: ValidationError, prefix: Path_ = ()
) -> list[Problem]:
    """Each pydantic error as a :class:`Problem` at the place the offending value came from."""
    problems = []
    for err in exc.errors():
        loc = prefix + tuple(x for x in err["loc"] if isinstance(x, str | int))
        shown = ".".join(str(x) for x in loc) or "(top)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            problems.append(doc.problem(loc, f"{shown}: unknown setting", key=True))
        elif err["type"] == "missing":
            problems.append(doc.problem(loc[:-1], f"{shown}: required setting is missing"))
        else:
            problems.append(doc.problem(loc, f"{shown}: {msg}"))
    return problems
