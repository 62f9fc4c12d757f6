"""The package's import graph has no cycle, between subpackages or between files.

Imports are read with the AST, so imports inside functions count too (a lazy import still ties
two modules together); only ``if TYPE_CHECKING:`` blocks are skipped. An import of
``autotrain_pl.a.b`` is an edge to the module ``a/b`` itself, not to the ``__init__`` files that
Python runs on the way.
"""

from __future__ import annotations

import ast
from pathlib import Path

import autotrain_pl

PACKAGE = Path(autotrain_pl.__file__).parent
ROOT = "autotrain_pl"


def module_names() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_modules(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """Modules of the package that ``path`` imports anywhere, outside TYPE_CHECKING blocks."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    def add(target: str) -> None:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target.startswith(ROOT) and target != name:
            found.add(target)

    visit(tree)
    return found


def subpackage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path of nodes, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := dfs(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := dfs(node)):
            return cycle
    return None


def import_graphs() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    modules = module_names()
    files = {name: imported_modules(path, name, modules) for name, path in modules.items()}
    packages: dict[str, set[str]] = {}
    for name, targets in files.items():
        for target in targets:
            if subpackage(target) != subpackage(name) and target != ROOT:
                packages.setdefault(subpackage(name), set()).add(subpackage(target))
    return files, packages


def test_no_cycle_between_files():
    files, _ = import_graphs()
    assert find_cycle(files) is None, " -> ".join(find_cycle(files) or [])


def test_no_cycle_between_subpackages():
    _, packages = import_graphs()
    assert find_cycle(packages) is None, " -> ".join(find_cycle(packages) or [])


def test_the_checker_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
