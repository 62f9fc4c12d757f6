"""Chat formats by name: ``chat_format: llama3`` in a config, or a user's class by import path.

- ``register_renderer("name", *aliases)`` is a class decorator that adds a ``Renderer`` subclass
  under a name (and other names for the same format).
- ``renderer_class(name)`` looks a format up without a tokenizer, so config validation can fail
  fast on an unknown ``chat_format``.
- ``get_renderer(name, tokenizer, token_weights=None)`` builds the renderer.
- A name with a dot (``my_pkg.formats.MyRenderer``) is imported with
  ``autotrain_pl.importing.import_object``; user code is never run through ``eval``/``exec``.
- ``CHAT_FORMATS`` is the ``autotrain_pl.registry.Registry`` behind these functions.
- An alias (``llama`` for ``llama2``) builds the same renderer, whose ``name`` (recorded in an
  export) is the format's own; the first use of an alias logs which format it means.
- ``add_missing_special_tokens(tokenizer, renderer_cls)`` adds the format's special tokens that the
  tokenizer lacks. **The caller must then resize the model's embeddings to ``len(tokenizer)``**
  (``model.resize_token_embeddings(len(tokenizer))``); ``autotrain_pl.models`` does this when it
  loads a model for a chat format.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping

from autotrain_pl.registry import Registry
from autotrain_pl.rendering.base import Renderer, has_single_token

log = logging.getLogger(__name__)
#: Aliases already reported in the log (each is named once per process).
_REPORTED_ALIASES: set[str] = set()


def _is_renderer_class(obj: object) -> bool:
    """A ``Renderer`` subclass, or a class whose ``resolve(tokenizer)`` picks one (``auto``)."""
    return inspect.isclass(obj) and (
        issubclass(obj, Renderer) or callable(getattr(obj, "resolve", None))
    )


CHAT_FORMATS: Registry[type] = Registry(
    kind="chat format",
    field="chat_format",
    builtin_modules=(
        "autotrain_pl.rendering.chatml",
        "autotrain_pl.rendering.llama",
        "autotrain_pl.rendering.simple",
        "autotrain_pl.rendering.zephyr",
        "autotrain_pl.rendering.native",
    ),
    normalize=lambda name: name.strip().lower(),
    example="my_pkg.formats.MyRenderer",
    accepts=_is_renderer_class,
    expects="a Renderer subclass (autotrain_pl.rendering.Renderer)",
)


def register_renderer(name: str, *aliases: str) -> Callable[[type], type]:
    """Class decorator: make a renderer selectable as ``chat_format=name`` (case-insensitive),
    and as each of ``aliases`` (other names users know the same format by)."""
    register = CHAT_FORMATS.register(name, *aliases)

    def decorator(cls: type) -> type:
        register(cls)
        if not getattr(cls, "name", ""):
            cls.name = CHAT_FORMATS.normalize(name)
        return cls

    return decorator


def available_formats() -> list[str]:
    """Sorted names of all registered chat formats."""
    return CHAT_FORMATS.names()


def renderer_class(name: str) -> type:
    """The renderer class for a registered name or a ``package.module.Class`` import path."""
    cls = CHAT_FORMATS.get(name)
    key = CHAT_FORMATS.normalize(name) if isinstance(name, str) else ""
    own = getattr(cls, "name", "")
    if key in CHAT_FORMATS and own and key != own and key not in _REPORTED_ALIASES:
        _REPORTED_ALIASES.add(key)
        title = (getattr(cls, "__doc__", None) or "").strip().splitlines()
        log.info("chat_format=%s is an alias of %s%s", key, own, f" ({title[0]})" if title else "")
    return cls


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
