"""No module keeps state that changes: the one piece of process state is the runtime's ContextVar.

A module-level dict, list or set that some function fills is a cache or a registry nobody can
see at the call; a job's result must depend on its runtime and arguments only. So, after every
module of the core, the engines and the application is imported:

- every module-level name bound to a mutable container is on :data:`CONSTANTS` below, each a
  table written out in the source and never changed (new ones: prefer ``MappingProxyType``,
  ``tuple`` or ``frozenset``, which need no entry here);
- the only ContextVars are the runtime's and the log context's;
- no function rebinds a module's name (``global``);
- ``functools.cache`` only makes a constant lazily: the function it wraps takes no argument.
"""

from __future__ import annotations

import ast
import collections
import importlib
from contextvars import ContextVar
from pathlib import Path
from types import ModuleType

from tests.test_layers import ROOT, _module_name, _sources

MUTABLE = (dict, list, set, bytearray, collections.deque)

CONSTANTS = frozenset(
    {
        # Tables written out in the source, read and never changed.
        "connectors.hubspot.STAGE_PROPERTIES",
        "connectors.hubspot_api.TIERS",
        "connectors.hubspot_changes.LASTMOD_PROPERTIES",
        "connectors.salesforce.HISTORY_FIELD_NAMES",
        "connectors.salesforce_records.HISTORY_FIELD_NAMES",
        "connectors.salesforce_records.HISTORY_OBJECTS",
        "rules.cli._OUTCOME_STYLE",
        "rules.cli._STATUS_STYLE",
        "rules.compiler._EMITTERS",
        "rules.expressions.DISALLOW_FUNCTIONS",
        "rules.expressions.FUNCTIONS",
        "rules.expressions.OPERATORS",
        "rules.expressions._MEASURED_TEXT_METHODS",
        "rules.expressions._SPOKEN",
        "tasuki.alarms.evaluation.FIGURES",
        "tasuki.alarms.evaluation.KEY",
        "tasuki.configure._OWN_FILES",
        "tasuki.demo.org.BANDS",
        "tasuki.demo.org.CRM_EXTRA_FIELDS",
        "tasuki.demo.org.INDUSTRIES",
        "tasuki.demo.org.INQUIRIES",
        "tasuki.demo.org.NOTES",
        "tasuki.demo.org.PEOPLE",
        "tasuki.demo.org.SOURCES",
        "tasuki.demo.org.TEAMS",
        "tasuki.durations._SHORT",
        "tasuki.durations._UNITS",
        "tasuki.errors._STATUS_TO_ERROR",
        "tasuki.kpis.engine._KIND_MONTHS",
        "tasuki.kpis.periods._SIZE",
        "tasuki.kpis.schema.DEPARTMENT_PAIRS",
        "tasuki.meeting.build._FIELDS",
        "tasuki.meeting.build._LABELS",
        "tasuki.meeting.escape._SLACK_LOOKALIKES",
        "tasuki.meeting.slack._CLOCK_ICONS",
        "tasuki.meeting.slack._OUTCOME_ICONS",
        "tasuki.messaging._PARTS",
        "tasuki.messaging._SCHEMES",
        "tasuki.notify.event_types.EVENTS",
        "tasuki.notify.events.FINDERS",
        "tasuki.notify.ops_events.FINDERS",
        "tasuki.notify.schema.EVENTS",
        "tasuki.notify.sweep.FINDERS",
        "tasuki.notify.sweep.OPS_FINDERS",
        "tasuki.notify.sweep.WORK_FINDERS",
        "tasuki.preflight.FILE_CHECKS",
        "tasuki.preflight.RECEIVER_SECRETS",
        "tasuki.providers.RECEIVER_SECRETS",
        "tasuki.providers.TIERS",
        "tasuki.store.models.NAMING",
        "webhooks.hubspot.DECODED",
        "webhooks.hubspot.OBJECTS",
        "webhooks.hubspot.OBJECT_TYPE_IDS",
        "webhooks.miitel.RECEIVER_SECRETS",
        "webhooks.zoom.RECEIVER_SECRETS",
        # The check types by their YAML name (soda-core's registry): filled by the decorator of
        # each check class as its module is imported, then only read.
        "rules.checks.CHECK_TYPES",
        "rules.checks.base.CHECK_TYPES",
    }
)
"""``module.NAME`` of every module-level mutable container that is a constant."""

TEST_HOOKS = frozenset({"tasuki.testhooks._passages"})
"""Counted only while a test names a crash point (``TASUKI_TEST_PAUSE_AT``): the n-th passage
of a point is per process by design; in production it stays empty."""

CONTEXT_VARS = frozenset({"tasuki.runtime._current", "tasuki.logs._context"})
"""The runtime jobs use; the fields each log line of this context carries (job id, delivery)."""


def _modules() -> list[ModuleType]:
    names = [_module_name(path) for path in _sources()]
    return [
        importlib.import_module(name)
        for name in names
        if ".migrations." not in name and not name.endswith("__main__")
    ]


def _module_level(kind: type | tuple[type, ...]) -> set[str]:
    return {
        f"{module.__name__}.{name}"
        for module in _modules()
        for name, value in vars(module).items()
        if isinstance(value, kind) and not name.startswith("__")
    }


def test_every_module_level_container_is_a_listed_constant() -> None:
    found, allowed = _module_level(MUTABLE), CONSTANTS | TEST_HOOKS
    assert sorted(found - allowed) == []  # new: make it immutable, or a runtime's part
    assert sorted(allowed - found) == []  # gone: take it off the list


def test_the_only_context_variables_are_the_runtime_and_the_log_context() -> None:
    assert _module_level(ContextVar) == CONTEXT_VARS


def _trees() -> list[tuple[Path, ast.Module]]:
    return [(p, ast.parse(p.read_text(encoding="utf-8"), str(p))) for p in _sources()]


def test_no_function_rebinds_a_module_name() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{node.lineno}: global {', '.join(node.names)}"
        for path, tree in _trees()
        for node in ast.walk(tree)
        if isinstance(node, ast.Global)
    ]
    assert found == []


def _is_cache(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return ast.unparse(target).split(".")[-1] in {"cache", "lru_cache"}


def test_a_cached_function_is_a_lazily_made_constant() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{node.lineno}: {node.name} takes arguments"
        for path, tree in _trees()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and any(_is_cache(d) for d in node.decorator_list)
        and (node.args.args or node.args.posonlyargs or node.args.kwonlyargs or node.args.vararg)
    ]
    assert found == []
