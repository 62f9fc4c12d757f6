"""The one implementation of an exactly normalized, clipped, non-finite-guarded optimizer step.

``TrainingClient`` (``autotrain_pl.client``) and the manual-optimization path of every objective
(``autotrain_pl.objectives.manual``) share it, so both follow the same rules as the automatic
path of ``ObjectiveModule``:

1. Every micro-batch backpropagates a loss SUMMED over its normalization units (weighted target
   tokens for SFT), and ``StepController.accumulate`` records that sum and the units.
2. ``StepController.finish`` sums the units over the window (and over ranks, through ``reduce``)
   and normalizes the accumulated gradients by ``grad_scale / units`` (``grad_scale`` undoes an
   averaging that DDP already did), so the update equals one big batch whatever the split into
   micro-batches. It measures the normalized gradient norm, skips the step when that norm is
   not finite (gradients are cleared, the optimizer is not called) and otherwise clips to
   ``clip_norm``. Normalization and clipping are one multiplication: a step reads the gradients
   once (the norm) and writes them once.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from autotrain_pl.errors import AutotrainError

_MIN_UNITS = 1e-8


class NonFiniteGradientWarning(RuntimeWarning):
    """An optimizer step was skipped because its gradients held NaN or inf."""


@dataclass(frozen=True)
class StepOutcome:
    """What ``StepController.finish`` did to the gradients of one optimizer step.

    Attributes:
        loss: mean loss per unit over the step (all micro-batches and ranks).
        units: total normalization units of the step (e.g. weighted target tokens).
        grad_norm: L2 norm of the normalized gradients, before clipping (inf/NaN when skipped).
        skipped: True when the gradients were not finite and the update must not happen.
        micro_batches: forward-backward passes accumulated on this rank.
    """

    loss: float
    units: float
    grad_norm: float
    skipped: bool
    micro_batches: int


def check_clip_norm(name: str, value: float | None) -> float | None:
    """Validate a clipping norm: None (off) or a positive finite number."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise AutotrainError(f"{name}={value!r} must be a positive number, or null to not clip")
    return float(value)


def total_grad_norm(grads: Sequence[Tensor]) -> Tensor:
    """L2 norm over all gradient tensors (0 when there are none)."""
    if not grads:
        return torch.zeros(())
    if hasattr(torch.nn.utils, "get_total_norm"):  # torch >= 2.6: foreach kernels
        return torch.nn.utils.get_total_norm(grads, 2.0)
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))


def _scale_(grads: list[Tensor], factor: float) -> None:
    if grads and factor != 1.0:
        torch._foreach_mul_(grads, factor)


def _accumulator_dtype(device: torch.device) -> torch.dtype:
    """float64 for exact unit counts; MPS has no float64."""
    return torch.float32 if device.type == "mps" else torch.float64


