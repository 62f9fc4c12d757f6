"""The GRPO family: group-relative advantages and every loss TRL 1.16's ``GRPOTrainer`` offers.

Inputs are ``[B, T]`` completion tensors: per-token log-probs of the current policy (with grad),
of the policy that sampled them (``old_logprobs``; ``None`` = on-policy) and of the reference,
plus a ``[B, T]`` completion mask and one advantage per completion. The formulas follow
``GRPOTrainer._compute_loss`` and the reward normalization of ``_generate_and_score_completions``
in TRL 1.16, checked against TRL's own code in ``tests/unit/losses/test_losses_trl_grpo.py``.

``grpo_loss`` returns a SUM and its normalization units, because the training core divides by the
units of the whole optimizer step (all micro-batches and ranks). With ``m`` the mask, ``l`` the
per-token loss (KL term included) and ``n_b = sum_t m_bt``, ``loss_sum / units`` is TRL's loss for
one batch with gradient_accumulation_steps=1 on one process:

- grpo, sapo: ``sum_b (sum_t m l) / max(n_b, 1)`` over B sequences (TRL: mean of sequence means);
- dapo, cispo, vespo: ``sum_bt m l`` over ``sum_b n_b`` tokens (TRL: ``num_items_in_batch``);
- bnpo: ``sum_bt m l`` over ``sum_b n_b`` tokens (TRL: the local batch's tokens);
- dr_grpo: ``sum_bt m l`` over ``B * max_completion_length``;
- luspo: ``sum_bt m l`` over B sequences (TRL: mean over sequences of length times loss).

Over several micro-batches, the step's ``sum(loss_sum) / sum(units)`` stays TRL's value for every
type but bnpo (TRL averages micro-batches of equal B, or divides dapo/cispo/vespo by the window's
tokens). TRL's bnpo averages per-micro-batch token means; here it is the token mean of the whole
step, i.e. bnpo equals dapo.

Not here: TRL's vLLM importance-sampling correction, off-policy sequence mask, entropy mask and
entropy bonus (they need inputs these functions do not take).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from autotrain_pl.errors import AutotrainError
from autotrain_pl.losses._checks import (
    check_choice,
    check_non_negative,
    check_number,
    check_positive,
)
from autotrain_pl.losses._reduction import compute_dtype
from autotrain_pl.losses.policy_gradient import (
    _log_ratio,
    per_token_ppo_clip_loss,
    per_token_ref_kl,
)

GRPO_LOSS_TYPES = ("grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo")
IMPORTANCE_SAMPLING_LEVELS = ("token", "sequence")
REWARD_SCALINGS = ("group", "batch", "none")
_CLIPPED_LOSS_TYPES = ("grpo", "dr_grpo", "dapo", "bnpo", "luspo")  # PPO's clipped surrogate
_SEQUENCE_MEAN_LOSS_TYPES = ("grpo", "sapo")
_TOKEN_SUM_LOSS_TYPES = ("dapo", "bnpo", "cispo", "vespo")
_ADVANTAGE_EPS = 1e-4  # TRL: (r - mean) / (std + 1e-4)
_VESPO_LOG_W_MIN = math.log(1e-8)  # TRL's clamp of the sequence log-weight
_VESPO_LOG_W_MAX = 20.0


def check_grpo_settings(
    *,
    loss_type: str = "dapo",
    epsilon_low: float = 0.2,
    epsilon_high: float | None = None,
    importance_sampling_level: str = "token",
    beta: float = 0.0,
    delta: float | None = None,
    sapo_temperature_pos: float = 1.0,
    sapo_temperature_neg: float = 1.05,
    vespo_k_pos: float = 2.0,
    vespo_lambda_pos: float = 3.0,
    vespo_k_neg: float = 3.0,
    vespo_lambda_neg: float = 2.0,
    max_completion_length: int | None = None,
    scale_rewards: str = "group",
) -> float:
    """Validate the GRPO settings before a step runs, so a typo fails in one line, not mid-fit.

    Beyond TRL (which only warns or silently accepts these), it refuses luspo at token level,
    vespo at sequence level (it ignores the level), a cispo ratio cap below 1 (TRL's default cap
    is ``epsilon``, 0.2, which scales every token down), ``delta`` where it has no effect or
    does not lie above the clip range.

    Messages name the fields as TRL and ``GRPOModule`` spell them (``model.epsilon`` for
    ``epsilon_low``).

    Returns:
        The upper clip epsilon in effect (``epsilon_high``, or ``epsilon_low`` when None).

    Raises:
        AutotrainError: naming the ``model.*`` field and how to fix it.
    """
    check_choice("model.loss_type", loss_type, GRPO_LOSS_TYPES, what="a GRPO loss type")
    level = check_choice(
        "model.importance_sampling_level",
        importance_sampling_level,
        IMPORTANCE_SAMPLING_LEVELS,
        what="an importance sampling level",
    )
    check_choice("model.scale_rewards", scale_rewards, REWARD_SCALINGS, what="a reward scaling")
    low = check_number("model.epsilon", epsilon_low)
    if not 0.0 <= low < 1.0:
        raise AutotrainError(f"model.epsilon={epsilon_low!r} must lie in [0, 1); GRPO uses 0.2")
    high = low if epsilon_high is None else check_non_negative(
        "model.epsilon_high", epsilon_high, hint="DAPO uses 0.28; null means model.epsilon"
    )
    if loss_type == "cispo" and high < 1.0:
        raise AutotrainError(
            f"model.epsilon_high={epsilon_high!r} is cispo's cap on the importance ratio and must "
            f"be >= 1 (ScaleRL uses 5.0); null falls back to model.epsilon={epsilon_low!r}"
        )
    if loss_type == "luspo" and level != "sequence":
        raise AutotrainError(
            "model.loss_type='luspo' needs model.importance_sampling_level='sequence' "
            "(LUSPO is GSPO's sequence loss scaled by the completion length)"
        )
    if loss_type == "vespo" and level != "token":
        raise AutotrainError(
            "model.importance_sampling_level='sequence' has no effect with model.loss_type='vespo' "
            "(it weights whole sequences itself); set it to 'token'"
        )
    check_non_negative("model.beta", beta, hint="0 disables the KL term; DeepSeek-R1 uses 0.001")
    if delta is not None:
        cap = check_number("model.delta", delta)
        if loss_type not in _CLIPPED_LOSS_TYPES:
            raise AutotrainError(
                f"model.delta={delta!r} has no effect with model.loss_type={loss_type!r}; set it "
                f"to null, or use one of {', '.join(_CLIPPED_LOSS_TYPES)}"
            )
        if cap <= 1.0 + high:
            raise AutotrainError(
                f"model.delta={delta!r} must be > 1 + model.epsilon_high ({1.0 + high:g}): it caps "
                "the ratio above the clip range (INTELLECT-2 uses 4); null disables it"
            )
    check_positive("model.sapo_temperature_pos", sapo_temperature_pos, hint="SAPO uses 1.0")
    check_positive("model.sapo_temperature_neg", sapo_temperature_neg, hint="SAPO uses 1.05")
    check_non_negative("model.vespo_k_pos", vespo_k_pos, hint="VESPO uses 2.0")
    check_positive("model.vespo_lambda_pos", vespo_lambda_pos, hint="VESPO uses 3.0")
    check_non_negative("model.vespo_k_neg", vespo_k_neg, hint="VESPO uses 3.0")
    check_positive("model.vespo_lambda_neg", vespo_lambda_neg, hint="VESPO uses 2.0")
    if loss_type == "dr_grpo" and (
        isinstance(max_completion_length, bool)
        or not isinstance(max_completion_length, int)
        or max_completion_length < 1
    ):
        raise AutotrainError(
            f"max_completion_length={max_completion_length!r} must be a positive integer for "
            "model.loss_type='dr_grpo', which divides by B * max_completion_length"
        )
    return high


# -- advantages -----------------------------------------------------------------------------------
def _grouped(rewards: Tensor, group_size: int) -> Tensor:
    """``[B]`` rewards as ``[B / G, G]`` in the compute dtype."""
    if rewards.dim() != 1:
        raise ValueError(f"rewards must be [B], got shape {tuple(rewards.shape)}")
    if group_size < 1 or rewards.numel() % group_size:
        raise ValueError(f"{rewards.numel()} rewards do not split into groups of {group_size}")
    return rewards.to(compute_dtype(rewards)).view(-1, group_size)


def _std(values: Tensor, dim: int | None = None) -> Tensor:
    """Bessel-corrected std (TRL's ``nanstd``), 0 where one value leaves it undefined."""
    count = values.numel() if dim is None else values.shape[dim]
    if count < 2:
        return values.new_zeros(()) if dim is None else values.new_zeros(values.shape[0])
    return values.std() if dim is None else values.std(dim=dim)


def zero_std_groups(rewards: Tensor, group_size: int) -> Tensor:
    """``[B / G]`` bool: groups whose rewards are all exactly equal (zero std).

    Such a group has no relative signal: its advantages are 0 and its samples can be skipped.
    The mean is TRL's ``frac_reward_zero_std`` (with ``scale_rewards`` "group" or "none") except
    where TRL's ``isclose(std, 0)`` misses an equal group: the float32 std of eight rewards of
    0.3 is 3e-8 from rounding, above ``isclose``'s 1e-8.
    """
    grouped = _grouped(rewards, group_size)
    return grouped.amax(dim=1) == grouped.amin(dim=1)


def group_advantages(rewards: Tensor, group_size: int, scale_rewards: str = "group") -> Tensor:
    """GRPO advantages: each reward minus its group's mean, optionally divided by a std.

    Groups are consecutive runs of ``group_size`` samples (the G completions of one prompt).
    ``scale_rewards``: "group" divides by the group's std (GRPO), "batch" by the std of all
    ``B`` rewards (PPO Lite), "none" not at all (Dr. GRPO); stds are Bessel-corrected and get TRL's
    ``+ 1e-4``. Groups that ``zero_std_groups`` reports get exactly 0, where TRL keeps the
    rounding residue of ``r - mean`` divided by ``std + 1e-4`` (up to 6e-4 for eight float32
    rewards of 0.7).

    Returns:
        ``[B]`` advantages in the compute dtype (float32, or float64 for float64 rewards).
    """
    check_choice("model.scale_rewards", scale_rewards, REWARD_SCALINGS, what="a reward scaling")
    grouped = _grouped(rewards, group_size)
    advantages = grouped - grouped.mean(dim=1, keepdim=True)
    if scale_rewards == "group":
        advantages = advantages / (_std(grouped, dim=1).unsqueeze(1) + _ADVANTAGE_EPS)
    elif scale_rewards == "batch":
        advantages = advantages / (_std(grouped.reshape(-1)) + _ADVANTAGE_EPS)
    equal = zero_std_groups(rewards, group_size).unsqueeze(1)
    return torch.where(equal, torch.zeros_like(advantages), advantages).reshape(-1)


def mask_truncated(completion_mask: Tensor, truncated: Tensor) -> Tensor:
    """Zero the mask of truncated completions (TRL's ``mask_truncated_completions``, DAPO).

    A completion cut at the length limit has no ending to be rewarded for, so it is left out of
    the loss instead of being penalized. ``truncated`` is ``[B]`` bool; the dtype is kept.
    """
    if truncated.shape != completion_mask.shape[:1]:
        raise ValueError(
            f"truncated shape {tuple(truncated.shape)} must be [B] for a completion mask of shape "
            f"{tuple(completion_mask.shape)}"
        )
    return completion_mask * (~truncated.bool()).unsqueeze(1).to(completion_mask.dtype)


# -- loss -----------------------------------------------------------------------------------------
def _masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """TRL's ``global_masked_mean``: over sequences for ``[B, 1]``, else over masked tokens."""
    if values.shape[-1] == 1:
        return values.sum() / values.shape[0]
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


@torch.no_grad()
def _vespo_weights(
    log_ratio: Tensor, mask: Tensor, advantages: Tensor, k: tuple[float, float],
    lam: tuple[float, float],
) -> Tensor:
    """VESPO's gamma weight ``phi(w) = exp(lambda) w^k exp(-lambda w)`` of the sequence ratio.

    ``w = exp(sum_t log_ratio)`` (a product, not GSPO's mean), clamped as TRL does;
    ``(k, lambda)`` is ``(k_pos, lambda_pos)`` for ``A >= 0``, else ``(k_neg, lambda_neg)``.
    ``phi(1) = 1``, and it only scales the gradient (no grad flows through it).
    """
    log_w = (log_ratio.clamp(-20.0, 20.0) * mask).sum(-1, keepdim=True)
    log_w = log_w.clamp(_VESPO_LOG_W_MIN, _VESPO_LOG_W_MAX)
    nonneg = advantages >= 0
    k_seq = torch.where(nonneg, log_w.new_tensor(k[0]), log_w.new_tensor(k[1]))
    lam_seq = torch.where(nonneg, log_w.new_tensor(lam[0]), log_w.new_tensor(lam[1]))
    lam_seq = lam_seq.clamp(min=1e-4)
    phi = torch.exp(lam_seq + k_seq * log_w - lam_seq * torch.exp(log_w))
    return phi.nan_to_num(nan=0.0, posinf=0.0, neginf=0.0)


def grpo_loss(
    logprobs: Tensor,
    old_logprobs: Tensor | None,
    advantages: Tensor,
    completion_mask: Tensor,
    *,
    loss_type: str = "dapo",
    epsilon_low: float = 0.2,
    epsilon_high: float | None = None,
    importance_sampling_level: str = "token",
    beta: float = 0.0,
    ref_logprobs: Tensor | None = None,
    use_bias_correction_kl: bool = True,
    delta: float | None = None,
    sapo_temperature_pos: float = 1.0,
    sapo_temperature_neg: float = 1.05,
    vespo_k_pos: float = 2.0,
    vespo_lambda_pos: float = 3.0,
    vespo_k_neg: float = 3.0,
    vespo_lambda_neg: float = 2.0,
    max_completion_length: int | None = None,
) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """The GRPO policy loss of one batch as ``(loss_sum, units, metrics)``, TRL 1.16's defaults.

    With ``r`` the importance weight ``exp(logp - old_logp)`` per token, or GSPO's
    ``exp(mean_t(logp - old_logp))`` per sequence at ``importance_sampling_level="sequence"``:

    - grpo, dr_grpo, dapo, bnpo, luspo: PPO's ``-min(r A, clip(r, 1 - eps_low, 1 + eps_high) A)``,
      with ``r`` capped at ``delta`` in the unclipped branch (INTELLECT-2's two-sided clip);
    - cispo: ``-sg(min(r, eps_high)) A logp`` (MiniMax-M1; ``eps_high`` is the ratio cap);
    - sapo: ``-sigmoid(tau (r - 1)) 4 / tau A``, ``tau`` by the sign of ``A`` (soft gate);
    - vespo: ``-sg(phi(w)) A logp`` with VESPO's gamma weight of the sequence ratio ``w``.

    ``beta > 0`` adds ``beta * k3(pi, pi_ref)`` per token, times ``r`` when
    ``use_bias_correction_kl`` (TRL's default, DeepSeek-V3.2). At ``r = 1`` (on-policy) every
    type's gradient is the plain policy gradient ``-A grad(logp)`` under its normalization. How
    ``loss_sum / units`` reproduces TRL per type: see the module docstring.

    Args:
        logprobs: ``[B, T]`` completion log-probs of the policy (with grad).
        old_logprobs: ``[B, T]`` of the sampling policy, or None for on-policy (ratio 1).
        advantages: ``[B]`` per completion (or ``[B, T]`` per token).
        completion_mask: ``[B, T]`` 1 at trained completion tokens; values elsewhere in the other
            inputs (padding, prompt, even inf) never reach the loss or its gradient.
        ref_logprobs: ``[B, T]`` of the reference; needed when ``beta > 0``.
        max_completion_length: dr_grpo's constant (the generation limit).

    Returns:
        ``(loss_sum, units, metrics)``: the loss is ``loss_sum / units``. Metrics are detached
        means over this batch, under TRL's names: ``clip_ratio/low_mean``, ``/high_mean``,
        ``/region_mean`` (clipped types), ``cispo_clip_ratio``, ``vespo/phi_seq_mean``, and ``kl``
        when ``beta > 0``.
    """
    high = check_grpo_settings(
        loss_type=loss_type,
        epsilon_low=epsilon_low,
        epsilon_high=epsilon_high,
        importance_sampling_level=importance_sampling_level,
        beta=beta,
        delta=delta,
        sapo_temperature_pos=sapo_temperature_pos,
        sapo_temperature_neg=sapo_temperature_neg,
        vespo_k_pos=vespo_k_pos,
        vespo_lambda_pos=vespo_lambda_pos,
        vespo_k_neg=vespo_k_neg,
        vespo_lambda_neg=vespo_lambda_neg,
        max_completion_length=max_completion_length,
    )
    if logprobs.dim() != 2 or completion_mask.shape != logprobs.shape:
        raise ValueError(
            f"logprobs {tuple(logprobs.shape)} and completion_mask {tuple(completion_mask.shape)} "
            "must both be [B, T]"
        )
    if beta != 0.0 and ref_logprobs is None:
        raise ValueError("grpo_loss: beta > 0 needs ref_logprobs, the reference's log-probs")
    dtype = compute_dtype(logprobs)
    mask = completion_mask.to(dtype)
    keep = mask != 0

    def completion_only(values: Tensor) -> Tensor:  # padding never reaches the arithmetic
        return torch.where(keep, values.to(dtype), 0.0)

    logprobs = completion_only(logprobs)
    old = None if old_logprobs is None else completion_only(old_logprobs.detach())
    adv = advantages.detach().to(dtype)
    adv = adv.unsqueeze(1) if adv.dim() == 1 else adv
    log_ratio = _log_ratio(logprobs, old)
    if importance_sampling_level == "sequence":
        log_weights = (log_ratio * mask).sum(-1, keepdim=True)
        log_weights = log_weights / mask.sum(-1, keepdim=True).clamp(min=1.0)
    else:
        log_weights = log_ratio
    ratio = torch.exp(log_weights)  # [B, T] or [B, 1]

    metrics: dict[str, Tensor] = {}
    if loss_type in _CLIPPED_LOSS_TYPES:
        if delta is not None:  # delta > 1 + eps_high, so capping r before the clip is TRL's rule
            log_weights = log_weights.clamp(max=math.log(delta))
        per_token = per_token_ppo_clip_loss(
            log_weights, torch.zeros_like(log_weights), adv, clip_eps=epsilon_low,
            clip_eps_high=high,
        )
        capped = torch.exp(log_weights.detach())
        low_clipped = (capped < 1 - epsilon_low) & (adv < 0)
        high_clipped = (capped > 1 + high) & (adv > 0)
        metrics["clip_ratio/low_mean"] = _masked_mean(low_clipped.to(dtype), mask)
        metrics["clip_ratio/high_mean"] = _masked_mean(high_clipped.to(dtype), mask)
        region = (low_clipped | high_clipped).to(dtype)
        metrics["clip_ratio/region_mean"] = _masked_mean(region, mask)
    elif loss_type == "cispo":
        per_token = -ratio.clamp(max=high).detach() * adv * logprobs
        clipped = (ratio.detach() > high) & (adv > 0)
        metrics["cispo_clip_ratio"] = _masked_mean(clipped.to(dtype), mask)
    elif loss_type == "sapo":
        tau = torch.where(adv > 0, adv.new_tensor(sapo_temperature_pos),
                          adv.new_tensor(sapo_temperature_neg))
        per_token = -torch.sigmoid(tau * (ratio - 1)) * 4 / tau * adv
    else:  # vespo
        phi = _vespo_weights(
            log_ratio, mask, adv, (vespo_k_pos, vespo_k_neg), (vespo_lambda_pos, vespo_lambda_neg)
        )
        per_token = -phi * adv * logprobs
        metrics["vespo/phi_seq_mean"] = _masked_mean(phi, mask)

    if beta != 0.0:
        kl = per_token_ref_kl(logprobs, completion_only(ref_logprobs.detach()))
        if use_bias_correction_kl:
            kl = kl * ratio
        per_token = per_token + beta * kl
        metrics["kl"] = _masked_mean(kl.detach(), mask)

    per_sequence = (per_token.expand_as(mask) * mask).sum(-1)
    sequences = float(mask.shape[0])
    if loss_type in _SEQUENCE_MEAN_LOSS_TYPES:
        loss_sum = (per_sequence / mask.sum(-1).clamp(min=1.0)).sum()
        units = torch.tensor(sequences, dtype=dtype, device=mask.device)
    elif loss_type in _TOKEN_SUM_LOSS_TYPES:
        loss_sum, units = per_sequence.sum(), mask.sum()
    elif loss_type == "dr_grpo":
        assert max_completion_length is not None  # check_grpo_settings guards
        loss_sum = per_sequence.sum()
        units = torch.tensor(sequences * max_completion_length, dtype=dtype, device=mask.device)
    else:  # luspo: each sequence's loss times its length, averaged over sequences
        loss_sum = per_sequence.sum()
        units = torch.tensor(sequences, dtype=dtype, device=mask.device)
    return loss_sum, units.detach(), {name: value.detach() for name, value in metrics.items()}
