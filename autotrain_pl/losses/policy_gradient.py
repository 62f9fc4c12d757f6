"""Policy-gradient surrogate losses on per-token log-probabilities (PPO, GRPO, IS, KL penalty).

Inputs are flat per-token tensors: ``logprobs`` ``[N]`` of the current policy (with grad),
``old_logprobs`` ``[N]`` of the policy that sampled the tokens, ``advantages`` broadcastable to
``[N]`` (usually one value per sequence repeated over its tokens) and ``loss_weights`` ``[N]``.
``old_logprobs``, ``ref_logprobs`` and ``advantages`` are constants of the surrogate and are
detached here. Losses reduce as ``sum_i(w_i * loss_i) / normalizer``; ``normalizer=None`` (the
default) is this batch's ``loss_weights.sum()``, ``1`` gives the sum (see ``_reduction``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from autotrain_pl.errors import AutotrainError
from autotrain_pl.losses._reduction import Normalizer, reduce_tokens


def _log_ratio(logprobs: Tensor, old_logprobs: Tensor | None) -> Tensor:
    if old_logprobs is None:  # on-policy: ratio is 1 but still carries the gradient of logprobs
        return logprobs - logprobs.detach()
    return logprobs - old_logprobs.detach().to(logprobs.dtype)


def per_token_importance_sampling_loss(
    logprobs: Tensor, old_logprobs: Tensor | None, advantages: Tensor | float
) -> Tensor:
    """Unreduced importance-sampled policy gradient: ``-exp(logp - old_logp) * A``.

    Its gradient is ``-(pi / pi_old) * A * grad(log pi)``, the off-policy-corrected REINFORCE
    estimator. ``old_logprobs=None`` means on-policy (ratio 1, plain REINFORCE).
    """
    advantages = torch.as_tensor(advantages, dtype=logprobs.dtype, device=logprobs.device)
    return -torch.exp(_log_ratio(logprobs, old_logprobs)) * advantages.detach()


def importance_sampling_loss(
    logprobs: Tensor,
    old_logprobs: Tensor | None,
    advantages: Tensor | float,
    loss_weights: Tensor,
    *,
    normalizer: Normalizer | None = None,
) -> Tensor:
    """Weighted IS loss: ``sum_i w_i * -exp(logp_i - old_logp_i) * A_i / normalizer``."""
    per_token = per_token_importance_sampling_loss(logprobs, old_logprobs, advantages)
    return reduce_tokens(per_token, loss_weights, normalizer)


def _check_clip(clip_eps: float, clip_eps_high: float | None) -> float:
    if isinstance(clip_eps, bool) or not 0.0 <= clip_eps < 1.0:
        raise AutotrainError(f"clip_eps={clip_eps!r} must lie in [0, 1); PPO's usual value is 0.2.")
    if clip_eps_high is None:
        return clip_eps
    if isinstance(clip_eps_high, bool) or not clip_eps_high >= 0.0:
        raise AutotrainError(
            f"clip_eps_high={clip_eps_high!r} must be >= 0 (DAPO uses 0.28); None = clip_eps."
        )
    return clip_eps_high


def per_token_ppo_clip_loss(
    logprobs: Tensor,
    old_logprobs: Tensor | None,
    advantages: Tensor | float,
    *,
    clip_eps: float = 0.2,
    clip_eps_high: float | None = None,
) -> Tensor:
    """Unreduced PPO clipped surrogate (Schulman et al., 2017), with DAPO's asymmetric clip.

    Formula: ``r = exp(logp - old_logp)``,
    ``loss = -min(r * A, clip(r, 1 - eps_low, 1 + eps_high) * A)``. The clip removes the incentive
    to move the ratio further than ``eps`` from 1 in the direction the advantage favours, which
    keeps several optimisation epochs on one batch of samples stable.
    """
    high = _check_clip(clip_eps, clip_eps_high)
    advantages = torch.as_tensor(advantages, dtype=logprobs.dtype, device=logprobs.device).detach()
    ratio = torch.exp(_log_ratio(logprobs, old_logprobs))
    clipped = torch.clamp(ratio, 1.0 - clip_eps, 1.0 + high)
    return -torch.minimum(ratio * advantages, clipped * advantages)


def ppo_clip_loss(
    logprobs: Tensor,
    old_logprobs: Tensor | None,
    advantages: Tensor | float,
    loss_weights: Tensor,
    *,
    clip_eps: float = 0.2,
    clip_eps_high: float | None = None,
    normalizer: Normalizer | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Weighted PPO clipped loss: ``sum_i w_i * loss_i / normalizer``.

    ``loss_i`` is ``per_token_ppo_clip_loss``.

    Returns:
        ``(loss, metrics)``. Metrics are detached weighted means over this batch's tokens:
        ``clip_fraction``, the share of tokens whose clipped branch is active (zero gradient:
        ``r < 1 - eps_low`` with ``A < 0`` or ``r > 1 + eps_high`` with ``A > 0``), and
        ``approx_kl``, the k3 estimator ``E[(r - 1) - log r]`` of ``KL(pi_old || pi)``.
    """
    high = _check_clip(clip_eps, clip_eps_high)
    per_token = per_token_ppo_clip_loss(
        logprobs, old_logprobs, advantages, clip_eps=clip_eps, clip_eps_high=clip_eps_high
    )
    loss = reduce_tokens(per_token, loss_weights, normalizer)
    with torch.no_grad():
        log_ratio = _log_ratio(logprobs, old_logprobs).detach()
        ratio = torch.exp(log_ratio)
        adv = torch.as_tensor(advantages, dtype=ratio.dtype, device=ratio.device).expand_as(ratio)
        clipped = ((ratio < 1.0 - clip_eps) & (adv < 0)) | ((ratio > 1.0 + high) & (adv > 0))
        weights = loss_weights.to(ratio.dtype)
        total = weights.sum().clamp_min(1e-8)
        metrics = {
            "clip_fraction": (clipped.to(ratio.dtype) * weights).sum() / total,
            "approx_kl": (((ratio - 1.0) - log_ratio) * weights).sum() / total,
        }
    return loss, metrics


def per_token_ref_kl(logprobs: Tensor, ref_logprobs: Tensor) -> Tensor:
    """Unreduced k3 estimate of ``KL(pi || pi_ref)`` at sampled tokens (as in GRPO / TRL).

    Formula: ``exp(ref_logp - logp) - (ref_logp - logp) - 1``; non-negative, unbiased for tokens
    sampled from ``pi``, and low-variance compared with ``logp - ref_logp``.
    """
    delta = ref_logprobs.detach().to(logprobs.dtype) - logprobs
    return torch.exp(delta) - delta - 1.0


def ref_kl_penalty(
    logprobs: Tensor,
    ref_logprobs: Tensor,
    loss_weights: Tensor,
    *,
    normalizer: Normalizer | None = None,
) -> Tensor:
    """Weighted KL-to-reference penalty: ``sum_i w_i * k3_i / normalizer`` (GRPO's beta term)."""
    return reduce_tokens(per_token_ref_kl(logprobs, ref_logprobs), loss_weights, normalizer)