class StepController:
    """Accumulates normalization units across micro-batches and finishes optimizer steps.

    Args:
        gradient_clip_norm: default max L2 norm of the normalized gradients; None: no clipping.
        skip_non_finite: skip (with a ``NonFiniteGradientWarning``) a step whose gradients are
            not finite, instead of letting NaN/inf into the weights and optimizer state.
    """

    def __init__(self, gradient_clip_norm: float | None = None,
                 skip_non_finite: bool = True) -> None:
        self.gradient_clip_norm = check_clip_norm("gradient_clip_norm", gradient_clip_norm)
        self.skip_non_finite = bool(skip_non_finite)
        self.skipped_steps = 0
        self.loss_sum = torch.zeros((), dtype=torch.float64)
        self.units = torch.zeros((), dtype=torch.float64)
        self.micro_batches = 0

    @property
    def pending(self) -> bool:
        """Whether micro-batches were accumulated since the last finished step."""
        return self.micro_batches > 0

    def accumulate(self, loss_sum: Tensor, units: Tensor | float) -> None:
        """Record one micro-batch: its summed loss (detached) and its normalization units."""
        device = loss_sum.device
        dtype = _accumulator_dtype(device)
        units = torch.as_tensor(units).detach().to(device=device, dtype=dtype)
        self.loss_sum = self.loss_sum.to(device, dtype) + loss_sum.detach().to(dtype)
        self.units = self.units.to(device, dtype) + units
        self.micro_batches += 1

    def reset(self) -> None:
        """Forget the current window (after a step, or to discard accumulated micro-batches)."""
        self.loss_sum = torch.zeros_like(self.loss_sum)
        self.units = torch.zeros_like(self.units)
        self.micro_batches = 0

    def finish(
        self,
        parameters: Iterable[Tensor],
        *,
        reduce: Callable[[Tensor], Tensor] | None = None,
        grad_scale: float = 1.0,
        clip_norm: float | None | str = "default",
        extra_grads: Sequence[Tensor | None] | None = None,
    ) -> StepOutcome:
        """Normalize, measure, guard and clip the accumulated gradients of one step.

        Args:
            parameters: the trained parameters (their ``.grad`` is changed in place).
            reduce: sums a tensor over ranks (``strategy.reduce(t, reduce_op="sum")``).
            grad_scale: factor the gradients are multiplied by before dividing by the units
                (the world size under DDP, whose backward averages over ranks).
            clip_norm: overrides ``gradient_clip_norm`` for this step (None: no clipping).
            extra_grads: gradients added AFTER normalization, one per parameter (the
                ``forward_backward_custom`` gradients, which own their normalization).

        Returns:
            The ``StepOutcome``. When ``skipped``, every ``.grad`` is set to None, so an optimizer
            step that still runs (to keep a step counter) leaves weights and state untouched.
        """
        params = [p for p in parameters]
        clip = self.gradient_clip_norm if clip_norm == "default" else check_clip_norm(
            "grad_clip_norm", clip_norm)  # type: ignore[arg-type]
        totals = torch.stack([self.loss_sum, self.units])
        if reduce is not None:
            totals = reduce(totals)
        loss_value, units_value = (float(v) for v in totals)
        scale = grad_scale / max(units_value, _MIN_UNITS) if self.micro_batches > 0 else 1.0
        if extra_grads is not None:  # custom gradients join after normalization
            _scale_([p.grad for p in params if p.grad is not None], scale)
            scale = 1.0
            for param, extra in zip(params, extra_grads, strict=True):
                if extra is not None:
                    param.grad = extra if param.grad is None else param.grad.add_(extra)
        grads = [p.grad for p in params if p.grad is not None]
        # One read (the norm) and one write (normalization and clipping folded into one factor).
        norm_value = float(total_grad_norm(grads)) * scale
        skipped = self.skip_non_finite and not math.isfinite(norm_value)
        if skipped:
            self.skipped_steps += 1
            for param in params:
                param.grad = None
        else:
            if clip is not None and norm_value > clip:
                scale *= clip / (norm_value + 1e-6)  # torch.nn.utils.clip_grad_norm_'s rule
            _scale_(grads, scale)
        outcome = StepOutcome(
            loss=loss_value / units_value if units_value > 0 else math.nan,
            units=units_value,
            grad_norm=norm_value,
            skipped=skipped,
            micro_batches=self.micro_batches,
        )
        self.reset()
        return outcome

    @staticmethod
    def warn_skipped(step: int, outcome: StepOutcome, where: str) -> None:
        """Warn (once per step, so repeats stay visible) that a step was skipped."""
        warnings.warn(
            f"{where}: skipped optimizer step {step} because the gradients are not finite "
            f"(grad_norm={outcome.grad_norm}); weights and optimizer state are unchanged. Lower "
            "the learning rate, clip gradients, or check the data and loss for NaN/inf.",
            NonFiniteGradientWarning,
            stacklevel=3,
        )

    # -- checkpointing ------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "loss_sum": self.loss_sum.detach().cpu(),
            "units": self.units.detach().cpu(),
            "micro_batches": self.micro_batches,
            "skipped_steps": self.skipped_steps,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.loss_sum = state["loss_sum"].to(self.loss_sum)
        self.units = state["units"].to(self.units)
        self.micro_batches = int(state["micro_batches"])
        self.skipped_steps = int(state["skipped_steps"])
