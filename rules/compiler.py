"""Compiling a rulebook into Python: one generated function per boundary, built once per load.

:meth:`Rulebook.evaluate <rules.engine.Rulebook.evaluate>` is the hot path of the service. The
interpreted plan calls each check's ``evaluate`` through a tuple of bound methods, and every
broken check formats its reason, which a verdict never shows (it keeps the rule's violation).
Here each boundary's rule sets become the source of one function (as ``fastjsonschema`` does for
JSON Schema) that reads each record once, tests the common checks inline (``required``,
``length``, ``pattern``, ``one_of``, ``related``, ``all``, ``any``, ``not``), calls any other
check's ``evaluate``, and only asks *whether* a check is broken, never why.

The verdict is the interpreted one, to the bit: rules are visited in the same order, weights are
added in the same order (the same floats), a value a check cannot read (ValueError, TypeError,
OverflowError) breaks the rule and makes a ``when`` not hold, exactly as in
:mod:`rules.engine`; ``tests/rules/test_rules_compiled.py`` compares both over generated
handoffs. ``rules explain`` keeps the interpreted path, which says why.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from rules.checks import Check
from rules.checks.fields import Length, OneOf, Pattern, Required, char_length
from rules.checks.logic import All, AnyOf, Not
from rules.checks.records import ArtifactAttached, Related
from rules.checks.times import DateOrder, DateWindow, Sla
from rules.schema import RuleSet
from rules.values import NOW, FieldRef, InstantRef, is_empty, same_value, to_timestamp
from tasuki.calendar import BusinessCalendar
from tasuki.verdicts import HandoffContext, Outcome, Severity, Verdict

Judge = Callable[[HandoffContext, BusinessCalendar], Verdict]
"""A compiled boundary: the verdict for one handoff."""

UNREADABLE = (ValueError, TypeError, OverflowError)
"""What a check raises on a value it cannot read: the rule is broken, a ``when`` does not hold."""

PASSED = Verdict(Outcome.PASSED, 100, ())

_UNSET = object()
"""An instant not read yet in this call."""


def _one_of(value: Any, values: tuple[Any, ...], optional: bool) -> bool:
    """True when ``one_of`` is broken (as :meth:`OneOf.evaluate` decides)."""
    if is_empty(value):
        return not optional
    return not any(same_value(value, allowed) for allowed in values)


class Source:
    """The source of one boundary's function being written, and the names it uses."""

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {
            "_UNREADABLE": UNREADABLE,
            "_PASSED": PASSED,
            "_Verdict": Verdict,
            "_FAILED": Outcome.FAILED,
            "_WARNED": Outcome.WARNED,
            "_is_empty": is_empty,
            "_char_len": char_length,
            "_one_of": _one_of,
            "_ts": to_timestamp,
            "_UNSET": _UNSET,
        }
        self.objects: dict[str, str] = {}
        """Local holding each object's record, by logical object."""
        self.instants: dict[tuple[str, str, str], str] = {}
        """Local holding each instant field once read, by (object, field, record local)."""
        self.known: str | None = None
        """The handed-over record's object, where the rule set being written fixes it."""
        self._count = 0

    def name(self, hint: str) -> str:
        """A fresh local or global name."""
        self._count += 1
        return f"_{hint}{self._count}"

    def bind(self, value: Any, hint: str = "k") -> str:
        """A global name the function reads ``value`` by."""
        name = self.name(hint)
        self.namespace[name] = value
        return name

    def record(self, obj: str) -> str:
        """An expression for the record of ``obj`` (the handed-over one or a related one)."""
        if obj == self.known:
            return "record"
        local = self.objects.get(obj)
        if local is None:
            local = self.objects[obj] = self.name("r")
        return local

    def value(self, ref: FieldRef) -> str:
        """An expression for the value of ``ref`` (None when it or its record is absent)."""
        rec = self.record(ref.object)
        if rec == "record":
            return f"record.get({ref.field!r})"
        return f"({rec}.get({ref.field!r}) if {rec} is not None else None)"

    def instant(self, ref: InstantRef) -> str:
        """An expression for ``ref`` as epoch seconds (None when empty; ValueError when
        unreadable), as :meth:`InstantRef.ts` reads it. A field is read once per handoff
        (several time checks often name the same one); one it cannot read raises each time."""
        if ref.field is None:
            return "now" if ref.name == NOW else "handed"
        key = (ref.field.object, ref.field.field, self.record(ref.field.object))
        local = self.instants.get(key)
        if local is None:
            local = self.instants[key] = self.name("i")
        read = f"_ts({self.value(ref.field)}, calendar)"
        return f"({local} if {local} is not _UNSET else ({local} := {read}))"

    def empty(self, v: str) -> str:
        """An expression true when the local ``v`` is empty (:func:`rules.values.is_empty`)."""
        return f"((not {v} or {v}.isspace()) if {v}.__class__ is str else _is_empty({v}))"


