"""``create_completer``: model reference in, ready completer out.

The model is set up for chat the one way every part of the package does it
(``autotrain_pl.models.chat``): the chat format comes from the export's ``autotrain.json`` (what
the run was trained with), then the caller's ``chat_format``, then ``auto`` (the tokenizer's own
chat template if it has one, else ChatML); the format's missing special tokens are added to the
tokenizer and the embeddings grow to match. A trained run therefore samples in its training
format with no flags.
"""

from __future__ import annotations

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
        chat_format: renderer name when the export does not record one (an export's own format
            wins, with a warning when this asks for another).
        dtype: weight dtype (``float32``, ``bfloat16``, ``float16``, ``auto``).
        device: ``cuda``, ``mps``, ``cpu``...; None picks CUDA, then MPS, then CPU.
        **load_options: passed to ``autotrain_pl.models.load_model`` (``attn_implementation``,
            ``quantization``, ``trust_remote_code``...).
    """
    from autotrain_pl.models import chat_tokenizer, fit_embeddings, load_model, resolve_chat_format

    if kind not in ("message", "token"):
        raise AutotrainError(f"kind={kind!r} is not known; use 'message' or 'token'")
    target_device = resolve_device(device)  # fail on a bad device before loading anything
    chat_format = resolve_chat_format(model_ref, chat_format)
    tokenizer, renderer = chat_tokenizer(
        model_ref, chat_format, trust_remote_code=load_options.get("trust_remote_code", False)
    )
    model = load_model(model_ref, dtype=dtype, **load_options)
    fit_embeddings(model, tokenizer)
    if not _is_device_mapped(model):
        model.to(target_device)
    model.eval()
    if kind == "token":
        return TokenCompleter(model, tokenizer, renderer)
    return MessageCompleter(model, tokenizer, renderer)


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


def _is_device_mapped(model) -> bool:
    return bool(getattr(model, "hf_device_map", None)) or getattr(model, "is_loaded_in_4bit", False) \
        or getattr(model, "is_loaded_in_8bit", False)
