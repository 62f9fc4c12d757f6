"""Batches that score two completions of one prompt in ONE forward pass.

A preference pair is a prompt rendered once plus a chosen and a rejected completion
(``encode_preference``). Two layouts carry a batch of pairs to the model:

- ``packed`` (default): one row per pair, ``prompt + chosen + rejected``. A 4-D additive
  attention mask lets chosen tokens see the prompt and earlier chosen tokens, and rejected tokens
  see the prompt and earlier rejected tokens, never the chosen ones; ``position_ids`` of both
  completions continue from the prompt. Every row therefore computes exactly the logits of
  ``prompt + chosen`` and ``prompt + rejected`` run separately, but the prompt is encoded once,
  not twice, and rows are not padded to the longer completion twice. On short-answer data
  (prompts much longer than answers) that is close to half the tokens of the concatenated layout.
- ``concatenated``: ``prompt + chosen`` rows followed by ``prompt + rejected`` rows, right-padded
  to one length, as TRL's ``DPOTrainer`` does. Needed where a model ignores 4-D masks
  (FlashAttention-2).

The targets are explicit, not shifted ids and weights: ``target_rows``/``target_positions`` say
which row and position's logits predict ``target_labels`` with ``target_weights``, and
``target_pairs``/``target_sides`` (0 chosen, 1 rejected) which sequence the log-probability adds
to. In the packed layout the first rejected token is predicted from the prompt's last position,
which the shift convention cannot express. Only weighted completion tokens are targets, so the LM
head runs only there. Targets are sorted by row, as ``training.final_layer`` expects.

``end_rows``/``end_positions``/``end_pairs``/``end_sides`` (``[2B]``, sorted by row) locate the
last token of each ``prompt + completion`` sequence, where a reward model reads its score.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from autotrain_pl.data.collate import pad_sequences, padded_length
from autotrain_pl.errors import AutotrainError

PAIR_LAYOUTS = ("packed", "concatenated")
_PROMPT, _FIRST, _SECOND, _PAD = 0, 1, 2, 3
_TARGET_KEYS = ("rows", "positions", "labels", "weights", "pairs", "sides")
_END_KEYS = ("rows", "positions", "pairs", "sides")


def check_pair_layout(layout: str, field: str = "pair_layout") -> None:
    if layout not in PAIR_LAYOUTS:
        raise AutotrainError(
            f"{field}={layout!r} is unknown; use packed (prompt encoded once, the default) or "
            "concatenated (for attention implementations without 4-D masks, e.g. "
            "flash_attention_2)"
        )


def _targets(completion: Sequence[int], weights: Sequence[float], first_position: int,
             start: int) -> tuple[list[int], list[int], list[float]]:
    """Positions, labels and weights of a completion's weighted tokens.

    Token ``j`` sits at ``start + j`` and is predicted from ``start + j - 1``, except token 0,
    which is predicted from ``first_position`` (the prompt's last position).
    """
    positions, labels, kept = [], [], []
    for j, (token, weight) in enumerate(zip(completion, weights, strict=True)):
        if weight:
            positions.append(first_position if j == 0 else start + j - 1)
            labels.append(int(token))
            kept.append(float(weight))
    return positions, labels, kept


def packed_pair_mask(segments: torch.Tensor, pad: int = _PAD) -> torch.Tensor:
    """The additive ``[B, 1, T, T]`` mask of packed completions from per-token segment ids
    (0: the prompt, any other id: one completion, ``pad``: padding).

    A query attends causally to the prompt and to its own completion; padding attends to itself
    only (a fully masked row would give NaN).
    """
    length = segments.shape[1]
    index = torch.arange(length)
    causal = index[:, None] >= index[None, :]
    query, key = segments[:, :, None], segments[:, None, :]
    allowed = causal & ((key == _PROMPT) | (key == query)) & (key != pad)
    allowed |= torch.eye(length, dtype=torch.bool) & (query == pad)
    mask = torch.zeros(allowed.shape, dtype=torch.float32)
    mask.masked_fill_(~allowed, torch.finfo(torch.float32).min)
    return mask.unsqueeze(1)


class PairCollator:
    """Pairs of completions of one prompt, in the ``packed`` or ``concatenated`` layout.

    Args:
        pad_token_id: id used for padding (never a target).
        layout: ``packed`` or ``concatenated`` (module docstring).
        pad_to_multiple_of: round the padded length up to this multiple.
        first: column prefix of the first completion (``chosen``).
        second: column prefix of the second completion (``rejected``).

    Besides the model inputs and targets, a batch carries ``num_pairs``, ``tokens`` (real tokens
    the forward processes), and when the examples have them ``example_ids``, ``cache_key``,
    ``margin`` and ``labels`` (unpaired feedback: True for desirable).
    """

    def __init__(self, pad_token_id: int, layout: str = "packed",
                 pad_to_multiple_of: int | None = None, first: str = "chosen",
                 second: str = "rejected") -> None:
        check_pair_layout(layout)
        self.pad_token_id = pad_token_id
        self.layout = layout
        self.pad_to_multiple_of = pad_to_multiple_of
        self.first, self.second = first, second

    def __call__(self, features: Sequence[dict[str, Any]]) -> dict[str, Any]:
        batch = self._packed(features) if self.layout == "packed" else self._concatenated(features)
        batch["num_pairs"] = len(features)
        if "example_id" in features[0]:
            batch["example_ids"] = torch.tensor([f["example_id"] for f in features])
            keys = {f.get("cache_key") for f in features}
            if len(keys) == 1:
                batch["cache_key"] = keys.pop()
        if "label" in features[0]:
            batch["labels"] = torch.tensor([bool(f["label"]) for f in features])
        margins = [f.get("margin") for f in features]
        if all(m is not None for m in margins):
            batch["margin"] = torch.tensor(margins, dtype=torch.float32)
        return batch

    def _completions(self, feature: dict[str, Any]) -> tuple[list[int], list[float], list[int],
                                                             list[float]]:
        return (list(feature[f"{self.first}_ids"]), list(feature[f"{self.first}_weights"]),
                list(feature[f"{self.second}_ids"]), list(feature[f"{self.second}_weights"]))

    def _packed(self, features: Sequence[dict[str, Any]]) -> dict[str, Any]:
        rows, segments, positions = [], [], []
        targets: dict[str, list] = {k: [] for k in _TARGET_KEYS}
        ends: dict[str, list] = {k: [] for k in _END_KEYS}
        for row, feature in enumerate(features):
            prompt = list(feature["prompt_ids"])
            first, first_w, second, second_w = self._completions(feature)
            if not prompt:
                raise AutotrainError("a preference example has an empty prompt; the packed "
                                     "layout predicts each completion's first token from it")
            p, c = len(prompt), len(first)
            rows.append(prompt + first + second)
            segments.append([_PROMPT] * p + [_FIRST] * c + [_SECOND] * len(second))
            positions.append(list(range(p + c)) + list(range(p, p + len(second))))
            for side, (ids, weights, start) in enumerate(((first, first_w, p),
                                                          (second, second_w, p + c))):
                _add_targets(targets, row, row, side, *_targets(ids, weights, p - 1, start))
                _add_end(ends, row, start + len(ids) - 1 if ids else p - 1, row, side)
        length = padded_length(max(len(r) for r in rows), self.pad_to_multiple_of)
        segment_ids = pad_sequences(segments, _PAD, torch.long, length)
        batch = {
            "input_ids": pad_sequences(rows, self.pad_token_id, torch.long, length),
            "attention_mask": packed_pair_mask(segment_ids),
            "position_ids": pad_sequences(positions, 0, torch.long, length),
            "tokens": sum(len(r) for r in rows),
        }
        batch.update(_tensors(targets, ends))
        return batch

    def _concatenated(self, features: Sequence[dict[str, Any]]) -> dict[str, Any]:
        count = len(features)
        rows: list[list[int]] = [[] for _ in range(2 * count)]
        targets: dict[str, list] = {k: [] for k in _TARGET_KEYS}
        ends: dict[str, list] = {k: [] for k in _END_KEYS}
        for side in (0, 1):  # targets stay sorted by row, as the trimmed last layer needs
            for pair, feature in enumerate(features):
                prompt = list(feature["prompt_ids"])
                completions = self._completions(feature)
                ids, weights = completions[2 * side], completions[2 * side + 1]
                row = pair + side * count
                rows[row] = prompt + ids
                _add_targets(targets, row, pair, side,
                             *_targets(ids, weights, len(prompt) - 1, len(prompt)))
                _add_end(ends, row, len(rows[row]) - 1, pair, side)
        lengths = [len(r) for r in rows]
        length = padded_length(max(lengths), self.pad_to_multiple_of)
        positions = torch.arange(length).unsqueeze(0)
        batch = {
            "input_ids": pad_sequences(rows, self.pad_token_id, torch.long, length),
            "attention_mask": (positions < torch.tensor(lengths).unsqueeze(1)).long(),
            "tokens": sum(lengths),
        }
        batch.update(_tensors(targets, ends))
        return batch


def _add_targets(targets: dict[str, list], row: int, pair: int, side: int,
                 positions: list[int], labels: list[int], weights: list[float]) -> None:
    targets["rows"] += [row] * len(positions)
    targets["positions"] += positions
    targets["labels"] += labels
    targets["weights"] += weights
    targets["pairs"] += [pair] * len(positions)
    targets["sides"] += [side] * len(positions)


def _add_end(ends: dict[str, list], row: int, position: int, pair: int, side: int) -> None:
    for key, value in zip(_END_KEYS, (row, position, pair, side), strict=True):
        ends[key].append(value)


def _tensors(targets: dict[str, list], ends: dict[str, list]) -> dict[str, torch.Tensor]:
    batch = {f"target_{key}": torch.tensor(values, dtype=torch.long)
             for key, values in targets.items() if key != "weights"}
    batch["target_weights"] = torch.tensor(targets["weights"], dtype=torch.float32)
    batch.update({f"end_{key}": torch.tensor(values, dtype=torch.long)
                  for key, values in ends.items()})
    return batch