def broken(check: Check, code: Source) -> str:
    """A Python expression true when ``check`` is broken; it may raise what the check raises."""
    emit = _EMITTERS.get(type(check))
    if emit is not None:
        return emit(check, code)
    return f"({code.bind(check.evaluate, 'c')}(ctx, calendar) is not None)"


def _required(check: Check, code: Source) -> str:
    assert isinstance(check, Required)
    v = code.name("v")
    return f"(({v} := {code.value(check.field)}) is None or {code.empty(v)})"


def _length(check: Check, code: Source) -> str:
    assert isinstance(check, Length)
    v, s, n = code.name("v"), code.name("s"), code.name("n")
    when_empty = "False" if check.optional_ or not check.min else "True"
    bounds = []
    if check.min is not None:
        bounds.append(f"{n} < {check.min!r}")
    if check.max is not None:
        bounds.append(f"{n} > {check.max!r}")
    too = " or ".join(bounds) or "False"
    # A str: stripped once, counted as len() when ASCII, else in NFC characters, as
    # Length.evaluate counts; anything else non-empty is counted as its str().
    return (
        f"(({when_empty}) if (({v} := {code.value(check.field)}) is None or {code.empty(v)}) else "
        f"(({n} := (len({s}) if ({s} := {v}.strip()).isascii() else _char_len({s})) "
        f"if {v}.__class__ is str else _char_len(str({v}))) is not None and ({too})))"
    )


def _pattern(check: Check, code: Source) -> str:
    assert isinstance(check, Pattern)
    v = code.name("v")
    search = code.bind(check.regex.search, "search")
    when_empty = "False" if check.optional_ else "True"
    return (
        f"(({when_empty}) if ({v} := {code.value(check.field)}) is None or {code.empty(v)} else "
        f"{search}({v} if isinstance({v}, str) else str({v})) is None)"
    )


def _one_of_source(check: Check, code: Source) -> str:
    assert isinstance(check, OneOf)
    values = code.bind(check.values, "values")
    slow = f"_one_of({{v}}, {values}, {check.optional_!r})"
    v = code.name("v")
    kinds = {type(x) for x in check.values}
    if kinds == {str}:
        # A text among texts: same_value is plain equality; a blank one is empty.
        texts = code.bind(frozenset(check.values), "texts")
        blank = not check.optional_
        fast = f"(({v} not in {texts}) if {v} and not {v}.isspace() else {blank!r})"
        cls = "str"
    elif kinds == {bool}:
        fast = f"({v} not in {values})"  # a boolean matches only the same boolean
        cls = "bool"
    else:
        return slow.format(v=code.value(check.field))
    return (
        f"({fast} if ({v} := {code.value(check.field)}).__class__ is {cls} else {slow.format(v=v)})"
    )


def _related(check: Check, code: Source) -> str:
    assert isinstance(check, Related)
    obj = check.object
    missing = f"(obj != {obj!r} and not related.get({obj!r}))"
    if check.require is None:
        return missing
    return f"({missing} or {broken(check.require, code)})"


def _artifact(check: Check, code: Source) -> str:
    assert isinstance(check, ArtifactAttached)
    return f"(not {code.bind(check.holds, 'holds')}(ctx, calendar))"


def _sla(check: Check, code: Source) -> str:
    assert isinstance(check, Sla)
    begun, done = code.name("t"), code.name("t")
    exceeded = code.bind(check.within.exceeded, "exceeded")
    return (
        f"(({begun} := {code.instant(check.start)}) is not None and {exceeded}(calendar, {begun}, "
        f"now if ({done} := {code.instant(check.end)}) is None else {done}))"
    )


def _date_order(check: Check, code: Source) -> str:
    assert isinstance(check, DateOrder)
    a, b = code.name("t"), code.name("t")
    first, then = (a, b)
    if check.by_day:
        first, then = f"calendar.local_day({a})", f"calendar.local_day({b})"
    bad = f"{then} <= {first}" if check.strict else f"{then} < {first}"
    return (
        f"(({a} := {code.instant(check.first)}) is None "
        f"or ({b} := {code.instant(check.then)}) is None or {bad})"
    )


