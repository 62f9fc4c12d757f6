"""Chat formats by name: ``chat_format: llama3`` in a config, or a user's class by import path.

- ``register_renderer("name")`` is a class decorator that adds a ``Renderer`` subclass under a name.
- ``renderer_class(name)`` looks a format up without a tokenizer, so config validation can fail
  fast on an unknown ``chat_format``.
- ``get_renderer(name, tokenizer, token_weights=None)`` builds the renderer.
- A name with a dot (``my_pkg.formats.MyRenderer``) is imported with ``importlib``; user code is
  never run through ``eval``/``exec``.
- ``add_missing_special_tokens(tokenizer, renderer_cls)`` adds the format's special tokens that the
  tokenizer lacks. **The caller must then resize the model's embeddings to ``len(tokenizer)``**
  (``model.resize_token_embeddings(len(tokenizer))``); ``autotrain_pl.models`` does this when it
  loads a model for a chat format.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping

from autotrain_pl.errors import AutotrainError
from autotrain_pl.importing import import_object
from autotrain_pl.rendering.base import Renderer, has_single_token

_REGISTRY: dict[str, type] = {}
_BUILTIN_MODULES = (
    "autotrain_pl.rendering.chatml",
    "autotrain_pl.rendering.llama",
    "autotrain_pl.rendering.simple",
    "autotrain_pl.rendering.zephyr",
    "autotrain_pl.rendering.native",
)


def register_renderer(name: str) -> Callable[[type], type]:
    """Class decorator: make a renderer selectable as ``chat_format=name``."""
    key = _normalize(name)
    if not key or "." in key:
        raise AutotrainError(f"renderer name {name!r} must be non-empty and contain no dot")

    def decorator(cls: type) -> type:
        existing = _REGISTRY.get(key)
        if existing is not None and _qualname(existing) != _qualname(cls):
            raise AutotrainError(
                f"chat_format {key!r} is already registered by {_qualname(existing)}; "
                "pick another name"
            )
        if not getattr(cls, "name", ""):
            cls.name = key
        _REGISTRY[key] = cls
        return cls

    return decorator


def available_formats() -> list[str]:
    """Sorted names of all registered chat formats."""
    _load_builtins()
    return sorted(_REGISTRY)


def renderer_class(name: str) -> type:
    """The renderer class for a registered name or a ``package.module.Class`` import path."""
    if not isinstance(name, str) or not name.strip():
        raise AutotrainError(f"chat_format={name!r} must be a non-empty string")
    _load_builtins()
    key = _normalize(name)
    if key in _REGISTRY:
        return _REGISTRY[key]
    if "." in name.strip():
        return _import_class(name.strip())
    known = ", ".join(available_formats())
    raise AutotrainError(
        f"chat_format={name!r} is not known; use one of: {known}, "
        "or an import path such as my_pkg.formats.MyRenderer"
    )


def get_renderer(
    name: str, tokenizer, token_weights: Mapping[str, float] | None = None
) -> Renderer:
    """Build the renderer ``name`` for ``tokenizer`` (see module docstring)."""
    return renderer_class(name)(tokenizer, token_weights=token_weights)


def add_missing_special_tokens(tokenizer, renderer_cls: type | str) -> list[str]:
    """Add the special tokens that ``renderer_cls`` needs and ``tokenizer`` lacks; return them.

    A token counts as present when encoding its text yields exactly its own single id. Missing
    tokens are added once, as additional special tokens (never split, skippable on decode), so a
    second call adds nothing. The caller must resize the model's embeddings to ``len(tokenizer)``.
    """
    cls = renderer_class(renderer_cls) if isinstance(renderer_cls, str) else renderer_cls
    resolve = getattr(cls, "resolve", None)  # "auto" picks its concrete format from the tokenizer
    if callable(resolve):
        cls = resolve(tokenizer)
    missing = [
        tok for tok in cls.required_special_tokens() if not has_single_token(tokenizer, tok)
    ]
    if not missing:
        return []
    params = inspect.signature(tokenizer.add_special_tokens).parameters
    keep = (
        {"replace_extra_special_tokens": False}
        if "replace_extra_special_tokens" in params
        else {"replace_additional_special_tokens": False}
    )
    tokenizer.add_special_tokens({"additional_special_tokens": missing}, **keep)
    return missing


# -- helpers ------------------------------------------------------------------------------
def _normalize(name: str) -> str:
    return name.strip().lower() if "." not in name else name.strip()


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _load_builtins() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)


def _import_class(path: str) -> type:
    cls = import_object(path, "chat_format")
    if not (
        inspect.isclass(cls)
        and (issubclass(cls, Renderer) or callable(getattr(cls, "resolve", None)))
    ):
        raise AutotrainError(
            f"chat_format={path!r} is not a Renderer subclass (autotrain_pl.rendering.Renderer)"
        )
    return cls
