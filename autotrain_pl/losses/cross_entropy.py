"""Token-level likelihood losses: weighted cross-entropy, focal loss, entropy.

All reduce as ``sum_i(w_i * loss_i) / normalizer`` (see ``_reduction``), where ``w`` are the
per-token loss weights from rendering. ``normalizer=None`` (the default) is this batch's own total
weight, the weighted mean; pass ``1`` for the sum, or the step's total weight.
"""

from __future__ import annotations

import torch
from torch import Tensor

from autotrain_pl.errors import AutotrainError
from autotrain_pl.losses._reduction import Normalizer, compute_dtype, reduce_tokens
from autotrain_pl.losses.logprobs import entropy_from_logits, selective_log_softmax


def per_token_cross_entropy(
    logits: Tensor,
    labels: Tensor,
    *,
    label_smoothing: float = 0.0,
    ignore_index: int = -100,
) -> Tensor:
    """Unreduced cross-entropy, identical per token to ``F.cross_entropy(reduction="none")``.

    Formula: ``(1 - eps) * (-log p_y) + eps * (-(1/V) * sum_v log p_v)`` with ``eps`` the label
    smoothing, which is what ``torch.nn.functional.cross_entropy(label_smoothing=eps)`` computes.
    The smoothing term is evaluated as ``logsumexp(x) - mean_v(x_v)``, so no ``[N, V]``
    log-softmax is built. Positions whose label equals ``ignore_index`` give 0.

    Returns:
        ``labels.shape`` float32 losses (float64 for float64 logits).
    """
    if not 0.0 <= label_smoothing <= 1.0:
        raise AutotrainError(
            f"label_smoothing={label_smoothing!r} must lie in [0, 1]; 0 disables it."
        )
    ignored = labels == ignore_index
    safe_labels = labels.masked_fill(ignored, 0).long()
    label_logprobs = selective_log_softmax(logits, safe_labels)
    loss = -label_logprobs
    if label_smoothing > 0.0:
        dtype = compute_dtype(logits)
        label_logits = logits.gather(-1, safe_labels.unsqueeze(-1)).squeeze(-1).to(dtype)
        log_normalizer = label_logits - label_logprobs  # logsumexp(x)
        smooth = log_normalizer - logits.mean(dim=-1, dtype=dtype)
        loss = (1.0 - label_smoothing) * loss + label_smoothing * smooth
    return loss.masked_fill(ignored, 0.0)


def weighted_cross_entropy(
    logits: Tensor,
    labels: Tensor,
    loss_weights: Tensor,
    *,
    normalizer: Normalizer | None = None,
    label_smoothing: float = 0.0,
    ignore_index: int = -100,
) -> Tensor:
    """Weighted next-token cross-entropy, the SFT loss.

    Formula: ``sum_i w_i * CE_i / normalizer`` with ``CE_i`` from ``per_token_cross_entropy``.
    Fractional weights let rendering down-weight messages; a normalizer shared by all
    micro-batches of a step keeps gradient accumulation exact (an uneven split into micro-batches
    gives the same gradient).

    Args:
        logits: ``[N, V]`` (or ``[..., V]``) logits at the trained positions.
        labels: ``[N]`` next-token ids.
        loss_weights: ``[N]`` float weights, 0 = not trained.
        normalizer: What the weighted sum is divided by: ``None`` (default) = this batch's
            ``loss_weights.sum()`` (the weighted mean), ``1`` = the sum, or the total weight of
            the optimizer step.
        label_smoothing: ``eps`` as in ``torch.nn.functional.cross_entropy``.
        ignore_index: Label value that contributes 0 regardless of its weight.
    """
    per_token = per_token_cross_entropy(
        logits, labels, label_smoothing=label_smoothing, ignore_index=ignore_index
    )
    return reduce_tokens(per_token, loss_weights, normalizer)


def per_token_focal_loss(
    logits: Tensor, labels: Tensor, *, gamma: float = 2.0, ignore_index: int = -100
) -> Tensor:
    """Unreduced focal loss (Lin et al., 2017): ``-(1 - p_y)^gamma * log p_y``.

    It down-weights tokens the model already predicts well, so training focuses on hard tokens;
    ``gamma=0`` is plain cross-entropy. ``1 - p_y`` is computed as ``-expm1(log p_y)`` for
    precision.
    """
    if isinstance(gamma, bool) or not gamma >= 0:
        raise AutotrainError(f"gamma={gamma!r} must be >= 0; 0 gives plain cross-entropy.")
    ignored = labels == ignore_index
    label_logprobs = selective_log_softmax(logits, labels.masked_fill(ignored, 0).long())
    modulator = torch.pow((-torch.expm1(label_logprobs)).clamp_min(0.0), gamma)
    return (-modulator * label_logprobs).masked_fill(ignored, 0.0)


def focal_loss(
    logits: Tensor,
    labels: Tensor,
    loss_weights: Tensor,
    *,
    gamma: float = 2.0,
    normalizer: Normalizer | None = None,
) -> Tensor:
    """Weighted focal loss: ``sum_i w_i * (-(1 - p_i)^gamma * log p_i) / normalizer``."""
    per_token = per_token_focal_loss(logits, labels, gamma=gamma)
    return reduce_tokens(per_token, loss_weights, normalizer)


def entropy_loss(
    logits: Tensor, loss_weights: Tensor, *, normalizer: Normalizer | None = None
) -> Tensor:
    """Weighted mean entropy of the predicted distribution: ``sum_i w_i * H_i / normalizer``.

    ``H_i = -sum_v p_v log p_v``. Minimising it sharpens predictions; composite configs usually give
    it a negative coefficient (``entropy: -0.01``) to encourage exploration instead.
    """
    return reduce_tokens(entropy_from_logits(logits), loss_weights, normalizer)
