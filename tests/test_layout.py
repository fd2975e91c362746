"""The layout states the dependencies: the contract imports nothing, shared packages never
import a service, services never import each other, and no module imports itself in a circle.

Every ``import`` in the tree is read (at any depth, so an import hidden in a function counts).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ("events", "configuration", "checks", "readmodel", "security", "runtime", "services")
SHARED = ("configuration", "checks", "readmodel", "security", "runtime")
#: Modules of ``services`` that are no service: the ``tocsin`` entry point, which registers
#: every service's commands, and the package itself (its version).
ENTRY = {"services.cli", "services"}


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, module: str) -> set[str]:
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base]) if base else ".".join(up)
            # ``from pkg import mod`` imports ``pkg.mod`` (the graph keeps the longest name
            # that is a module), ``from mod import symbol`` imports ``mod``.
            found.update(f"{base}.{a.name}" for a in node.names)
    return {name for name in found if name.split(".")[0] in PROJECT}


def _graph() -> dict[str, set[str]]:
    modules = {
        _module(p): p
        for top in PROJECT
        for p in (ROOT / top).rglob("*.py")
        if not p.name.startswith(("test_", "conftest"))
    }
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for target in _imports(path, name):
            # ``from a.b import c`` names a module or a symbol: keep the longest that is a module.
            while target not in modules and "." in target:
                target = target.rpartition(".")[0]
            if target in modules and target != name:
                graph[name].add(target)
        graph.setdefault(name, set())
    return dict(graph)


GRAPH = _graph()


def _service(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "services" or module in ENTRY:
        return None
    return parts[1]


def test_the_contract_imports_nothing_of_the_project() -> None:
    bad = sorted(
        f"{m} -> {t}"
        for m, ts in GRAPH.items()
        if m.split(".")[0] == "events"
        for t in ts
        if t.split(".")[0] != "events"
    )
    assert bad == []


def test_shared_packages_never_import_a_service() -> None:
    bad = sorted(
        f"{m} -> {t}"
        for m, ts in GRAPH.items()
        if m.split(".")[0] in SHARED
        for t in ts
        if t.split(".")[0] == "services"
    )
    assert bad == []


def test_services_never_import_each_other() -> None:
    bad = sorted(
        f"{m} -> {t}"
        for m, ts in GRAPH.items()
        for t in ts
        if _service(m) and _service(t) and _service(m) != _service(t)
    )
    assert bad == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle() -> None:
    assert _cycles(GRAPH) == []


@pytest.mark.parametrize(
    "graph, expected",
    [
        pytest.param({"a": {"b"}, "b": {"a"}}, [["a", "b"]], id="two-modules"),
        pytest.param({"a": {"b"}, "b": {"c"}, "c": set()}, [], id="a-chain"),
        pytest.param({"a": {"b"}, "b": {"c"}, "c": {"a"}}, [["a", "b", "c"]], id="three"),
    ],
)
def test_cycle_finder(graph: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert _cycles(graph) == expected


def test_the_walk_sees_imports_inside_functions(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from services.web import app\n")
    assert "services.web.app" in _imports(source, "services.x.m")


def test_no_module_is_a_hub() -> None:
    """A module past ~400 lines does several jobs: split it by job."""
    long = sorted(
        f"{p.relative_to(ROOT)}: {n}"
        for top in PROJECT
        for p in (ROOT / top).rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 400
    )
    assert long == []
