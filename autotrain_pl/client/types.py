"""Plain records of the ``TrainingClient`` API: optimizer settings and call results."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from torch import Tensor

from autotrain_pl.errors import AutotrainError
from autotrain_pl.training.stepping import check_clip_norm


@dataclass(frozen=True)
class AdamParams:
    """AdamW settings for one ``optim_step``; each call may change them (schedules live outside).

    Args:
        lr: learning rate of this step.
        betas: Adam moment decay rates.
        eps: Adam denominator epsilon.
        weight_decay: decoupled decay, applied to matrices only (not biases or norm weights).
        grad_clip_norm: max L2 norm of the normalized gradients; None: no clipping.
    """

    lr: float
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    weight_decay: float = 0.0
    grad_clip_norm: float | None = None

    def __post_init__(self) -> None:
        if not _is_number(self.lr) or not 0 <= self.lr < math.inf:
            raise AutotrainError(
                f"AdamParams.lr={self.lr!r} must be a finite number >= 0, e.g. 1e-4")
        betas = tuple(self.betas) if isinstance(self.betas, list | tuple) else ()
        if len(betas) != 2 or not all(_is_number(b) and 0.0 <= b < 1.0 for b in betas):
            raise AutotrainError(f"AdamParams.betas={self.betas!r} must be two numbers in [0, 1)")
        object.__setattr__(self, "betas", tuple(float(b) for b in betas))
        if not _is_number(self.eps) or not self.eps > 0:
            raise AutotrainError(f"AdamParams.eps={self.eps!r} must be a number > 0, e.g. 1e-8")
        if not _is_number(self.weight_decay) or not self.weight_decay >= 0:
            raise AutotrainError(
                f"AdamParams.weight_decay={self.weight_decay!r} must be a number >= 0")
        object.__setattr__(self, "grad_clip_norm",
                           check_clip_norm("AdamParams.grad_clip_norm", self.grad_clip_norm))


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass
class ForwardBackwardResult:
    """Result of ``forward_backward``, ``forward_backward_custom`` or ``forward``.

    Attributes:
        loss: this batch's loss per normalization unit (weighted target token), i.e. the summed
            loss divided by ``units``; for custom functions, the value the function returned.
        logprobs: ``[B, T-1]`` float32 logprobs of the targets ``input_ids[:, 1:]``, detached and
            on the model's device; column ``t`` scores token ``t + 1`` given tokens ``<= t``
            (Tinker's target layout). Positions without loss weight (prompt, padding) hold 0, so
            ``(logprobs * batch["loss_weights"][:, 1:]).sum(-1)`` is each row's weighted
            log-likelihood. Feed them back as ``batch["old_logprobs"]`` for PPO/IS losses.
        metrics: floats: ``loss``, ``units`` and each composite term as ``loss_<term>``, or
            whatever a custom function returned.
        units: the batch's normalization units (its total target loss weight).
    """

    loss: float
    logprobs: Tensor
    metrics: dict[str, float] = field(default_factory=dict)
    units: float = 0.0


@dataclass(frozen=True)
class OptimStepResult:
    """Result of ``optim_step``.

    Attributes:
        step: optimizer steps taken so far by this client, this one included (skipped or not).
        lr: the learning rate used.
        grad_norm: L2 norm of the normalized gradients before clipping (NaN/inf when skipped).
        skipped: True when the gradients were not finite and no update happened.
        loss: mean loss per unit over the forward_backward calls of this step (NaN if none).
        units: total normalization units of this step.
        tokens_per_s: real tokens of this step's ``forward_backward`` calls per second, from
            the first of them to the end of the step.
    """

    step: int
    lr: float
    grad_norm: float
    skipped: bool
    loss: float
    units: float
    tokens_per_s: float = field(default=0.0, compare=False)

    @property
    def metrics(self) -> dict[str, float]:
        """The result as a flat dict of floats, for loggers."""
        return {"step": float(self.step), "lr": self.lr, "grad_norm": self.grad_norm,
                "skipped": float(self.skipped), "loss": self.loss, "units": self.units,
                "tokens_per_s": self.tokens_per_s}
