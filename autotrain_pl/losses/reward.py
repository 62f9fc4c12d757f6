"""The Bradley-Terry pairwise loss that trains reward models, as in TRL's ``RewardTrainer``.

Inputs are per-pair scalar rewards ``[B]``; the loss reduces as ``sum_b(loss_b) / normalizer``
(``None``: this batch's B, the mean; ``1``: the sum).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from autotrain_pl.losses._reduction import Normalizer, reduce_pairs


def bradley_terry_loss(
    chosen_rewards: Tensor,
    rejected_rewards: Tensor,
    *,
    margin: Tensor | float | None = None,
    normalizer: Normalizer | None = None,
    center_rewards_coefficient: float | None = None,
) -> Tensor:
    """Bradley-Terry pairwise reward-model loss, as in TRL's ``RewardTrainer``.

    Formula: ``-logsigmoid(r_c - r_r - m)`` per pair, i.e. the negative log-likelihood that the
    chosen answer wins; the optional ``margin`` ``m`` (Llama 2) demands a larger gap for clearer
    preferences. ``center_rewards_coefficient`` ``c`` adds ``c * (r_c + r_r)^2`` per pair
    (Eisenstein et al., 2023) to keep rewards centred at 0.
    """
    if chosen_rewards.shape != rejected_rewards.shape:
        raise ValueError(
            f"chosen_rewards shape {tuple(chosen_rewards.shape)} != rejected_rewards shape "
            f"{tuple(rejected_rewards.shape)}"
        )
    gap = chosen_rewards - rejected_rewards
    if margin is not None:
        gap = gap - torch.as_tensor(margin, dtype=gap.dtype, device=gap.device)
    per_pair = -F.logsigmoid(gap)
    if center_rewards_coefficient is not None:
        per_pair = per_pair + center_rewards_coefficient * (chosen_rewards + rejected_rewards) ** 2
    return reduce_pairs(per_pair, normalizer)
