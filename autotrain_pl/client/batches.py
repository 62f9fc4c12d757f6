"""Batch checks and layouts for ``TrainingClient``: device moves, per-token extras, logprobs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from autotrain_pl.errors import AutotrainError
from autotrain_pl.training.tokens import TokenSelection

REQUIRED_KEYS = ("input_ids", "loss_weights")
#: Optional per-token batch keys handed to losses as ``LossInputs`` fields.
TOKEN_VALUE_KEYS = ("advantages", "old_logprobs", "ref_logprobs")


def prepare_batch(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    """Check the batch convention and move its tensors to ``device``."""
    if not isinstance(batch, Mapping):
        raise AutotrainError(
            f"batch must be a dict of tensors (input_ids, attention_mask, loss_weights), got "
            f"{type(batch).__name__}"
        )
    missing = [key for key in REQUIRED_KEYS if key not in batch]
    if missing:
        raise AutotrainError(
            f"batch lacks {missing}; give input_ids [B, T] and loss_weights [B, T] (weight of "
            "token t as a target), plus attention_mask"
        )
    ids = batch["input_ids"]
    if not isinstance(ids, Tensor) or ids.dim() != 2:
        raise AutotrainError("batch['input_ids'] must be a [B, T] tensor of token ids")
    weights = batch["loss_weights"]
    if not isinstance(weights, Tensor) or weights.shape != ids.shape:
        raise AutotrainError(
            f"batch['loss_weights'] has shape {tuple(getattr(weights, 'shape', ()))}; it must be a "
            f"float tensor that matches input_ids {tuple(ids.shape)}"
        )
    return {k: v.to(device, non_blocking=True) if isinstance(v, Tensor) else v
            for k, v in batch.items()}


def gather_token_values(name: str, value: Tensor | float, selection: TokenSelection,
                        length: int) -> Tensor | float:
    """Per-token values at the selected targets, from one of three layouts.

    ``[B]`` per row (e.g. a sequence's advantage); ``[B, T]`` aligned with ``input_ids`` like
    ``loss_weights`` (value at ``t`` belongs to token ``t``); ``[B, T-1]`` aligned with the targets
    like ``ForwardBackwardResult.logprobs``.
    """
    if not isinstance(value, Tensor) or value.dim() == 0:
        return value
    if value.dim() == 1:
        return value[selection.rows]
    if value.dim() == 2 and value.shape[1] == length:
        return value[:, 1:][selection.rows, selection.positions]
    if value.dim() == 2 and value.shape[1] == length - 1:
        return value[selection.rows, selection.positions]
    raise AutotrainError(
        f"batch[{name!r}] has shape {tuple(value.shape)}; use [B], [B, T] (like loss_weights) or "
        f"[B, T-1] (like the returned logprobs) with T={length}"
    )


def token_value_inputs(batch: Mapping[str, Any], selection: TokenSelection) -> dict[str, Any]:
    """The ``LossInputs`` fields that the batch carries (advantages, old/ref logprobs)."""
    length = batch["input_ids"].shape[1]
    return {key: gather_token_values(key, batch[key], selection, length)
            for key in TOKEN_VALUE_KEYS if batch.get(key) is not None}


def padded_logprobs(values: Tensor, selection: TokenSelection, shape: torch.Size) -> Tensor:
    """Scatter flat target logprobs into a zero ``[B, T-1]`` float32 tensor (detached)."""
    out = torch.zeros(shape[0], shape[1] - 1, dtype=torch.float32, device=values.device)
    out[selection.rows, selection.positions] = values.detach().float()
    return out


def prompt_token_lists(prompts: Any, renderer) -> list[list[int]]:
    """Token-id prompts from ids, a list of id lists, one conversation or a list of them.

    A conversation (a list of ``Message`` or ``{"role", "content"}`` dicts) is rendered with
    ``renderer.build_generation_prompt``.
    """
    if isinstance(prompts, Tensor):
        prompts = prompts.tolist()
    if not isinstance(prompts, Sequence) or isinstance(prompts, str) or not prompts:
        raise AutotrainError("prompts must be token ids, a list of them, or chat conversations")
    first = prompts[0]
    if isinstance(first, int):
        return [list(prompts)]
    if _is_message(first):
        return [_render(prompts, renderer)]
    out = []
    for prompt in prompts:
        if isinstance(prompt, Tensor):
            prompt = prompt.tolist()
        if prompt and _is_message(prompt[0]):
            out.append(_render(prompt, renderer))
        else:
            out.append([int(t) for t in prompt])
    return out


def _is_message(item: Any) -> bool:
    return isinstance(item, Mapping) or (hasattr(item, "role") and hasattr(item, "content"))


def _render(conversation: Sequence[Any], renderer) -> list[int]:
    from autotrain_pl.rendering import Message

    if renderer is None:
        raise AutotrainError(
            "chat prompts need a chat format: build TrainingClient(..., renderer='chatml') or pass "
            "token ids"
        )
    messages = [Message.from_dict(m) if isinstance(m, Mapping) else m for m in conversation]
    return list(renderer.build_generation_prompt(messages))
