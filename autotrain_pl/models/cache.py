"""The keyword a model takes its KV cache under."""

from __future__ import annotations

import inspect


def cache_argument(function) -> str:
    """transformers 5 renamed ``past_key_values`` to ``cache`` (the old name warns, then goes);
    the name ``function`` (a ``forward`` or ``generate``) takes."""
    parameters = inspect.signature(function).parameters
    return "cache" if "cache" in parameters else "past_key_values"
