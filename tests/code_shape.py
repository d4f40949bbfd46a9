"""Read the shape of the code from its source: the import graph between project modules, its
circles, private names borrowed across packages, imports that break a layering, and long
functions. Pure functions over a directory, so tests run them on the repository and on small
planted packages alike."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Import:
    """One imported name: ``importer`` imports ``target`` (a project module) at ``path:line``;
    ``name`` is what a ``from … import name`` takes, None for a plain ``import``."""

    importer: str
    target: str
    name: str | None
    path: Path
    line: int

    def __str__(self) -> str:
        taken = f" ({self.name})" if self.name else ""
        return f"{self.importer} imports {self.target}{taken} at line {self.line}"


@dataclass(frozen=True)
class Layers:
    """Groups of modules, each a tuple of dotted prefixes, and the groups each group may
    import. Every module under ``package`` (but the package itself) must be in a group."""

    groups: dict[str, tuple[str, ...]]
    allowed: dict[str, set[str]]
    package: str | None = None


@dataclass(frozen=True)
class Function:
    path: str
    name: str
    line: int
    length: int

    @property
    def key(self) -> str:
        return f"{self.path}::{self.name}"


def project_modules(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    """Every module of the packages by its dotted name (a package by its ``__init__.py``)."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def import_graph(root: Path, packages: tuple[str, ...]) -> list[Import]:
    """Every import of a project module by a project module, those inside functions too: a
    lazy import still makes one module depend on the other."""
    modules = project_modules(root, packages)
    return [
        found
        for module, path in modules.items()
        for found in imports_in(module, path, set(modules))
    ]


def imports_in(module: str, path: Path, known: set[str]) -> list[Import]:
    """The imports of project modules (``known``) written in one module's source."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _longest_known(alias.name, known)
                if target:
                    found.append(Import(module, target, None, path, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, is_package=path.name == "__init__.py")
            for alias in node.names:
                target = _longest_known(f"{base}.{alias.name}", known)
                if target:
                    found.append(Import(module, target, alias.name, path, node.lineno))
    return found


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    parts = module.split(".")
    # a module's own package is one level up; a package's __init__ is its own package
    keep = len(parts) - node.level + (1 if is_package else 0)
    return ".".join(parts[:keep] + ([node.module] if node.module else []))


def _longest_known(dotted: str, known: set[str]) -> str | None:
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in known:
            return ".".join(parts[:end])
    return None


def circles(imports: list[Import]) -> list[list[str]]:
    """Each group of modules that import each other, as one circle through its first module:
    ``[a, b, a]`` for a → b → a."""
    graph: dict[str, set[str]] = {}
    for found in imports:
        if found.importer != found.target:
            graph.setdefault(found.importer, set()).add(found.target)
    return [_circle_through(sorted(group), graph) for group in _strong_groups(graph)]


def _strong_groups(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components with more than one module, in a stable order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for after in sorted(graph.get(node, ())):
            if after not in index:
                visit(after)
                low[node] = min(low[node], low[after])
            elif after in stack:
                low[node] = min(low[node], index[after])
        if low[node] == index[node]:
            group = set(stack[stack.index(node) :])
            del stack[stack.index(node) :]
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups, key=min)


def _circle_through(group: list[str], graph: dict[str, set[str]]) -> list[str]:
    """The shortest path from the group's first module back to itself (breadth first)."""
    start = group[0]
    came_from = {start: start}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for after in sorted(graph[node] & set(group)):
                if after == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if after not in came_from:
                    came_from[after] = node
                    following.append(after)
        frontier = following
    raise AssertionError(f"{group} is not a circle")


def private_imports(imports: list[Import]) -> list[Import]:
    """Imports that take a private name or module (``_x``, not ``__x__``) from another
    top-level package."""
    return [
        found
        for found in imports
        if found.importer.split(".")[0] != found.target.split(".")[0]
        and any(_private(part) for part in [*found.target.split("."), found.name or ""])
    ]


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def layer_violations(imports: list[Import], layers: Layers) -> list[str]:
    """Imports from a group into a group it may not import, and modules under the layered
    package that import or are imported yet belong to no group."""
    wrong = []
    for found in imports:
        source, target = _group_of(found.importer, layers), _group_of(found.target, layers)
        if source and target and target not in layers.allowed[source]:
            wrong.append(f"{found} ({source} may not import {target})")
    if layers.package:
        modules = {end for found in imports for end in (found.importer, found.target)}
        wrong += [
            f"{module} is in no group of {layers.package}'s layers"
            for module in sorted(modules)
            if module.startswith(layers.package + ".") and not _group_of(module, layers)
        ]
    return wrong


def _group_of(module: str, layers: Layers) -> str | None:
    matches = [
        (len(prefix), group)
        for group, prefixes in layers.groups.items()
        for prefix in prefixes
        if module == prefix or module.startswith(prefix + ".")
    ]
    return max(matches)[1] if matches else None


def long_functions(root: Path, packages: tuple[str, ...], limit: int) -> list[Function]:
    """Functions and methods (nested ones too) longer than ``limit`` lines, def line to end."""
    found = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            found += _long_in(tree, path.relative_to(root).as_posix(), "", limit)
    return found


def _long_in(node: ast.AST, path: str, prefix: str, limit: int) -> list[Function]:
    found = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            name = prefix + child.name
            length = child.end_lineno - child.lineno + 1
            if not isinstance(child, ast.ClassDef) and length > limit:
                found.append(Function(path, name, child.lineno, length))
            found += _long_in(child, path, name + ".", limit)
        else:
            found += _long_in(child, path, prefix, limit)
    return found
