"""Collators: lists of tokenized examples to padded tensor batches.

Batch convention (shared by every objective): ``loss_weights[b, t]`` is the weight of token
``input_ids[b, t]`` as a prediction target, so the objective shifts (logits at ``t - 1`` predict
token ``t``). Padding carries weight 0 and ``attention_mask`` 0. Padding is dynamic: to the
longest example of the batch, optionally rounded up to a multiple of ``pad_to_multiple_of``
(tensor-core friendly shapes, fewer recompilations).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import torch

from autotrain_pl.errors import AutotrainError


def padded_length(longest: int, multiple_of: int | None = None) -> int:
    """``longest`` rounded up to a multiple of ``multiple_of``."""
    if multiple_of and multiple_of > 1:
        return -(-longest // multiple_of) * multiple_of
    return longest


def pad_sequences(
    sequences: Sequence[Sequence[int | float]],
    value: int | float,
    dtype: torch.dtype,
    length: int | None = None,
    left: bool = False,
) -> torch.Tensor:
    """Stack sequences into a ``[B, length]`` tensor padded with ``value`` (right by default)."""
    length = max((len(s) for s in sequences), default=0) if length is None else length
    out = torch.full((len(sequences), length), value, dtype=dtype)
    for row, seq in enumerate(sequences):
        if len(seq):
            values = torch.as_tensor(list(seq), dtype=dtype)
            if left:
                out[row, length - len(seq) :] = values
            else:
                out[row, : len(seq)] = values
    return out


def resolve_pad_token_id(tokenizer) -> int:
    """The tokenizer's pad id, falling back to EOS (padding is masked, so any id is correct)."""
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return int(candidate)
    raise AutotrainError(
        "the tokenizer has neither a pad nor an EOS token; set tokenizer.pad_token"
    )


def _attention_mask(lengths: Sequence[int], length: int, left: bool = False) -> torch.Tensor:
    positions = torch.arange(length).unsqueeze(0)
    lengths_t = torch.as_tensor(list(lengths)).unsqueeze(1)
    mask = positions >= (length - lengths_t) if left else positions < lengths_t
    return mask.long()


class SFTCollator:
    """Right-padded ``input_ids``, ``attention_mask``, ``loss_weights`` (+ ``position_ids``).

    Args:
        pad_token_id: id used for padding (masked out, never trained).
        pad_to_multiple_of: round the padded length up to this multiple.
        return_position_ids: also emit ``position_ids`` (0..len-1, 0 on padding).
    """

    def __init__(
        self,
        pad_token_id: int,
        pad_to_multiple_of: int | None = None,
        return_position_ids: bool = False,
    ) -> None:
        self.pad_token_id = pad_token_id
        self.pad_to_multiple_of = pad_to_multiple_of
        self.return_position_ids = return_position_ids

    def __call__(self, features: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        ids = [f["input_ids"] for f in features]
        lengths = [len(x) for x in ids]
        length = padded_length(max(lengths), self.pad_to_multiple_of)
        batch = {
            "input_ids": pad_sequences(ids, self.pad_token_id, torch.long, length),
            "attention_mask": _attention_mask(lengths, length),
            "loss_weights": pad_sequences(
                [f["loss_weights"] for f in features], 0.0, torch.float, length
            ),
        }
        if self.return_position_ids:
            positions = torch.arange(length).expand(len(ids), length)
            batch["position_ids"] = positions * batch["attention_mask"]
        return batch


class PreferenceCollator:
    """Chosen and rejected halves, each ``prompt + completion``, padded to ONE common length.

    Equal lengths let the objective run one forward on ``torch.cat([chosen, rejected])``. Prompt
    tokens carry weight 0; completion weights come from the renderer.
    """

    def __init__(self, pad_token_id: int, pad_to_multiple_of: int | None = None) -> None:
        self.pad_token_id = pad_token_id
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, features: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        halves: dict[str, tuple[list[list[int]], list[list[float]]]] = {}
        for side in ("chosen", "rejected"):
            ids, weights = [], []
            for f in features:
                prompt = list(f["prompt_ids"])
                ids.append(prompt + list(f[f"{side}_ids"]))
                weights.append([0.0] * len(prompt) + list(f[f"{side}_weights"]))
            halves[side] = (ids, weights)
        longest = max(len(x) for ids, _ in halves.values() for x in ids)
        length = padded_length(longest, self.pad_to_multiple_of)
        batch: dict[str, torch.Tensor] = {}
        for side, (ids, weights) in halves.items():
            batch[f"{side}_input_ids"] = pad_sequences(ids, self.pad_token_id, torch.long, length)
            batch[f"{side}_attention_mask"] = _attention_mask([len(x) for x in ids], length)
            batch[f"{side}_loss_weights"] = pad_sequences(weights, 0.0, torch.float, length)
        return batch


class GenerationCollator:
    """LEFT-padded prompts for ``generate`` plus python lists ``references`` and ``metadata``.

    Left padding puts every prompt's last token at the same position, so new tokens are appended
    to all rows at once with the KV cache. ``references``/``metadata`` are lists (not tensors)
    that evaluation reads back.
    """

    def __init__(self, pad_token_id: int, pad_to_multiple_of: int | None = None) -> None:
        self.pad_token_id = pad_token_id
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, features: Sequence[dict[str, Any]]) -> dict[str, Any]:
        ids = [f["input_ids"] for f in features]
        lengths = [len(x) for x in ids]
        length = padded_length(max(lengths), self.pad_to_multiple_of)
        return {
            "input_ids": pad_sequences(ids, self.pad_token_id, torch.long, length, left=True),
            "attention_mask": _attention_mask(lengths, length, left=True),
            "references": [f.get("reference") for f in features],
            "metadata": [_metadata(f.get("metadata")) for f in features],
        }


def _metadata(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return json.loads(value) if value else {}
    return dict(value or {})
