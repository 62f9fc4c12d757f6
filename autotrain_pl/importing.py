"""Load user code by import path (``package.module.Name``), never by eval/exec."""

from __future__ import annotations

import importlib
from typing import Any

from autotrain_pl.errors import AutotrainError


def import_object(path: str, field: str) -> Any:
    """Import ``path`` and return the attribute it names.

    Args:
        path: a dotted path such as ``my_pkg.losses.my_loss``.
        field: the config field the path came from, named in the error (e.g. ``loss``).
    """
    module_name, _, attribute = path.rpartition(".")
    if not module_name:
        raise AutotrainError(f"{field}={path!r} is not an import path like my_pkg.module.Name")
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
