"""``create_completer``: model reference in, ready completer out.

The chat format comes, in order, from the export's ``autotrain.json`` (what the run was trained
with), then the caller's ``chat_format``, then ``auto`` (the tokenizer's own chat template if it
has one, else ChatML). A trained run therefore samples in its training format with no flags.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

from autotrain_pl.errors import AutotrainError
from autotrain_pl.generation.message_completer import MessageCompleter
from autotrain_pl.generation.token_completer import TokenCompleter

CompleterKind = Literal["message", "token"]


def create_completer(
    model_ref: str,
    *,
    kind: CompleterKind = "message",
    chat_format: str | None = None,
    dtype: str = "float32",
    device: str | None = None,
    **load_options: Any,
) -> MessageCompleter | TokenCompleter:
    """Load model, tokenizer and renderer for ``model_ref`` and wrap them in a completer.

    Args:
        model_ref: ``builtin:<name>``, a local HF directory, an exported run, or a hub id.
        kind: ``"message"`` (messages in, ``Message`` out) or ``"token"`` (ids in, tokens and
            logprobs out; it still stops at the chat format's end of turn).
        chat_format: renderer name when the export does not record one.
        dtype: weight dtype (``float32``, ``bfloat16``, ``float16``, ``auto``).
        device: ``cuda``, ``mps``, ``cpu``...; None picks CUDA, then MPS, then CPU.
        **load_options: passed to ``autotrain_pl.models.load_model`` (``attn_implementation``,
            ``quantization``, ``trust_remote_code``...).
    """
    from autotrain_pl.models import load_model, load_tokenizer, resolve_model_ref

    if kind not in ("message", "token"):
        raise AutotrainError(f"kind={kind!r} is not known; use 'message' or 'token'")
    target_device = resolve_device(device)  # fail on a bad device before loading anything
    resolved = resolve_model_ref(model_ref)
    renderer_name = resolve_renderer_name(resolved.renderer_name, chat_format)
    trust_remote_code = load_options.get("trust_remote_code", False)
    tokenizer = load_tokenizer(model_ref, trust_remote_code=trust_remote_code)
    add_missing_special_tokens(tokenizer, renderer_name)
    renderer = get_renderer(renderer_name, tokenizer)
    model = load_model(model_ref, dtype=dtype, vocab_size=len(tokenizer), **load_options)
    if not _is_device_mapped(model):
        model.to(target_device)
    model.eval()
    if kind == "token":
        return TokenCompleter(model, tokenizer, renderer)
    return MessageCompleter(model, tokenizer, renderer)


def resolve_renderer_name(exported: str | None, chat_format: str | None) -> str:
    """Export metadata first, then the explicit ``chat_format``, then ``auto``."""
    if exported and chat_format and chat_format not in (exported, "auto"):
        warnings.warn(
            f"chat_format={chat_format!r} ignored: the model was exported with {exported!r}, the "
            "format it was trained on", stacklevel=3,
        )
    return exported or chat_format or "auto"


def get_renderer(name: str, tokenizer):
    """``autotrain_pl.rendering.get_renderer``, with a ChatML fallback while it is not available."""
    try:
        from autotrain_pl.rendering.registry import get_renderer as registry_get_renderer
    except ImportError:
        registry_get_renderer = None
    if registry_get_renderer is not None:
        return registry_get_renderer(name, tokenizer)
    from autotrain_pl.rendering.chatml import ChatMLRenderer

    if name == "chatml" or (name == "auto" and not getattr(tokenizer, "chat_template", None)):
        return ChatMLRenderer(tokenizer)
    raise AutotrainError(
        f"chat_format={name!r} needs autotrain_pl.rendering.registry, which is not available; "
        "use chat_format='chatml'"
    )


def resolve_device(device: str | None) -> str:
    """None or ``auto`` picks CUDA, then MPS, then CPU; explicit names are checked."""
    from autotrain_pl.models import select_accelerator

    if device is None or device == "auto":
        return select_accelerator("auto")
    base, _, index = device.partition(":")
    if base not in ("cuda", "gpu", "mps", "cpu") or (index and not index.isdigit()):
        raise AutotrainError(f"device={device!r} is not known; use cuda, cuda:N, mps, cpu or None")
    try:
        accelerator = select_accelerator(base)
    except AutotrainError:
        raise AutotrainError(f"device={device!r} is not available here; use device=None (auto) "
                             "or 'cpu'") from None
    return f"{accelerator}:{index}" if index else accelerator


def add_missing_special_tokens(tokenizer, renderer_name: str) -> None:
    """Add the format's special tokens the tokenizer lacks; ``load_model`` then grows the
    embeddings to ``len(tokenizer)``."""
    try:
        from autotrain_pl.rendering.registry import add_missing_special_tokens as add_missing
    except ImportError:  # the registry is not there yet: only ChatML is available (see below)
        from autotrain_pl.rendering.chatml import ChatMLRenderer

        vocab = tokenizer.get_vocab()
        missing = [t for t in ChatMLRenderer.special_tokens if t not in vocab]
        if missing and renderer_name in ("chatml", "auto"):
            tokenizer.add_tokens(missing, special_tokens=True)
        return
    add_missing(tokenizer, renderer_name)


def _is_device_mapped(model) -> bool:
    return bool(getattr(model, "hf_device_map", None)) or getattr(model, "is_loaded_in_4bit", False) \
        or getattr(model, "is_loaded_in_8bit", False)
