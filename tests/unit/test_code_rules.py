"""Rules of the code base that a reviewer would otherwise have to remember, checked on the AST.

- No runtime class surgery: no ``obj.__class__ = ...`` and no override of an inherited
  property's setter (``@Base.prop.setter``, or calling ``Base.prop.fset``).
- No reads of Lightning's private loop state (``_batches_that_stepped``).
- User code comes in by import path, never through ``eval``/``exec``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import autotrain_pl

PACKAGE = Path(autotrain_pl.__file__).parent


def trees() -> dict[Path, ast.AST]:
    return {path: ast.parse(path.read_text(), filename=str(path))
            for path in sorted(PACKAGE.rglob("*.py"))}


def violations(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Attribute) and target.attr == "__class__":
                    found.append((node.lineno, "assigns __class__"))
        if isinstance(node, ast.FunctionDef):
            for decorator in node.decorator_list:
                if (isinstance(decorator, ast.Attribute) and decorator.attr == "setter"
                        and isinstance(decorator.value, ast.Attribute)):
                    found.append((node.lineno, "overrides an inherited property's setter"))
        if isinstance(node, ast.Attribute) and node.attr in ("fset", "_batches_that_stepped"):
            found.append((node.lineno, f"reads .{node.attr}"))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                node.func.id in ("eval", "exec"):
            found.append((node.lineno, f"calls {node.func.id}"))
    return found


def test_the_package_follows_the_rules():
    broken = [f"{path.relative_to(PACKAGE.parent)}:{line}: {what}"
              for path, tree in trees().items() for line, what in violations(tree)]
    assert not broken, "\n".join(broken)


def test_the_checker_sees_each_kind_of_violation():
    source = """
class Module(Base):
    @Base.trainer.setter
    def trainer(self, value):
        Base.trainer.fset(self, value)

def adopt(data):
    data.__class__ = Other
    return trainer.fit_loop.epoch_loop._batches_that_stepped + eval("1")
"""
    kinds = {what for _, what in violations(ast.parse(source))}
    assert kinds == {"assigns __class__", "overrides an inherited property's setter",
                     "reads .fset", "reads ._batches_that_stepped", "calls eval"}
