"""Shared reduction: a weighted sum divided by a normalizer the caller chooses.

Every token-level loss here returns ``sum_i(w_i * loss_i) / normalizer`` over the tokens it is
given. What the normalizer should be depends on who calls:

- Objectives and ``TrainingClient`` build ``LossInputs`` with ``normalizer=1`` (its default), so
  the registered losses return the SUM over the micro-batch; the training step then divides by
  the loss units of the whole optimizer step (all micro-batches and ranks). That keeps gradient
  accumulation and data parallelism equal to one big batch.
- The plain functions (``weighted_cross_entropy``, ``forward_kl``, ...) default to
  ``normalizer=None``: this batch's own total weight, ``loss_weights.sum()``, i.e. the weighted
  mean over the given tokens, like ``reduction="mean"`` in torch and TRL. That is right only when
  the batch is the whole step; pass ``1`` for the sum or the step's total weight otherwise.
- The pair-level losses (``dpo_loss``, ``bradley_terry_loss``) default to this batch's number of
  pairs in the same way.
"""

from __future__ import annotations

import torch
from torch import Tensor

from autotrain_pl.errors import AutotrainError

Normalizer = float | int | Tensor
"""A float, an int, or a 0-d tensor: the total weight the summed loss is divided by."""

_MIN_NORMALIZER = 1e-8


def _as_tensor(normalizer: Normalizer, like: Tensor) -> Tensor:
    """Turn an explicit normalizer into a clamped 0-d tensor with ``like``'s dtype and device."""
    if isinstance(normalizer, Tensor):
        if normalizer.numel() != 1:
            raise ValueError(f"normalizer must be a scalar, got shape {tuple(normalizer.shape)}")
        value = normalizer.detach().to(device=like.device, dtype=like.dtype).reshape(())
        return value.clamp_min(_MIN_NORMALIZER)
    if isinstance(normalizer, bool) or not isinstance(normalizer, int | float) or normalizer < 0:
        raise AutotrainError(
            f"normalizer={normalizer!r} must be a non-negative number: 1 for the sum, or the "
            "total loss weight of the optimizer step (summed over micro-batches and ranks)."
        )
    return torch.tensor(
        max(float(normalizer), _MIN_NORMALIZER), dtype=like.dtype, device=like.device
    )


def weighted_sum(per_token: Tensor, loss_weights: Tensor) -> Tensor:
    """``sum_i(w_i * loss_i)``; exactly 0 at zero-weight positions even if ``loss_i`` is inf/NaN."""
    if per_token.shape != loss_weights.shape:
        raise ValueError(
            f"loss_weights shape {tuple(loss_weights.shape)} does not match the per-token loss "
            f"shape {tuple(per_token.shape)}"
        )
    weights = loss_weights.to(per_token.dtype)
    weighted = torch.where(weights != 0, per_token * weights, torch.zeros_like(per_token))
    return weighted.sum()


def reduce_tokens(per_token: Tensor, loss_weights: Tensor, normalizer: Normalizer | None) -> Tensor:
    """``sum_i(w_i * loss_i) / normalizer``; ``None`` means this batch's ``loss_weights.sum()``.

    Normalizers are clamped at 1e-8 so that a step without any trained token gives 0, not NaN.
    """
    total = weighted_sum(per_token, loss_weights)
    if normalizer is None:
        return total / loss_weights.to(total.dtype).sum().clamp_min(_MIN_NORMALIZER)
    return total / _as_tensor(normalizer, total)


def reduce_pairs(per_pair: Tensor, normalizer: Normalizer | None) -> Tensor:
    """``sum_b(loss_b) / normalizer``; ``None`` means this batch's number of pairs."""
    total = per_pair.sum()
    if normalizer is None:
        return total / max(per_pair.numel(), 1)
    return total / _as_tensor(normalizer, total)


def compute_dtype(tensor: Tensor) -> torch.dtype:
    """The dtype losses compute in: float64 stays float64, everything else becomes float32.

    Half-precision log-softmax loses about two decimal digits, which is visible in KL terms and in
    PPO ratios, so all losses upcast.
    """
    return torch.float64 if tensor.dtype == torch.float64 else torch.float32
