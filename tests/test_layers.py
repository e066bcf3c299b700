"""Data flows one way, app -> threads -> graph -> memory, and no package has an
import circle (see the architecture notes: "Nothing imports upward; no package
has an import circle").

The source files are parsed, never imported. Every import counts: module-level,
inside functions, and under `if TYPE_CHECKING:` (a circle hidden from the
interpreter is still a circle in the design). `from x import y` imports module
x, and x.y as well when x/y.py (or x/y/__init__.py) exists. A package that does
not exist yet simply has no files.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("app", "threads", "graph", "memory")  # from the top layer down
ABOVE = {package: set(PACKAGES[:i]) for i, package in enumerate(PACKAGES)}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module
    where: str  # path:line, for the failure message


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    """Every module of our packages, by dotted name."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[module_name(path)] = path
    return found


def imported_names(name: str, path: Path) -> Iterator[tuple[str, int]]:
    """The modules one file imports, anywhere in it, with their line numbers."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - (node.level - 1)])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            yield base, node.lineno
            for alias in node.names:
                if f"{base}.{alias.name}" in modules():
                    yield f"{base}.{alias.name}", node.lineno


@cache
def imports() -> tuple[Import, ...]:
    found = []
    for name, path in modules().items():
        for target, line in imported_names(name, path):
            where = f"{path.relative_to(ROOT)}:{line}"
            found.append(Import(name, target, where))
    return tuple(found)


def top(name: str) -> str:
    return name.partition(".")[0]


def package_edges(package: str) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {m: set() for m in modules() if top(m) == package}
    for imp in imports():
        if imp.source in edges and imp.target in edges and imp.source != imp.target:
            edges[imp.source].add(imp.target)
    return edges


def circles(package: str) -> list[list[str]]:
    """The groups of the package's modules that import one another in a circle."""
    return [group for group in strongly_connected(package_edges(package)) if len(group) > 1]


def strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm; groups in a stable order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            groups.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return groups


def shortest_circle(edges: dict[str, set[str]], group: list[str]) -> list[str]:
    """The shortest way from the group's first module back to itself."""
    start, members = group[0], set(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(edges[node] & members):
                if nxt == start:
                    return [*paths[node], start]
                if nxt not in paths:
                    paths[nxt] = [*paths[node], nxt]
                    following.append(nxt)
        frontier = following
    return group  # pragma: no cover - a strongly connected group always closes


def test_the_checker_sees_the_code() -> None:
    """Guards the guard: a wrong root or a parser that sees nothing would pass everything."""
    assert any(top(m) == "app" for m in modules()) and any(top(m) == "memory" for m in modules())
    assert any(top(i.source) == "app" and top(i.target) == "memory" for i in imports())
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(edges)[0] == ["a", "b", "c"]
    assert shortest_circle(edges, ["a", "b", "c"]) == ["a", "b", "c", "a"]


@pytest.mark.parametrize("package", ["memory", "graph", "threads"])
def test_nothing_imports_upward(package: str) -> None:
    upward = [
        f"{imp.where} imports {imp.target}"
        for imp in imports()
        if top(imp.source) == package and top(imp.target) in ABOVE[package]
    ]
    assert not upward, f"{package}/ imports from a layer above it:\n" + "\n".join(upward)


def describe_circle(package: str, group: list[str]) -> str:
    """The modules of one circle, a shortest loop among them, and every import
    between them: the links a fix has to cut."""
    members = set(group)
    links = sorted(
        {
            f"    {imp.where}: {imp.source} imports {imp.target}"
            for imp in imports()
            if imp.source in members and imp.target in members and imp.source != imp.target
        }
    )
    loop = " -> ".join(shortest_circle(package_edges(package), group))
    return f"{', '.join(group)} (for one: {loop})\n" + "\n".join(links)


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_circle(package: str) -> None:
    found = circles(package)
    described = [describe_circle(package, group) for group in found]
    assert not found, f"import circles in {package}/:\n" + "\n".join(described)