def _date_window(check: Check, code: Source) -> str:
    assert isinstance(check, DateWindow)
    v, o = code.name("t"), code.name("t")
    tests = [
        f"({v} := {code.instant(check.field)}) is None",
        f"({o} := {code.instant(check.start)}) is None",
    ]
    if check.min is None:
        tests.append(f"{v} < {o}")
    else:
        lo = code.bind(check.min, "duration")
        tests.append(f"{lo}.elapsed(calendar, {o}, {v}) < {lo}.seconds(calendar)")
    if check.max is not None:
        tests.append(f"{code.bind(check.max.exceeded, 'exceeded')}(calendar, {o}, {v})")
    return "(" + " or ".join(tests) + ")"


def _all(check: Check, code: Source) -> str:
    assert isinstance(check, All)
    # All.evaluate runs every check; broken when any is, and an unreadable value anywhere
    # raises: stopping at the first broken one gives the same answer.
    return "(" + " or ".join(broken(c, code) for c in check.of) + ")"


def _any(check: Check, code: Source) -> str:
    assert isinstance(check, AnyOf)
    return "(" + " and ".join(broken(c, code) for c in check.of) + ")"


def _not(check: Check, code: Source) -> str:
    assert isinstance(check, Not)
    return f"(not {broken(check.of, code)})"


_EMITTERS: dict[type[Check], Callable[[Check, Source], str]] = {
    Required: _required,
    Length: _length,
    Pattern: _pattern,
    OneOf: _one_of_source,
    Related: _related,
    ArtifactAttached: _artifact,
    Sla: _sla,
    DateOrder: _date_order,
    DateWindow: _date_window,
    All: _all,
    AnyOf: _any,
    Not: _not,
}
"""Check types tested inline; every other type is called through its ``evaluate``."""


def _holds(check: Check, code: Source, lines: list[str], pad: str) -> str:
    """Write the test of a ``when`` (an unreadable value: it does not hold); its local."""
    h = code.name("h")
    lines += [
        f"{pad}try:",
        f"{pad}    {h} = not {broken(check, code)}",
        f"{pad}except _UNREADABLE:",
        f"{pad}    {h} = False",
    ]
    return h


def _rule_set(rs: RuleSet, code: Source, lines: list[str]) -> None:
    pad = "    "
    code.known = rs.object
    if rs.object is not None:
        lines.append(f"{pad}if obj == {rs.object!r}:")
        pad += "    "
    if rs.when is not None:
        h = _holds(rs.when, code, lines, pad)
        lines.append(f"{pad}if {h}:")
        pad += "    "
    lines.append(f"{pad}pass")
    for rule in rs.rules:
        inner = pad
        if rule.when is not None:
            h = _holds(rule.when, code, lines, pad)
            lines.append(f"{pad}if {h}:")
            inner += "    "
        weight = repr(float(rule.weight))
        b = code.name("b")
        violation = code.bind(rule.violation, "violation")
        lines += [
            f"{inner}total += {weight}",
            f"{inner}try:",
            f"{inner}    {b} = {broken(rule.check, code)}",
            f"{inner}except _UNREADABLE:",
            f"{inner}    {b} = True",
            f"{inner}if {b}:",
            f"{inner}    lost += {weight}",
            f"{inner}    violations.append({violation})",
        ]
        if rule.severity is Severity.ERROR:
            lines.append(f"{inner}    failed = True")
    code.known = None


def compile_boundary(rule_sets: Sequence[RuleSet], name: str = "judge") -> Judge:
    """The rule sets of one boundary, compiled into one function giving the verdict."""
    code = Source()
    body: list[str] = []
    for rs in rule_sets:
        _rule_set(rs, code, body)
    head = [
        f"def {name}(ctx, calendar):",
        "    record = ctx.record",
        "    related = ctx.related",
        "    obj = ctx.object",
        "    handed = ctx.handed_at.timestamp()",
        "    now = ctx.now.timestamp()",
        *(
            f"    {local} = record if obj == {o!r} else related.get({o!r})"
            for o, local in code.objects.items()
        ),
        *(f"    {local} = _UNSET" for local in code.instants.values()),
        "    total = 0.0",
        "    lost = 0.0",
        "    violations = []",
        "    failed = False",
    ]
    tail = [
        "    if not total or not violations:",
        "        return _PASSED",
        "    score = int(100 * (total - lost) / total)",
        "    return _Verdict(_FAILED if failed else _WARNED, score, tuple(violations))",
    ]
    source = "\n".join(head + body + tail) + "\n"
    namespace = dict(code.namespace)
    exec(compile(source, f"<rules {name}>", "exec"), namespace)  # noqa: S102 - our own source
    judge: Judge = namespace[name]
    judge.__doc__ = source  # what ran, for whoever debugs a verdict
    return judge


def identifier(boundary: str) -> str:
    """A Python name for the function of ``boundary`` (``MK→IS`` → ``judge_MK_IS``)."""
    return "judge_" + re.sub(r"\W", "_", boundary.encode("ascii", "replace").decode())
