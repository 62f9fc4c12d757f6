"""Pair-level preference losses: the DPO family and the Bradley-Terry reward-model loss.

Inputs are per-pair tensors ``[B]``: sequence log-probabilities (summed over completion tokens) for
DPO, scalar rewards for Bradley-Terry. Losses reduce as ``sum_b(loss_b) / normalizer``;
``normalizer=None`` (the default) is this batch's number of pairs B, the mean. Pass ``1`` for the
sum, or the number of pairs in the whole optimizer step, for exact gradient accumulation. The formulas mirror TRL 1.16 (``DPOTrainer._compute_loss`` with
``f_divergence_type="reverse_kl"``, and ``RewardTrainer.compute_loss``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from autotrain_pl.errors import AutotrainError
from autotrain_pl.losses._reduction import Normalizer, reduce_pairs

DPO_LOSS_TYPES = ("sigmoid", "ipo", "hinge", "robust")


def _check_dpo_args(beta: float, loss_type: str, label_smoothing: float) -> None:
    if loss_type not in DPO_LOSS_TYPES:
        raise AutotrainError(
            f"loss_type={loss_type!r} is not supported; use one of {DPO_LOSS_TYPES}."
        )
    if isinstance(beta, bool) or not beta > 0:
        raise AutotrainError(f"beta={beta!r} must be > 0; DPO's usual value is 0.1.")
    if loss_type == "robust" and not 0.0 <= label_smoothing < 0.5:
        raise AutotrainError(
            f"label_smoothing={label_smoothing!r} must lie in [0, 0.5) for loss_type='robust' "
            "(it is the label-flip probability; 0.1 is typical)."
        )
    if loss_type == "sigmoid" and not 0.0 <= label_smoothing <= 0.5:
        raise AutotrainError(
            f"label_smoothing={label_smoothing!r} must lie in [0, 0.5] for loss_type='sigmoid'."
        )
    if loss_type in ("ipo", "hinge") and label_smoothing != 0.0:
        raise AutotrainError(
            f"label_smoothing={label_smoothing!r} has no effect with loss_type={loss_type!r}; "
            "set it to 0 or use loss_type 'sigmoid' (cDPO) or 'robust'."
        )


def dpo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    *,
    beta: float = 0.1,
    loss_type: str = "sigmoid",
    label_smoothing: float = 0.0,
    normalizer: Normalizer | None = None,
    chosen_lengths: Tensor | None = None,
    rejected_lengths: Tensor | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Direct Preference Optimization loss and its reward metrics.

    With ``rho_c = logp_c - ref_logp_c``, ``rho_r = logp_r - ref_logp_r``, ``d = rho_c - rho_r``
    and ``eps = label_smoothing``:

    - ``sigmoid`` (Rafailov et al., 2023): ``-logsigmoid(beta d)``; with ``eps > 0`` it is cDPO,
      ``-(1 - eps) logsigmoid(beta d) - eps logsigmoid(-beta d)`` (the sigmoid formula of
      older TRL releases; TRL 1.16 ignores ``eps`` for sigmoid, so both agree at ``eps = 0``).
    - ``hinge`` (SLiC): ``relu(1 - beta d)``.
    - ``ipo`` (Azar et al., 2023): ``(d_avg - 1 / (2 beta))^2`` where ``d_avg`` uses
      length-averaged log-ratios ``rho / n``. Pass ``chosen_lengths``/``rejected_lengths``
      (completion token counts, clamped at 1) to average here, as TRL 1.16 does; without them
      the inputs are taken to be averages already.
    - ``robust`` (Chowdhury et al., 2024):
      ``(-(1 - eps) logsigmoid(beta d) + eps logsigmoid(-beta d)) / (1 - 2 eps)``,
      unbiased under label flips with probability ``eps``.

    Returns:
        ``(loss, metrics)`` with detached batch means ``rewards/chosen`` (``beta rho_c``),
        ``rewards/rejected``, ``rewards/accuracies`` (share with ``rho_c > rho_r``) and
        ``rewards/margins``, named as TRL logs them.
    """
    _check_dpo_args(beta, loss_type, label_smoothing)
    chosen_logratios = policy_chosen_logps - ref_chosen_logps.detach()
    rejected_logratios = policy_rejected_logps - ref_rejected_logps.detach()
    delta = chosen_logratios - rejected_logratios
    eps = label_smoothing
    if loss_type == "sigmoid":
        per_pair = -(1.0 - eps) * F.logsigmoid(beta * delta)
        if eps > 0.0:
            per_pair = per_pair - eps * F.logsigmoid(-beta * delta)
    elif loss_type == "hinge":
        per_pair = torch.relu(1.0 - beta * delta)
    elif loss_type == "ipo":
        chosen_avg, rejected_avg = chosen_logratios, rejected_logratios
        if chosen_lengths is not None:
            chosen_avg = chosen_avg / chosen_lengths.to(chosen_avg.dtype).clamp(min=1.0)
        if rejected_lengths is not None:
            rejected_avg = rejected_avg / rejected_lengths.to(rejected_avg.dtype).clamp(min=1.0)
        per_pair = (chosen_avg - rejected_avg - 1.0 / (2.0 * beta)) ** 2
    else:  # robust
        clean = -(1.0 - eps) * F.logsigmoid(beta * delta)
        flipped = -eps * F.logsigmoid(-beta * delta)
        per_pair = (clean - flipped) / (1.0 - 2.0 * eps)
    loss = reduce_pairs(per_pair, normalizer)
    with torch.no_grad():
        chosen_rewards = beta * chosen_logratios.detach()
        rejected_rewards = beta * rejected_logratios.detach()
        metrics = {
            "rewards/chosen": chosen_rewards.mean(),
            "rewards/rejected": rejected_rewards.mean(),
            "rewards/accuracies": (chosen_rewards > rejected_rewards).float().mean(),
            "rewards/margins": (chosen_rewards - rejected_rewards).mean(),
        }
    return loss, metrics


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
