"""One setup of a tokenizer for a chat format, and of a model for that tokenizer.

Every part that talks to a model in chat (the data module, ``TrainingClient``, the ``Evaluator``,
the completer factory, a distillation teacher) goes through the same three steps:

1. ``resolve_chat_format``: the format an export recorded, else the caller's, else ``auto``;
2. ``chat_tokenizer``: load the tokenizer (when given a reference), add the special tokens the
   format needs that the tokenizer lacks, and build the format's renderer;
3. ``fit_embeddings``: grow the model's embeddings to the tokenizer, so added tokens have rows.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from typing import Any

from autotrain_pl.models.loading import load_tokenizer, resize_embeddings
from autotrain_pl.models.references import resolve_model_ref
from autotrain_pl.rendering.base import Renderer
from autotrain_pl.rendering.registry import add_missing_special_tokens, get_renderer

log = logging.getLogger(__name__)


def resolve_chat_format(model_ref: str | None, requested: str | None) -> str:
    """The chat format an export was trained with, else ``requested``, else ``auto``.

    A trained run therefore keeps its format with no flags; asking for another one warns.
    """
    exported = resolve_model_ref(model_ref).renderer_name if model_ref else None
    if exported and requested and requested not in (exported, "auto"):
        warnings.warn(
            f"chat_format={requested!r} ignored: the model was exported with {exported!r}, the "
            "format it was trained on", stacklevel=3,
        )
    return exported or requested or "auto"


def chat_tokenizer(tokenizer: Any, chat_format: str, *,
                   token_weights: Mapping[str, float] | None = None,
                   trust_remote_code: bool = False) -> tuple[Any, Renderer]:
    """The tokenizer (loaded when ``tokenizer`` is a reference) with ``chat_format``'s special
    tokens added, and the renderer built on it."""
    if isinstance(tokenizer, str):
        tokenizer = load_tokenizer(tokenizer, trust_remote_code=trust_remote_code)
    added = add_missing_special_tokens(tokenizer, chat_format)
    if added:
        log.info("added special tokens %s for chat_format=%s", added, chat_format)
    return tokenizer, get_renderer(chat_format, tokenizer, token_weights=token_weights)


def fit_embeddings(model, tokenizer) -> bool:
    """Grow ``model``'s embeddings to ``len(tokenizer)``; True if it grew."""
    return resize_embeddings(model, len(tokenizer))
