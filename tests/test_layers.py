"""The package's layers go one way: every import (module level and inside functions) reads
from the module's own layer or a lower one, and no imports form a cycle.

import-linter's graph (grimp) sees only the folder of the root package, not the packages
that setuptools maps into it (``backends/`` → ``diffinterface.backends``,
``testsuite/`` → ``diffinterface.testsuite``), so this test reads the imports itself. The
one upward reference the design allows is loading a backend's module by its name string
(``importlib.import_module``), which is not an import statement.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"diffinterface": "diffinterface", "backends": "diffinterface.backends",
           "testsuite": "diffinterface.testsuite"}  # fmt: skip

#: bottom to top; a module may import from its own layer and those below it
LAYERS: list[tuple[str, ...]] = [
    ("diffinterface._errors",),
    ("diffinterface._arrays",),
    ("diffinterface._conversions",),
    (
        "diffinterface._trees",
        "diffinterface._contexts",
        "diffinterface._diffcache",
        "diffinterface._namespace",
    ),
    ("diffinterface._backend_registry",),
    ("diffinterface._backend_types",),
    ("diffinterface._adapter", "diffinterface._derived"),
    (
        "diffinterface._functions",
        "diffinterface._aux",
        "diffinterface._arguments",
        "diffinterface._tangents",
        "diffinterface._results",
        "diffinterface._mismatch",
        "diffinterface._kernels",
        "diffinterface._host_join",
        "diffinterface._preparation",
        "diffinterface._prepare",
        "diffinterface._compose",
    ),
    ("diffinterface._operators",),
    ("diffinterface._inner_calls",),
    ("diffinterface._differentiate_with",),
    (
        "diffinterface._bridges",
        "diffinterface._second_order",
        "diffinterface._sparse",
        "diffinterface._distributed",
        "diffinterface.backends",
    ),
    ("diffinterface",),
    ("diffinterface.testsuite",),
]


def _modules() -> dict[str, Path]:
    found = {}
    for folder, package in FOLDERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = [package, *path.relative_to(ROOT / folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path) -> set[str]:
    """Every module of the package that ``name`` imports, wherever in the file."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    return {m for m in found if m.split(".")[0] == "diffinterface"}


MODULES = _modules()
GRAPH = {name: _imports(name, path) & set(MODULES) for name, path in MODULES.items()}


def _layer(module: str) -> int:
    """The index of the layer of ``module``: the longest prefix listed in LAYERS."""
    best, found = -1, None
    for i, members in enumerate(LAYERS):
        for prefix in members:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, found = len(prefix), i
    assert found is not None, f"{module} is in no layer: add it to LAYERS"
    return found


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_down(module: str) -> None:
    upward = sorted(m for m in GRAPH[module] if _layer(m) > _layer(module))
    assert not upward, f"{module} imports from higher layers: {upward}"


def test_no_import_cycles() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_stay_small(module: str) -> None:
    lines = len(MODULES[module].read_text().splitlines())
    assert lines <= 330, f"{module} has {lines} lines: a module of that size is usually two ideas"
