"""Dependencies point one way: the core package ``tasuki`` never imports the packages built on
it (``rules``, ``connectors``, ``webhooks``, ``worker``), and those engines import only the core.

The layers, bottom up:

1. **core**: every module of ``tasuki`` except the application modules below: the store, the
   settings, the calendar, the CRM and verdict types (:mod:`tasuki.crm`, :mod:`tasuki.verdicts`),
   handoffs, judging, KPIs, sync, write-back, and the runtime jobs find in a ContextVar
   (:mod:`tasuki.runtime`).
2. **engines**: ``rules`` (the rule language) and ``connectors`` (one module per CRM), each
   depending on the core only.
3. **application**: what composes engines and core into something a person runs: the composition
   root :mod:`tasuki.startup` (the one place a connector and a rulebook reader are chosen and a
   process's :class:`~tasuki.runtime.Runtime` is assembled and installed), the command
   line and its start-up checks and set-up (:mod:`tasuki.preflight`, :mod:`tasuki.probes`,
   :mod:`tasuki.configure`, :mod:`tasuki.up`), the web console, the demo, the handoff meeting
   and notifications (which read the rulebook's SLA rules), ``rules.cli``, ``webhooks`` and
   ``worker``.

Every ``import`` counts, including those inside functions: an import deferred into a function
body is still a dependency. Imports under ``if TYPE_CHECKING:`` do not: they never run, and
mypy checks them (as import-linter's ``exclude_type_checking_imports``). That is how the core
:mod:`tasuki.runtime` names the rule engine's ``Rulebook`` its reader returns.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

APPLICATION = (
    "tasuki.startup",
    "tasuki.__main__",
    "tasuki.cli",
    "tasuki.commands",
    "tasuki.kpis.cli",
    "tasuki.preflight",
    "tasuki.probes",
    "tasuki.configure",
    "tasuki.up",
    "tasuki.demo",
    "tasuki.meeting",
    "tasuki.console",
    "tasuki.notify",
    "tasuki.recordings.cli",
    "rules.cli",
    "webhooks",
    "worker",
)
ENGINES = ("rules", "connectors")
TYPE_CHECKING_TESTS = {"TYPE_CHECKING", "typing.TYPE_CHECKING"}


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def layer(module: str) -> int:
    """0 core, 1 engines, 2 application; -1 for modules outside tasuki."""
    if _within(module, APPLICATION):
        return 2
    if _within(module, ENGINES):
        return 1
    if _within(module, ("tasuki",)):
        return 0
    return -1


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, module: str) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If)
        and ast.unparse(node.test) in {"TYPE_CHECKING", "typing.TYPE_CHECKING"}
        for stmt in node.body
        for inner in ast.walk(stmt)
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def _sources() -> list[Path]:
    paths = [ROOT / "worker.py"]
    for package in ("tasuki", "rules", "connectors", "webhooks"):
        paths += sorted((ROOT / package).rglob("*.py"))
    return paths


def upward_imports() -> list[str]:
    """``file:line: a imports b`` for every import of a higher layer's module."""
    bad = []
    for path in _sources():
        module = _module_name(path)
        own = layer(module)
        for line, imported in _imports(path, module):
            target = layer(imported)
            if target > own and not (own == 1 and imported.split(".")[0] == module.split(".")[0]):
                rel = path.relative_to(ROOT)
                bad.append(f"{rel}:{line}: {module} (layer {own}) imports {imported}")
            elif own == 1 and target == 1 and imported.split(".")[0] != module.split(".")[0]:
                rel = path.relative_to(ROOT)
                bad.append(f"{rel}:{line}: engine {module} imports the other engine {imported}")
    return sorted(set(bad))


def test_no_module_imports_a_higher_layer() -> None:
    assert upward_imports() == []


def test_the_layers_are_what_the_docstring_says() -> None:
    assert layer("tasuki.verdicts") == 0
    assert layer("tasuki.crm") == 0
    assert layer("tasuki.kpis.computation") == 0
    assert layer("rules.engine") == 1
    assert layer("connectors.salesforce") == 1
    assert layer("rules.cli") == 2
    assert layer("tasuki.runtime") == 0
    assert layer("tasuki.startup") == 2
    assert layer("webhooks.intake") == 2
    assert layer("worker") == 2
    assert layer("sqlalchemy.orm") == -1


def test_the_check_sees_imports_inside_functions_not_those_for_type_checking(
    tmp_path: Path,
) -> None:
    source = tmp_path / "probe.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from rules import Rulebook\n"
        "def f():\n    from rules.engine import Rulebook\n    import worker\n"
    )
    assert _imports(source, "tasuki.probe") == [
        (1, "typing"),
        (1, "typing.TYPE_CHECKING"),
        (5, "rules.engine"),
        (5, "rules.engine.Rulebook"),
        (6, "worker"),
    ]


def test_no_test_imports_a_conftest() -> None:
    """What tests share besides fixtures lives in support modules; conftest holds fixtures."""
    found = [
        f"{path.relative_to(ROOT)}:{line}: {name}"
        for path in sorted((ROOT / "tests").rglob("*.py"))
        for line, name in _imports(path, _module_name(path))
        if name.split(".")[-1] == "conftest" or ".conftest." in name
    ]
    assert found == []


def unexplained_function_imports(paths: list[Path] | None = None) -> list[str]:
    """``file:line: statement`` for every import inside a function without a ``# lazy:`` reason
    (on its line or in the comment just above it). Importing at the top shows a module's
    dependencies where they are read; deferring one is allowed for a reason worth writing down:
    a heavy stack loaded only when it is used (the console's, a CRM's client library)."""
    found = []
    for path in _sources() if paths is None else paths:
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        tree = ast.parse(text, str(path))
        typing_only = {
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and ast.unparse(node.test) in TYPE_CHECKING_TESTS
            for stmt in node.body
            for inner in ast.walk(stmt)
        }
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                if not isinstance(node, ast.Import | ast.ImportFrom) or id(node) in typing_only:
                    continue
                above = node.lineno - 2
                comments = [lines[node.lineno - 1]]
                while above >= 0 and lines[above].strip().startswith("#"):
                    comments.append(lines[above])
                    above -= 1
                if not any("# lazy:" in c for c in comments):
                    found.append(f"{path.name}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    return sorted(set(found))


def test_an_import_inside_a_function_says_why_it_is_deferred() -> None:
    assert unexplained_function_imports() == []


def test_the_lazy_check_accepts_a_reason_on_the_line_or_above(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "def f():\n    import json  # lazy: a reason\n"
        "def g():\n    # lazy: a reason\n    # on two lines\n    import csv\n"
        "def h():\n    # why not\n    import os\n"
        "if TYPE_CHECKING:\n    def i():\n        import re\n"
    )
    assert unexplained_function_imports([probe]) == ["probe.py:9: import os"]
