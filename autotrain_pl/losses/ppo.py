"""The RLHF-PPO pieces besides the clipped surrogate: rewards, GAE, whitening, value loss, KL coef.

Inputs are padded per-token tensors ``[B, T]`` with a ``mask`` ``[B, T]`` that is non-zero at the
policy's own response tokens and 0 at prompt, environment/tool and padding tokens. Only masked
tokens are steps of the episode. The clipped policy surrogate is ``ppo_clip_loss`` and the k3 KL
is ``per_token_ref_kl`` (both in ``policy_gradient``); the entropy is ``entropy_from_logits``;
``ppo_loss`` adds them up for one update.
Formulas follow TRL's former ``PPOTrainer`` (the installed TRL 1.16 has none) except where noted.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

from autotrain_pl.errors import AutotrainError
from autotrain_pl.losses._checks import check_choice, check_non_negative, check_positive
from autotrain_pl.losses._reduction import Normalizer, compute_dtype, reduce_tokens
from autotrain_pl.losses.policy_gradient import per_token_ref_kl, ppo_clip_loss

KL_ESTIMATORS = ("k1", "k3")


def check_ppo_settings(
    *,
    gamma: float,
    lam: float,
    clip_range: float,
    clip_range_value: float | None,
    value_loss_coef: float,
    kl_coef: float,
    target_kl: float | None,
    kl_horizon: float,
    kl_estimator: str,
) -> None:
    """Validate the PPO settings before a step runs, so a typo fails in one line, not mid-fit.

    Raises:
        AutotrainError: naming the ``model.*`` field and how to fix it.
    """
    _check_unit("model.rl_gamma", gamma, "the usual discount is 0.99 (1.0 for short episodes)")
    _check_unit("model.rl_gae_lambda", lam, "the usual value is 0.95")
    if check_positive("model.rl_clip_range", clip_range, hint="PPO uses 0.2") >= 1:
        raise AutotrainError(f"model.rl_clip_range={clip_range!r} must be < 1; PPO uses 0.2")
    if clip_range_value is not None:
        check_positive(
            "model.rl_clip_range_value", clip_range_value, hint="TRL uses 0.2; null = no clip"
        )
    check_non_negative("model.rl_value_loss_coef", value_loss_coef, hint="the usual value is 1.0")
    check_non_negative("model.rl_kl_coef", kl_coef, hint="the usual value is 0.1 (0 = no KL)")
    if target_kl is not None:
        hint = "a per-sequence KL in nats (Ziegler et al. use 6); null = fixed rl_kl_coef"
        check_positive("model.rl_target_kl", target_kl, hint=hint)
    check_positive("model.rl_kl_horizon", kl_horizon, hint="Ziegler et al. use 10000 samples")
    check_choice("model.rl_kl_estimator", kl_estimator, KL_ESTIMATORS, what="a KL estimator")


def _check_unit(field: str, value: object, hint: str) -> None:
    if check_non_negative(field, value, hint=hint) > 1:
        raise AutotrainError(f"{field}={value!r} must lie in [0, 1]; {hint}")


def kl_penalized_rewards(
    scores: Tensor,
    logprobs: Tensor,
    ref_logprobs: Tensor,
    mask: Tensor,
    kl_coef: float,
    *,
    step_rewards: Tensor | None = None,
    kl_estimator: str = "k1",
) -> Tensor:
    """Per-token rewards of RLHF-PPO (Ziegler et al., 2019): a KL penalty plus the final score.

    Formula: ``r_t = -kl_coef * kl_t`` at every masked token, plus ``scores[b]`` at the last
    masked token of row ``b``, plus ``step_rewards`` where given. ``kl_t`` is ``logp - ref_logp``
    (``"k1"``, TRL's default; unbiased, can be negative) or ``per_token_ref_kl`` (``"k3"``).
    Putting the KL into the reward, rather than into the loss as GRPO does, lets the value head
    and GAE credit it to earlier tokens.

    Args:
        scores: ``[B]`` sequence scores (reward model or environment). A row without any masked
            token has nowhere to put its score, which is dropped.
        logprobs: ``[B, T]`` behaviour-policy log-probs of the sampled tokens; ``ref_logprobs``
            the frozen reference's.
        step_rewards: ``[B, T]`` rewards already placed at tokens (multi-turn environments),
            added as given; ``gae`` credits those at mask-0 tokens to the policy token before.

    Returns:
        ``[B, T]`` detached rewards, 0 at unmasked tokens apart from ``step_rewards``.
    """
    kl = per_token_kl(logprobs, ref_logprobs, kl_estimator)
    dtype = kl.dtype
    in_mask = mask != 0
    rewards = torch.where(in_mask, -kl_coef * kl, torch.zeros_like(kl))
    last = in_mask.shape[-1] - 1 - in_mask.flip(-1).to(torch.int8).argmax(dim=-1)
    placed = scores.detach().to(dtype) * in_mask.any(dim=-1)
    rewards = rewards.scatter_add(-1, last.unsqueeze(-1), placed.unsqueeze(-1))
    if step_rewards is not None:
        rewards = rewards + step_rewards.detach().to(dtype)
    return rewards


def per_token_kl(logprobs: Tensor, ref_logprobs: Tensor, kl_estimator: str = "k1") -> Tensor:
    """Detached per-token KL to the reference at the sampled tokens: ``logp - ref_logp``
    (``"k1"``) or ``per_token_ref_kl`` (``"k3"``); a sequence's sum over its tokens is the KL
    that ``AdaptiveKLController`` steers."""
    check_choice("kl_estimator", kl_estimator, KL_ESTIMATORS, what="a KL estimator")
    dtype = compute_dtype(logprobs)
    logprobs, ref_logprobs = logprobs.detach().to(dtype), ref_logprobs.detach().to(dtype)
    if kl_estimator == "k1":
        return logprobs - ref_logprobs
    return per_token_ref_kl(logprobs, ref_logprobs)


@torch.no_grad()
def gae(
    rewards: Tensor, values: Tensor, mask: Tensor, *, gamma: float = 0.99, lam: float = 0.95
) -> tuple[Tensor, Tensor]:
    """Generalized advantage estimation (Schulman et al., 2016) over the masked tokens only.

    Walking backwards over each row's masked tokens ``t_1 < ... < t_n``:
    ``delta_i = r_i + gamma * V(t_{i+1}) - V(t_i)`` and ``A_i = delta_i + gamma * lam * A_{i+1}``,
    with ``V(t_{n+1}) = A_{n+1} = 0`` (the episode ends after the last policy token). Mask-0
    tokens are not steps: a tool output between two turns is skipped, so the next value comes
    from the first policy token after it, without an extra discount. A reward sitting on a mask-0
    token (an environment reward placed on its observation) is credited to the last policy token
    before it; rewards before a row's first policy token have no action to credit and are dropped.
    ``lam=1`` gives the discounted reward-to-go minus ``V``; ``lam=0`` the one-step TD errors.

    Unlike TRL's ``PPOTrainer``, which walks every position and needs values zeroed at padding,
    this never reads a value at a mask-0 token; rewards there should be 0 unless meant as above.

    Returns:
        ``(advantages, returns)``, detached ``[B, T]``; ``returns = advantages + values`` is the
        value head's target. Both are 0 at mask-0 tokens.
    """
    dtype = compute_dtype(values)
    rewards, values = rewards.to(dtype), values.to(dtype)
    in_mask = mask != 0
    advantages = torch.zeros_like(values)
    next_value = values.new_zeros(values.shape[0])
    next_advantage = values.new_zeros(values.shape[0])
    pending_reward = values.new_zeros(values.shape[0])  # rewards on mask-0 tokens after this one
    for t in range(values.shape[1] - 1, -1, -1):
        step = in_mask[:, t]
        delta = rewards[:, t] + pending_reward + gamma * next_value - values[:, t]
        advantage = delta + gamma * lam * next_advantage
        advantages[:, t] = torch.where(step, advantage, 0.0)
        next_value = torch.where(step, values[:, t], next_value)
        next_advantage = torch.where(step, advantage, next_advantage)
        pending_reward = torch.where(step, 0.0, pending_reward + rewards[:, t])
    returns = torch.where(in_mask, advantages + values, 0.0)
    return advantages, returns


def whiten(values: Tensor, mask: Tensor, shift_mean: bool = True) -> Tensor:
    """Masked whitening: ``(x - mean) / sqrt(var + 1e-8)`` with statistics over masked entries.

    The variance is unbiased (Bessel-corrected), as TRL's ``masked_whiten`` does, so the two agree
    exactly. ``shift_mean=False`` adds the mean back (TRL's choice for whitening rewards: the scale
    is normalised but the sign of the mean reward survives). Entries with mask 0 are returned
    unchanged, so zero advantages at padding stay zero. With fewer than two masked entries there
    is no spread to estimate: the masked entries become 0 (``shift_mean=False``: the mean).
    """
    in_mask = mask != 0
    weights = in_mask.to(values.dtype)
    count = weights.sum()
    mean = (values * weights).sum() / count.clamp_min(1)
    variance = ((values - mean).square() * weights).sum() / (count - 1).clamp_min(1)
    whitened = (values - mean) * torch.rsqrt(variance + 1e-8)
    if not shift_mean:
        whitened = whitened + mean
    return torch.where(in_mask, whitened, values)


def value_loss(
    values: Tensor,
    old_values: Tensor,
    returns: Tensor,
    mask: Tensor,
    *,
    clip_range_value: float | None = 0.2,
    normalizer: Normalizer | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """PPO's clipped value loss, reduced as ``sum_i w_i * loss_i / normalizer`` (``reduce_tokens``).

    Formula: ``v_clip = old_v + clip(v - old_v, -eps, eps)``,
    ``loss = 0.5 * max((v - R)^2, (v_clip - R)^2)``. The clip keeps the value head, like the
    policy, from moving far from where it was at sampling time in one batch of epochs; ``eps`` is
    in reward units. ``clip_range_value=None`` gives the plain ``0.5 * (v - R)^2``.

    Args:
        values: ``[B, T]`` current value predictions (with grad).
        old_values: ``[B, T]`` values at sampling time; ``returns`` the GAE targets. Both detached.
        mask: ``[B, T]`` loss weights (the policy-token mask).

    Returns:
        ``(loss, metrics)``. Metrics are detached, over this batch's masked tokens:
        ``value_clip_fraction``, the weighted share of tokens where the clipped branch is larger
        (its gradient is zero), and ``explained_variance``, ``1 - Var(R - v) / Var(R)`` (1 for a
        perfect value head, 0 for a constant one; NaN when ``Var(R) = 0``).
    """
    dtype = compute_dtype(values)
    values = values.to(dtype)
    old_values, returns = old_values.detach().to(dtype), returns.detach().to(dtype)
    unclipped = (values - returns).square()
    if clip_range_value is None:
        per_token = 0.5 * unclipped
        clipped_branch = torch.zeros_like(unclipped, dtype=torch.bool)
    else:
        delta = torch.clamp(values - old_values, -clip_range_value, clip_range_value)
        clipped = (old_values + delta - returns).square()
        per_token = 0.5 * torch.maximum(unclipped, clipped)
        clipped_branch = clipped > unclipped
    loss = reduce_tokens(per_token, mask, normalizer)
    with torch.no_grad():
        weights = mask.to(dtype)
        total = weights.sum().clamp_min(1e-8)
        metrics = {
            "value_clip_fraction": (clipped_branch.to(dtype) * weights).sum() / total,
            "explained_variance": explained_variance(values.detach(), returns, mask),
        }
    return loss, metrics


def explained_variance(values: Tensor, returns: Tensor, mask: Tensor) -> Tensor:
    """``1 - Var(R - v) / Var(R)`` over the masked tokens: 1 for a value head that predicts the
    returns, 0 for a constant one, negative for a worse one; NaN when ``Var(R) = 0``."""
    in_mask = (mask != 0).to(compute_dtype(values))
    values, returns = values.detach().to(in_mask.dtype), returns.detach().to(in_mask.dtype)
    return_variance = _masked_variance(returns, in_mask)
    unexplained = _masked_variance(returns - values, in_mask) / return_variance
    return torch.where(return_variance > 0, 1.0 - unexplained, torch.nan)


def ppo_loss(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    values: Tensor,
    old_values: Tensor,
    returns: Tensor,
    mask: Tensor,
    *,
    clip_range: float = 0.2,
    clip_range_value: float | None = 0.2,
    value_loss_coef: float = 1.0,
    entropy: Tensor | None = None,
    entropy_coef: float = 0.0,
    normalizer: Normalizer | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """RLHF-PPO's loss on one mini-batch: clipped surrogate, clipped value loss, entropy bonus.

    Formula: ``ppo_clip_loss + value_loss_coef * value_loss - entropy_coef * H``, each term
    reduced as ``sum_i w_i * x_i / normalizer`` over the same tokens, so a policy on a shared trunk
    and its value head get one gradient (Schulman et al., 2017, eq. 9).

    Args:
        logprobs, values: ``[...]`` current log-probs and values (with grad); ``old_logprobs``,
            ``old_values`` theirs at sampling time, ``advantages`` (whitened) and ``returns``
            (GAE), all detached.
        mask: loss weights of the policy's tokens.
        entropy: per-token policy entropy (with grad when ``entropy_coef`` > 0); None: none.

    Returns:
        ``(loss, metrics)``: ``policy_loss``, ``value_loss`` and ``entropy`` reduced like the
        loss, and the weighted means over this batch's tokens ``clip_fraction``, ``approx_kl``
        (of ``ppo_clip_loss``) and ``value_clip_fraction``; all detached.
    """
    policy, policy_metrics = ppo_clip_loss(logprobs, old_logprobs, advantages, mask,
                                           clip_eps=clip_range, normalizer=normalizer)
    value, value_metrics = value_loss(values, old_values, returns, mask,
                                      clip_range_value=clip_range_value, normalizer=normalizer)
    loss = policy + value_loss_coef * value
    metrics = {"policy_loss": policy.detach(), "value_loss": value.detach(),
               "clip_fraction": policy_metrics["clip_fraction"],
               "approx_kl": policy_metrics["approx_kl"],
               "value_clip_fraction": value_metrics["value_clip_fraction"]}
    if entropy is not None:
        bonus = reduce_tokens(entropy, mask, normalizer)
        loss = loss - entropy_coef * bonus
        metrics["entropy"] = bonus.detach()
    return loss, metrics


def _masked_variance(values: Tensor, in_mask: Tensor) -> Tensor:
    """Population variance over the entries where ``in_mask`` is 1, without a host sync."""
    count = in_mask.sum().clamp_min(1)
    mean = (values * in_mask).sum() / count
    return ((values - mean).square() * in_mask).sum() / count


class KLController(Protocol):
    """Holds the KL coefficient ``value`` that ``kl_penalized_rewards`` reads each rollout."""

    value: float

    def update(self, current_kl: float | Tensor, n_steps: int) -> None:
        """Adjust ``value`` after a rollout batch of ``n_steps`` sequences."""


class FixedKLController:
    """A constant KL coefficient."""

    def __init__(self, kl_coef: float) -> None:
        self.value = float(kl_coef)

    def update(self, current_kl: float | Tensor, n_steps: int) -> None:
        """Keep the coefficient."""


class AdaptiveKLController:
    """Ziegler et al. (2019)'s proportional controller that steers the KL towards ``target``.

    Formula: ``e = clip(KL / target - 1, -0.2, 0.2)``, ``value *= 1 + e * n_steps / horizon``.
    ``KL`` is the batch mean of the per-sequence summed KL (nats), the same scale as ``target``
    (6 in the paper). ``n_steps`` is the number of sequences in the batch, over all ranks, so that
    ``horizon`` counts samples: a persistent 20% error changes the coefficient by about a factor
    ``e^0.2`` per ``horizon`` samples. The clip keeps one outlying batch from swinging it.
    """

    def __init__(self, init_kl_coef: float, target: float, horizon: float) -> None:
        self.value = float(init_kl_coef)
        self.target = float(target)
        self.horizon = float(horizon)

    def update(self, current_kl: float | Tensor, n_steps: int) -> None:
        """Scale ``value`` up when ``current_kl`` exceeds the target and down when it is below."""
        error = min(max(float(current_kl) / self.target - 1.0, -0.2), 0.2)
        self.value *= 1.0 + error * n_steps / self.horizon


def build_kl_controller(kl_coef: float, target_kl: float | None, horizon: float) -> KLController:
    """``AdaptiveKLController`` when ``target_kl`` is set, else ``FixedKLController(kl_coef)``."""
    if target_kl is None:
        return FixedKLController(kl_coef)
    return AdaptiveKLController(kl_coef, target_kl, horizon)
