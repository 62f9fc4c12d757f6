"""Load user code by import path (``package.module.Name``), never by eval/exec.

This is the one way user code comes in: ``autotrain_pl.registry.Registry.get`` (chat formats,
losses, metrics, benchmarks, subcommands) and any other config field that takes an import path
call ``import_object``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from autotrain_pl.errors import AutotrainError


def import_object(path: str, field: str) -> Any:
    """Import ``path`` and return the attribute it names.

    Args:
        path: a dotted path such as ``my_pkg.losses.my_loss``.
        field: the config field the path came from, named in the error (e.g. ``loss``).
    """
    parts = path.strip().split(".") if isinstance(path, str) else []
    if len(parts) < 2 or not all(part.isidentifier() for part in parts):
        raise AutotrainError(f"{field}={path!r} is not an import path like my_pkg.module.Name")
    module_name, attribute = ".".join(parts[:-1]), parts[-1]
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise AutotrainError(
            f"{field}={path!r}: cannot import module {module_name!r} ({error}); check the path "
            "and that the package is installed"
        ) from None
    if not hasattr(module, attribute):
        raise AutotrainError(f"{field}={path!r}: module {module_name!r} has no attribute {attribute!r}")
    return getattr(module, attribute)


def lazy_exports(package: str, exports: Mapping[str, str]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for a package whose public names import on first use.

    ``exports`` maps each name to the module that defines it; the package stays cheap to import
    (no torch or transformers) until a name is used.
    """

    def __getattr__(name: str) -> Any:
        if name in exports:
            return getattr(importlib.import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(vars(importlib.import_module(package))) | set(exports))

    return __getattr__, __dir__
