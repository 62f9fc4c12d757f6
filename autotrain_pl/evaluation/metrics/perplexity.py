"""Token-weighted perplexity: exp(sum of weighted token NLL / sum of weights).

Perplexity must average over the tokens that were actually trained on, weighted the same way as
the loss. Averaging per batch (or per sequence) first would weight short batches too much, and
counting padding or prompt tokens would make the number meaningless, so the metric keeps two
sums and divides only at the end, across all batches and all DDP ranks.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import Metric

from autotrain_pl.errors import AutotrainError


class WeightedPerplexity(Metric):
    """exp(nll_sum / weight_sum) over every token with non-zero loss weight.

    This is the one token-level metric (`kind == "token"`); feed it tensors, not strings:

    - `update(nll_sum, weight_sum)`: scalars you already have, e.g. `(token_nll * w).sum()` and
      `w.sum()` from the loss computation (cheapest: no extra pass over the logits).
    - `update_from_token_nll(token_nll, loss_weights)`: per-token NLL and weights.
    - `update_from_logits(logits, labels, loss_weights)`: logits aligned with labels.

    `compute()` returns a scalar tensor (NaN when no weighted token was seen), so Lightning can
    log the metric object directly.
    """

    kind: ClassVar[str] = "token"
    name: ClassVar[str] = "perplexity"
    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    nll_sum: Tensor
    weight_sum: Tensor

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # float32 states (as torchmetrics' own Perplexity) because MPS has no float64; each
        # batch is still reduced in float64 before it is added.
        self.add_state("nll_sum", torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("weight_sum", torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, nll_sum: Tensor | float, weight_sum: Tensor | float) -> None:
        """Add a weighted NLL sum and the sum of the weights it was computed with.

        Args:
            nll_sum: Sum over tokens of `loss_weight * token_nll` (a scalar).
            weight_sum: Sum of the loss weights of the same tokens (a scalar).
        """
        nll = torch.as_tensor(nll_sum, device=self.nll_sum.device).detach()
        weight = torch.as_tensor(weight_sum, device=self.weight_sum.device).detach()
        if nll.numel() != 1 or weight.numel() != 1:
            raise AutotrainError(
                "perplexity: update(nll_sum, weight_sum) takes two scalars; for per-token tensors "
                "call update_from_token_nll(token_nll, loss_weights)"
            )
        if not isinstance(weight_sum, Tensor) and weight_sum < 0:
            raise AutotrainError("perplexity: weight_sum must be >= 0 (loss weights are >= 0)")
        self.nll_sum += nll.reshape(()).to(self.nll_sum.dtype)
        self.weight_sum += weight.reshape(()).to(self.weight_sum.dtype)

    def update_from_token_nll(self, token_nll: Tensor, loss_weights: Tensor) -> None:
        """Add per-token NLL values with their loss weights (same shape; zero weight = ignored)."""
        if token_nll.shape != loss_weights.shape:
            raise AutotrainError(
                f"perplexity: token_nll shape {tuple(token_nll.shape)} must equal loss_weights "
                f"shape {tuple(loss_weights.shape)}"
            )
        # No check for negative weights here: it would force a device sync on every step.
        dtype = torch.float32 if token_nll.device.type == "mps" else torch.float64
        weights = loss_weights.detach().to(dtype)
        nll = token_nll.detach().to(dtype)
        # Multiply only where the weight is non-zero so inf/NaN on padding cannot leak in.
        weighted = torch.where(weights != 0, nll * weights, torch.zeros_like(nll))
        self.update(weighted.sum(), weights.sum())

    def update_from_logits(
        self, logits: Tensor, labels: Tensor, loss_weights: Tensor, ignore_index: int = -100
    ) -> None:
        """Add tokens scored by `logits` against `labels`, weighted by `loss_weights`.

        Positions must already be aligned: `logits[..., t, :]` scores `labels[..., t]`. For a
        causal LM batch that means `logits[:, :-1]`, `input_ids[:, 1:]`, `loss_weights[:, 1:]`.
        Labels equal to `ignore_index` count as weight zero. Only weighted positions are scored,
        so the log-softmax over the vocabulary is not computed for padding.

        Args:
            logits: `[..., vocab]` float tensor.
            labels: `[...]` integer tensor of target token ids.
            loss_weights: `[...]` float tensor of per-token weights.
            ignore_index: Label value that marks a position as not scored.
        """
        if logits.shape[:-1] != labels.shape or labels.shape != loss_weights.shape:
            raise AutotrainError(
                f"perplexity: logits {tuple(logits.shape)} must be labels {tuple(labels.shape)} "
                f"plus a vocab dim, and loss_weights {tuple(loss_weights.shape)} must match labels"
            )
        weights = loss_weights.detach().float() * (labels != ignore_index)
        keep = weights != 0
        with torch.no_grad():
            token_nll = F.cross_entropy(
                logits.detach()[keep].float(), labels[keep].long(), reduction="none"
            )
        self.update_from_token_nll(token_nll, weights[keep])

    def compute(self) -> Tensor:
        """exp(weighted mean NLL)."""
        return torch.exp(self.nll_sum / self.weight_sum)
