"""YAML read with the place of every value, so any later check can point at file, line, column.

Parsing is kept apart from validation (as soda-core does): :func:`load` returns plain data and a
:class:`Located` index; validators turn their findings into :class:`~tasuki.errors.Problem` with
:meth:`Located.problem`, and pydantic's errors go through :func:`problems_from_validation`.

A file cannot make the reader hang or run out of memory: aliases may stand for at most
:data:`MAX_ALIASED` values (a "billion laughs" file is a few lines of aliases of aliases) and
never for a value that contains them; nesting stops at :data:`MAX_NESTING` levels. Either is a
problem at the alias's or the value's place.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import yaml
from pydantic import ValidationError

from tasuki.errors import ConfigError, Problem

Path_ = tuple[str | int, ...]
T = TypeVar("T")

MAX_ALIASED = 10_000
"""Values the aliases (``*name``) of one document may stand for, counted as if written out:
plenty for shared blocks of settings, far too few for an alias bomb."""
MAX_NESTING = 100
"""Levels of mappings and lists inside one another; reading recurses once per level."""


class _TooLarge(Exception):
    """The document would grow beyond the bounds above, at this event."""

    def __init__(self, event: yaml.Event, message: str) -> None:
        super().__init__(message)
        mark = event.start_mark
        self.line, self.column = (mark.line + 1, mark.column + 1) if mark else (1, 1)


class _BoundedLoader(yaml.SafeLoader):
    """The safe loader, measuring what each alias stands for before it is used."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.aliased = 0
        self.nesting = 0
        self.sizes: dict[int, int] = {}
        """Values under each node already measured, aliases written out (by the node's id)."""

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent) and event.anchor in self.anchors:
            node = self.anchors[event.anchor]
            if isinstance(node, yaml.CollectionNode) and node.end_mark is None:
                raise _TooLarge(event, f"alias *{event.anchor} inside its own value")
            self.aliased += self._size(node)
            if self.aliased > MAX_ALIASED:
                raise _TooLarge(
                    event, f"aliases stand for more than {MAX_ALIASED:,} values; write them out"
                )
        if self.nesting >= MAX_NESTING:
            raise _TooLarge(event, f"nested more than {MAX_NESTING} levels deep")
        self.nesting += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.nesting -= 1

    def _size(self, node: yaml.Node) -> int:
        known = self.sizes.get(id(node))
        if known is None:
            if isinstance(node, yaml.MappingNode):
                known = 1 + sum(self._size(k) + self._size(v) for k, v in node.value)
            elif isinstance(node, yaml.SequenceNode):
                known = 1 + sum(self._size(item) for item in node.value)
            else:
                known = 1
            self.sizes[id(node)] = known
        return known


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
    loader = _BoundedLoader(text)
    try:
        node = loader.get_single_node()
    except _TooLarge as exc:
        raise ConfigError([Problem(file, exc.line, exc.column, str(exc))]) from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise ConfigError([Problem(file, line, col, f"YAML syntax: {exc.problem}")]) from exc
    finally:
        loader.dispose()
    out.data = {} if node is None else _convert(node, (), out, problems)
    if problems:
        raise ConfigError(problems)
    return out


Stamps = tuple[tuple[str, int, int], ...]
"""(path, modification time in ns, size) of each watched file; (-1, -1) for a missing one."""


def file_stamps(paths: Sequence[Path]) -> Stamps:
    """Size and modification time of each file: a ``stat`` each, no read."""
    out = []
    for p in paths:
        try:
            st = os.stat(p)
        except OSError:
            out.append((str(p), -1, -1))
        else:
            out.append((str(p), st.st_mtime_ns, st.st_size))
    return tuple(out)


class KeptReads:
    """Values read from files, each kept with the stamps its files had before it was read, and
    read again when one moved (a ``stat`` per file, no read, while nothing did).

    Held by the object the files belong to (the :class:`~tasuki.settings.Settings` that name
    them), never by a module: what was read is found where it is used and ends with its owner."""

    def __init__(self) -> None:
        self._kept: dict[str, tuple[Stamps, object]] = {}

    def get(self, name: str, paths: Sequence[Path], read: Callable[[], T]) -> T:
        """``read()``'s value for ``name``, from the files at ``paths``, read again only when a
        file's size or modification time changed since it was last read."""
        stamps = file_stamps(paths)  # before reading: a write during the read shows next time
        kept = self._kept.get(name)
        if kept is not None and kept[0] == stamps:
            return cast(T, kept[1])
        value = read()
        self._kept[name] = (stamps, value)
        return value


def load(path: str | Path) -> Located:
    """Read and parse the YAML file at ``path``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([Problem(str(p), 1, 1, f"cannot read: {exc.strerror}")]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([Problem(str(p), 1, 1, "not UTF-8 text")]) from exc
    return loads(text, str(p))


def load_all(paths: Sequence[str | Path], problems: list[Problem]) -> list[Located]:
    """Every file of ``paths`` that can be read and parsed, in order. The problems of the others
    go into ``problems``, so one run reports the mistakes of every file (each loader of rule,
    KPI and notification files then adds its own checks to the same list)."""
    docs = []
    for path in paths:
        try:
            docs.append(load(path))
        except ConfigError as exc:
            problems.extend(exc.problems)
    return docs


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
