"""Per-sequence sums of the two completions of each pair in a ``data.pair_batches`` batch."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from torch import Tensor

from autotrain_pl.training.tokens import TokenSelection


@dataclass
class PairScores:
    """Weighted sums over each completion's target tokens, ``[B]`` each.

    Attributes:
        chosen, rejected: sequence log-probabilities (first and second completion).
        chosen_lengths, rejected_lengths: summed target weights (token counts for 0/1 weights).
    """

    chosen: Tensor
    rejected: Tensor
    chosen_lengths: Tensor
    rejected_lengths: Tensor


def pair_selection(batch: Mapping[str, Tensor]) -> TokenSelection:
    """The batch's explicit targets as a ``TokenSelection`` for ``forward_trained_logits``."""
    return TokenSelection(
        rows=batch["target_rows"], positions=batch["target_positions"],
        labels=batch["target_labels"], weights=batch["target_weights"],
        batch_size=batch["input_ids"].shape[0],
    )


def pair_sums(values: Tensor, batch: Mapping[str, Tensor]) -> PairScores:
    """Sum per-target ``values`` times their weights into each pair's two completions."""
    pairs = int(batch["num_pairs"])
    slot = batch["target_pairs"] + pairs * batch["target_sides"]
    weights = batch["target_weights"].to(values.dtype)
    sums = values.new_zeros(2 * pairs).index_add(0, slot, values * weights)
    lengths = weights.new_zeros(2 * pairs).index_add(0, slot, weights)
    return PairScores(sums[:pairs], sums[pairs:], lengths[:pairs], lengths[pairs:])
