"""The G rollouts of a prompt scored in ONE row: the prompt once, then every continuation.

GRPO samples G continuations of each prompt; scoring them as G rows of ``prompt +
continuation`` encodes the prompt G times. Packed, a row is ``prompt + c_1 + ... + c_G`` under
the block mask of ``data.pair_batches.packed_pair_mask``: each continuation's tokens attend to
the prompt and to their own earlier tokens only, and their ``position_ids`` continue from the
prompt, so every log-probability is exactly the one of ``prompt + c_k`` run alone (as the
preference objectives' packed pairs). On short-answer RL (prompts longer than the answers) that
is most of the update's tokens saved.

Log-probabilities come back in the continuation layout ``[N, W]``: column ``j`` of rollout ``n``
is its token ``prompt_length + j`` (the same layout as ``continuation_tensors``), which is all
GRPO's loss reads. Rollouts with different prompts (other groups, or environments whose
episodes start differently) get rows of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from autotrain_pl.data.collate import pad_sequences
from autotrain_pl.data.pair_batches import packed_pair_mask
from autotrain_pl.rl.types import Rollout
from autotrain_pl.training.tokens import TokenSelection

_PAD_SEGMENT = -1


@dataclass
class PackedRollouts:
    """Rows of packed rollouts and their targets (the policy's own tokens).

    Attributes:
        inputs: ``input_ids``, the 4-D ``attention_mask`` and ``position_ids``.
        selection: where each target is predicted from (rows sorted, as the trimmed last layer
            needs) and its label.
        slots: ``(rollout, column)`` of each target in the continuation layout, rollouts
            numbered in the order given.
        tokens: real tokens in the rows.
    """

    inputs: dict[str, Tensor]
    selection: TokenSelection
    slots: tuple[Tensor, Tensor]
    tokens: int

    def dense(self, flat: Tensor, like: Tensor) -> Tensor:
        """Per-target values ``[N_targets]`` laid out like ``like`` (``[N, W]``), 0 elsewhere."""
        return torch.zeros_like(like, dtype=flat.dtype).index_put(self.slots, flat)


def continuation_tensors(rollouts: Sequence[Rollout], width: int) -> tuple[Tensor, Tensor]:
    """``[N, width]`` mask of the policy's own tokens and their behaviour log-probabilities, in
    the continuation layout (column ``j``: token ``prompt_length + j``)."""
    mask = torch.zeros((len(rollouts), width), dtype=torch.float32)
    behaviour = torch.zeros((len(rollouts), width), dtype=torch.float32)
    for row, rollout in enumerate(rollouts):
        start, count = rollout.prompt_length, len(rollout.token_ids) - rollout.prompt_length
        mask[row, :count] = torch.tensor(rollout.mask[start:], dtype=torch.float32)
        behaviour[row, :count] = torch.tensor(rollout.logprobs[start:], dtype=torch.float32)
    return mask, behaviour


def continuation_width(rollouts: Sequence[Rollout]) -> int:
    return max(len(r.token_ids) - r.prompt_length for r in rollouts)


def pack_rollouts(rollouts: Sequence[Rollout], pad_token_id: int,
                  device: torch.device | str = "cpu") -> PackedRollouts:
    """Rows of consecutive rollouts of one group that share their prompt tokens."""
    rows: list[list[int]] = []
    segments: list[list[int]] = []
    positions: list[list[int]] = []
    target: dict[str, list] = {"rows": [], "positions": [], "labels": [], "rollouts": [],
                               "columns": []}
    previous: Rollout | None = None
    for index, rollout in enumerate(rollouts):
        prompt = rollout.token_ids[:rollout.prompt_length]
        if previous is None or previous.group != rollout.group or \
                previous.token_ids[:previous.prompt_length] != prompt:
            rows.append(list(prompt))
            segments.append([0] * len(prompt))
            positions.append(list(range(len(prompt))))
            members = 0
        previous = rollout
        members += 1  # this continuation's segment id (0 is the prompt)
        row, start = len(rows) - 1, len(rows[-1])
        continuation = rollout.token_ids[rollout.prompt_length:]
        rows[row] += continuation
        segments[row] += [members] * len(continuation)
        positions[row] += list(range(len(prompt), len(prompt) + len(continuation)))
        for column, (token, trained) in enumerate(zip(continuation,
                                                      rollout.mask[rollout.prompt_length:],
                                                      strict=True)):
            if trained:
                target["rows"].append(row)
                target["positions"].append(len(prompt) - 1 if column == 0
                                           else start + column - 1)
                target["labels"].append(token)
                target["rollouts"].append(index)
                target["columns"].append(column)
    length = max(len(r) for r in rows)
    segment_ids = pad_sequences(segments, _PAD_SEGMENT, torch.long, length)
    inputs = {
        "input_ids": pad_sequences(rows, pad_token_id, torch.long, length),
        "attention_mask": packed_pair_mask(segment_ids, pad=_PAD_SEGMENT),
        "position_ids": pad_sequences(positions, 0, torch.long, length),
    }

    def tensor(name: str, dtype=torch.long) -> Tensor:
        return torch.tensor(target[name], dtype=dtype, device=device)

    selection = TokenSelection(rows=tensor("rows"), positions=tensor("positions"),
                               labels=tensor("labels"),
                               weights=torch.ones(len(target["rows"]), device=device),
                               batch_size=len(rows))
    return PackedRollouts({k: v.to(device) for k, v in inputs.items()}, selection,
                          (tensor("rollouts"), tensor("columns")), sum(len(r) for r in rows))

