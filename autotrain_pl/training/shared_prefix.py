"""One row per preference pair: the shared prefix once, then the chosen and the rejected rest.

A preference batch (``data.PreferenceCollator``) holds ``prompt + chosen`` and ``prompt + rejected``
as two right-padded halves. Run as ``torch.cat`` of the halves, every prompt token is computed
twice, and both halves are padded to the batch's longest sequence. Packed instead, pair ``b``
becomes the row

    shared prefix (S tokens) | rest of chosen (C') | rest of rejected (R')

with ``position_ids`` ``0..S-1, S..S+C'-1, S..S+R'-1`` and a 4D mask in which the rejected rest
sees the prefix and itself but not the chosen rest. Attention is causal, so every token computes
what it would in its own sequence: the same hidden states (up to float rounding), from
``S + C' + R'`` tokens instead of ``2 (S + max(C', R'))`` padded ones. ``S`` is the longest
common prefix of the two token sequences, at least the rendered prompt, and leaves each side at
least its last token.

The mask follows ``data.packing``: boolean for ``sdpa``, additive float (0 / dtype-min) for
``eager``; a padding position sees only itself. ``pack_pairs`` returns None where packing cannot
be exact or is not worth it (another attention implementation, a mask larger than the budget,
halves that are not right-padded); callers then run the concatenated halves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

#: Largest ``[B, T, T]`` mask (elements) packing builds; beyond it the halves run concatenated.
MAX_MASK_ELEMENTS = 2**26
PACKABLE_ATTENTION = frozenset({"sdpa", "eager"})


@dataclass
class PackedPairs:
    """Model inputs with both sequences of each pair in one row.

    Attributes:
        input_ids, position_ids: ``[B, T]``.
        attention_mask: ``[B, 1, T, T]``, boolean (sdpa) or additive float (eager).
        chosen_last, rejected_last: ``[B]`` row positions of each sequence's last token.
        shared: ``[B]`` shared prefix length ``S``; chosen token ``t`` sits at row position ``t``,
            rejected token ``t >= S`` at ``t + chosen_lengths - S``.
        chosen_lengths, rejected_lengths: ``[B]`` real tokens of each sequence.
    """

    input_ids: Tensor
    position_ids: Tensor
    attention_mask: Tensor
    chosen_last: Tensor
    rejected_last: Tensor
    shared: Tensor
    chosen_lengths: Tensor
    rejected_lengths: Tensor

    def model_inputs(self) -> dict[str, Tensor]:
        return {"input_ids": self.input_ids, "position_ids": self.position_ids,
                "attention_mask": self.attention_mask}

    @property
    def read_rows(self) -> Tensor:
        """``[2B]`` rows of ``read_positions`` (sorted: pair 0 chosen, pair 0 rejected, ...)."""
        batch = self.input_ids.shape[0]
        return torch.arange(batch, device=self.input_ids.device).repeat_interleave(2)

    @property
    def read_positions(self) -> Tensor:
        """``[2B]`` last-token positions, chosen and rejected interleaved per pair."""
        return torch.stack([self.chosen_last, self.rejected_last], dim=1).flatten()


def is_right_padded(attention_mask: Tensor) -> bool:
    """Every row is ones then zeros (and has at least one token)."""
    lengths = attention_mask.sum(1)
    expected = torch.arange(attention_mask.shape[1], device=attention_mask.device) < lengths[:, None]
    return bool((lengths > 0).all()) and torch.equal(attention_mask.bool(), expected)


def pack_pairs(batch: Mapping[str, Tensor], attn_implementation: str | None,
               mask_dtype: torch.dtype = torch.float32) -> PackedPairs | None:
    """Pack a preference batch's ``chosen_*`` / ``rejected_*`` halves (None: cannot or should not).

    Args:
        batch: ``chosen_input_ids``, ``chosen_attention_mask``, ``rejected_input_ids``,
            ``rejected_attention_mask`` (right-padded, as ``PreferenceCollator`` makes them).
        attn_implementation: the model's ``config._attn_implementation``.
        mask_dtype: dtype of the additive mask for ``eager`` attention (the model's dtype).
    """
    if attn_implementation not in PACKABLE_ATTENTION:
        return None
    chosen_ids, rejected_ids = batch["chosen_input_ids"], batch["rejected_input_ids"]
    chosen_mask, rejected_mask = batch["chosen_attention_mask"], batch["rejected_attention_mask"]
    if chosen_ids.dim() != 2 or not (is_right_padded(chosen_mask) and
                                     is_right_padded(rejected_mask)):
        return None
    device = chosen_ids.device
    chosen_len, rejected_len = chosen_mask.sum(1), rejected_mask.sum(1)
    width = min(chosen_ids.shape[1], rejected_ids.shape[1])
    same = (chosen_ids[:, :width] == rejected_ids[:, :width]) & chosen_mask[:, :width].bool() \
        & rejected_mask[:, :width].bool()
    shared = same.long().cumprod(1).sum(1)
    shared = torch.minimum(shared, torch.minimum(chosen_len, rejected_len) - 1)
    total = chosen_len + rejected_len - shared
    length = int(total.max())
    if chosen_ids.shape[0] * length * length > MAX_MASK_ELEMENTS:
        return None

    slots = torch.arange(length, device=device)[None, :]  # [1, T]
    in_chosen = slots < chosen_len[:, None]
    in_rejected = ~in_chosen & (slots < total[:, None])
    rejected_pos = (slots - chosen_len[:, None] + shared[:, None]).clamp(min=0)
    chosen_pos = slots.clamp(max=chosen_ids.shape[1] - 1).expand_as(in_chosen)
    rejected_pos = rejected_pos.clamp(max=rejected_ids.shape[1] - 1)
    input_ids = torch.where(in_chosen, chosen_ids.gather(1, chosen_pos),
                            rejected_ids.gather(1, rejected_pos))
    input_ids = torch.where(in_chosen | in_rejected, input_ids, chosen_ids[:, :1])
    position_ids = torch.where(in_chosen, slots, torch.where(in_rejected, rejected_pos, 0))

    # Segments: 0 shared prefix, 1 chosen rest, 2 rejected rest, 3 padding.
    segment = torch.full_like(input_ids, 3)
    segment = torch.where(in_rejected, 2, segment)
    segment = torch.where(in_chosen, torch.where(slots < shared[:, None], 0, 1), segment)
    causal = torch.ones(length, length, dtype=torch.bool, device=device).tril()
    query, key = segment[:, :, None], segment[:, None, :]
    allowed = causal & ~((query == 2) & (key == 1)) & (key != 3)
    allowed = allowed | torch.eye(length, dtype=torch.bool, device=device)  # no empty softmax row
    if attn_implementation == "sdpa":
        mask = allowed
    else:
        mask = torch.zeros(allowed.shape, dtype=mask_dtype, device=device).masked_fill(
            ~allowed, torch.finfo(mask_dtype).min)
    return PackedPairs(
        input_ids=input_ids, position_ids=position_ids, attention_mask=mask.unsqueeze(1),
        chosen_last=chosen_len - 1, rejected_last=total - 1, shared=shared,
        chosen_lengths=chosen_len, rejected_lengths=rejected_len,
    )
