"""KTO: preference learning from unpaired thumbs-up / thumbs-down examples, as in TRL 1.16.

Each example is one completion with a bool label (True = desirable) and its policy and reference
log-probs summed over completion tokens. The formulas follow ``KTOTrainer._compute_loss`` of
TRL 1.16, checked against TRL's own code in ``tests/unit/losses/test_losses_trl.py``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from autotrain_pl.losses._checks import check_choice, check_positive
from autotrain_pl.losses._reduction import Normalizer, compute_dtype, reduce_pairs

KTO_LOSS_TYPES = ("kto", "apo_zero_unpaired")


def check_kto_settings(
    *, beta: float, desirable_weight: float, undesirable_weight: float, loss_type: str
) -> None:
    """Validate KTO settings before a step runs.

    Raises:
        AutotrainError: naming the ``model.*`` field and how to fix it.
    """
    check_choice("model.loss_type", loss_type, KTO_LOSS_TYPES, what="a KTO loss type")
    check_positive("model.beta", beta, hint="KTO's usual value is 0.1")
    hint = "weigh the rarer label up so that weight x count is about equal for both labels"
    check_positive("model.desirable_weight", desirable_weight, hint=hint)
    check_positive("model.undesirable_weight", undesirable_weight, hint=hint)


def kto_loss(
    policy_logps: Tensor,
    ref_logps: Tensor,
    labels: Tensor,
    policy_kl_logps: Tensor | None = None,
    ref_kl_logps: Tensor | None = None,
    *,
    beta: float = 0.1,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
    loss_type: str = "kto",
    normalizer: Normalizer | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Kahneman-Tversky Optimization (Ethayarajh et al., 2024) and unpaired APO-zero.

    With ``rho = logp - ref_logp`` and the batch KL estimate
    ``z = clamp(mean(policy_kl_logps - ref_kl_logps), min=0)`` (detached; the KL log-probs score
    each prompt with a mismatched completion), ``kto`` is ``w_d (1 - sigmoid(beta (rho - z)))``
    for desirable examples and ``w_u (1 - sigmoid(beta (z - rho)))`` for undesirable ones;
    ``apo_zero_unpaired`` drops ``z``: ``w_d (1 - sigmoid(beta rho))`` and
    ``w_u sigmoid(beta rho)``. Without the KL log-probs ``z = 0``. Under data parallelism TRL
    averages ``z`` over ranks; pass the KL log-probs gathered from all ranks to match that.

    Args:
        policy_logps: ``[B]`` summed completion log-probs; ``ref_logps`` likewise.
        labels: ``[B]`` bool, True for desirable.
        policy_kl_logps: ``[B_kl]`` log-probs of the mismatched KL completions; with
            ``ref_kl_logps``, or both None.
        normalizer: ``None``: this batch's B (the mean, TRL's value); ``1``: the sum.

    Returns:
        ``(loss, metrics)``; metrics are detached ``[B]`` tensors for the caller to sum over
        examples: ``rewards/chosen_sum`` (``beta * rho`` where desirable, else 0),
        ``logps/chosen_sum``, ``count/chosen`` (1/0), the same three ``*rejected*`` ones, and
        ``kl`` (``z`` repeated). TRL's logged values are ``rewards/chosen = sum(rewards/chosen_sum)
        / sum(count/chosen)`` (only when the count is > 0), ``logps/chosen`` likewise, the same
        for rejected, ``rewards/margins = rewards/chosen - rewards/rejected`` (both counts > 0)
        and ``kl = mean(kl)``.
    """
    check_kto_settings(
        beta=beta,
        desirable_weight=desirable_weight,
        undesirable_weight=undesirable_weight,
        loss_type=loss_type,
    )
    if (policy_kl_logps is None) != (ref_kl_logps is None):
        raise ValueError("kto_loss: pass policy_kl_logps and ref_kl_logps together, or neither")
    dtype = compute_dtype(policy_logps)
    logps = policy_logps.to(dtype)
    desirable = labels.to(device=logps.device, dtype=torch.bool)
    logratios = logps - ref_logps.detach().to(dtype)
    if policy_kl_logps is not None and ref_kl_logps is not None:
        kl_gap = policy_kl_logps.detach().to(dtype) - ref_kl_logps.detach().to(dtype)
        kl = kl_gap.mean().clamp(min=0)
    else:
        kl = torch.zeros((), dtype=dtype, device=logps.device)
    if loss_type == "kto":  # eq. 7 of the KTO paper
        desirable_losses = 1 - torch.sigmoid(beta * (logratios - kl))
        undesirable_losses = 1 - torch.sigmoid(beta * (kl - logratios))
    else:  # apo_zero_unpaired: eq. 7 of the APO paper, per example
        desirable_losses = 1 - torch.sigmoid(beta * logratios)
        undesirable_losses = torch.sigmoid(beta * logratios)
    per_example = torch.where(
        desirable, desirable_weight * desirable_losses, undesirable_weight * undesirable_losses
    )
    loss = reduce_pairs(per_example, normalizer)
    with torch.no_grad():
        rewards = beta * logratios.detach()
        zeros = torch.zeros_like(rewards)
        detached_logps = logps.detach()
        metrics = {
            "rewards/chosen_sum": torch.where(desirable, rewards, zeros),
            "logps/chosen_sum": torch.where(desirable, detached_logps, zeros),
            "count/chosen": desirable.to(dtype),
            "rewards/rejected_sum": torch.where(desirable, zeros, rewards),
            "logps/rejected_sum": torch.where(desirable, zeros, detached_logps),
            "count/rejected": (~desirable).to(dtype),
            "kl": kl.expand_as(rewards).clone(),
        }
    return loss, metrics
