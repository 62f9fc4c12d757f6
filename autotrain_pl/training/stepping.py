"""The one implementation of an exactly normalized, clipped, non-finite-guarded optimizer step.

Every way of training calls it: the automatic and the manual Lightning paths of
``ObjectiveModule`` and ``TrainingClient``.

1. A micro-batch's loss comes as a ``LossOutput``: the loss SUMMED over its normalization units
   (weighted target tokens for SFT, pairs for DPO), those units, metric sums over the same units,
   and the real tokens it processed. Its gradient is backpropagated as is (as a sum), and
   ``StepController.accumulate`` records the rest.
2. ``StepController.finish`` sums the units over the window (and over ranks, through ``reduce``)
   and multiplies the accumulated gradients by ``world_size / units``. ``world_size`` undoes the
   averaging over ranks that DDP's backward does; under one convention for every path, the
   gradients hold the sum of the micro-batches' summed losses, averaged over ranks. The update
   therefore equals one big batch whatever the split into micro-batches and ranks. It measures
   the normalized gradient norm, skips the step when that norm is not finite (gradients are set
   to None, so an optimizer step changes nothing), and otherwise clips to ``clip_norm``.
   Normalization and clipping are one multiplication: the gradients are read once (the norm) and
   written once.
3. The ``StepOutcome`` carries what a step reports: the mean loss and metrics per unit, the
   gradient norm, tokens per second and the skip count.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from autotrain_pl.errors import AutotrainError

_MIN_UNITS = 1e-8


class NonFiniteGradientWarning(RuntimeWarning):
    """An optimizer step was skipped because its gradients held NaN or inf."""


class NonFiniteTrainingError(AutotrainError):
    """Too many optimizer steps in a row had non-finite gradients: the run is broken."""


@dataclass
class LossOutput:
    """What an objective's ``compute_loss`` returns for one micro-batch.

    The loss is a SUM over the micro-batch's normalization units, never a mean: the step divides
    by the units of the whole optimizer step, across micro-batches and ranks. A per-micro-batch
    mean would weight short and long micro-batches alike. Build one with ``from_sum`` (or
    ``from_mean``, which multiplies by the units), so the reduction is stated where the loss is
    computed.

    Attributes:
        loss_sum: scalar loss summed over the units (with grad).
        units: scalar number of normalization units (weighted target tokens, pairs...).
        metric_sums: more values summed over the same units; each is logged as its mean per unit
            (``train/<name>``, ``val/<name>``).
        tokens: real (non-padding) tokens the micro-batch processed, for tokens per second.
    """

    loss_sum: Tensor
    units: Tensor
    metric_sums: dict[str, Tensor] = field(default_factory=dict)
    tokens: int = 0

    @classmethod
    def from_sum(cls, loss_sum: Tensor, units: Tensor | float,
                 metric_sums: Mapping[str, Tensor] | None = None, tokens: int = 0) -> LossOutput:
        """A loss already summed over ``units`` (as the loss library's ``normalizer=1`` gives)."""
        units = torch.as_tensor(units, device=loss_sum.device).detach()
        metrics = {name: value.detach() for name, value in (metric_sums or {}).items()}
        return cls(loss_sum, units, metrics, int(tokens))

    @classmethod
    def from_mean(cls, loss_mean: Tensor, units: Tensor | float,
                  metric_means: Mapping[str, Tensor] | None = None, tokens: int = 0) -> LossOutput:
        """A loss averaged over ``units``; stored as the sum the step needs."""
        units = torch.as_tensor(units, device=loss_mean.device).detach()
        metrics = {name: value.detach() * units for name, value in (metric_means or {}).items()}
        return cls(loss_mean * units, units, metrics, int(tokens))


def check_loss_output(output: Any, owner: str) -> LossOutput:
    """The clear error for a ``compute_loss`` that returns something else (a bare mean, say)."""
    if isinstance(output, LossOutput):
        if output.loss_sum.dim() != 0 or output.units.dim() != 0:
            raise AutotrainError(f"{owner}.compute_loss: LossOutput.loss_sum and units must be "
                                 "scalar tensors")
        return output
    raise AutotrainError(
        f"{owner}.compute_loss returned {type(output).__name__}; return "
        "LossOutput.from_sum(loss_sum, units, metric_sums) with the loss SUMMED over its units "
        "(or LossOutput.from_mean(mean, units)), so each step can normalize by all of its units"
    )


@dataclass(frozen=True)
class StepOutcome:
    """What ``StepController.finish`` did in one optimizer step, and what the step reports.

    Attributes:
        loss: mean loss per unit over the step (all micro-batches and ranks).
        units: total normalization units of the step.
        grad_norm: L2 norm of the normalized gradients, before clipping (inf/NaN when skipped).
        skipped: True when the gradients were not finite and the update must not happen.
        micro_batches: forward-backward passes accumulated on this rank.
        metrics: the objective's metric sums, as means per unit over the step.
        tokens_per_s: real tokens of the step (all ranks) per second of wall time.
        skipped_steps: steps skipped so far, this one included.
    """

    loss: float
    units: float
    grad_norm: float
    skipped: bool
    micro_batches: int
    metrics: dict[str, float] = field(default_factory=dict)
    tokens_per_s: float = 0.0
    skipped_steps: int = 0


def check_max_consecutive_skips(value: int | None) -> int | None:
    """None (never stop) or a positive number of steps."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise AutotrainError(f"model.max_consecutive_skipped_steps={value!r} must be a positive "
                             "number of optimizer steps (e.g. 10) or null (never stop)")
    return value


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
    """Accumulates a window of micro-batches and finishes its optimizer step.

    Args:
        gradient_clip_norm: default max L2 norm of the normalized gradients; None: no clipping.
        skip_non_finite: skip (with a ``NonFiniteGradientWarning``) a step whose gradients are
            not finite, instead of letting NaN/inf into the weights and optimizer state.
        max_consecutive_skips: raise ``NonFiniteTrainingError`` when this many steps in a row
            were skipped (None: never). A few skips are noise (an fp16 overflow, one bad
            batch); many in a row mean a diverged run that would only burn compute.
    """

    def __init__(self, gradient_clip_norm: float | None = None,
                 skip_non_finite: bool = True, max_consecutive_skips: int | None = None) -> None:
        self.gradient_clip_norm = check_clip_norm("gradient_clip_norm", gradient_clip_norm)
        self.skip_non_finite = bool(skip_non_finite)
        self.max_consecutive_skips = check_max_consecutive_skips(max_consecutive_skips)
        self.skipped_steps = 0
        self.consecutive_skips = 0
        self._sums = torch.zeros(2, dtype=torch.float64)  # loss sum, units
        self._metric_names: list[str] = []
        self._metric_sums: Tensor | None = None
        self.micro_batches = 0
        self.graded_micro_batches = 0
        self.tokens = 0
        self._window_start: float | None = None

    @property
    def pending(self) -> bool:
        """Whether micro-batches were accumulated since the last finished step."""
        return self.micro_batches > 0

    def start_window(self) -> None:
        """Start timing the step at its first micro-batch (later calls in the window: no-op)."""
        if self._window_start is None:
            self._window_start = time.perf_counter()

    def accumulate(self, output: LossOutput, *, carries_gradient: bool = True) -> None:
        """Record one micro-batch: its summed loss (detached), units, metric sums and tokens.

        ``carries_gradient=False``: nothing was backpropagated for it (or, under DDP, zeros
        only). A step none of whose micro-batches on any rank carried a gradient updates
        nothing, whatever the world size.
        """
        self.start_window()
        device = output.loss_sum.device
        dtype = _accumulator_dtype(device)
        sums = torch.stack([output.loss_sum.detach().to(dtype),
                            output.units.detach().to(device=device, dtype=dtype)])
        self._sums = self._sums.to(device, dtype) + sums
        if output.metric_sums:
            names = sorted(output.metric_sums)
            if self._metric_sums is not None and names != self._metric_names:
                raise AutotrainError(
                    f"compute_loss returned metrics {names} after {self._metric_names} in the "
                    "same optimizer step; return the same metric names for every micro-batch"
                )
            values = torch.stack([output.metric_sums[n].detach().to(device, dtype)
                                  for n in names])
            self._metric_names = names
            self._metric_sums = values if self._metric_sums is None else (
                self._metric_sums.to(device, dtype) + values)
        self.micro_batches += 1
        self.graded_micro_batches += int(carries_gradient)
        self.tokens += int(output.tokens)

    def reset(self) -> None:
        """Forget the current window (after a step, or to discard accumulated micro-batches)."""
        self._sums = torch.zeros_like(self._sums)
        self._metric_names, self._metric_sums = [], None
        self.micro_batches = 0
        self.graded_micro_batches = 0
        self.tokens = 0
        self._window_start = None

    def finish(
        self,
        parameters: Iterable[Tensor],
        *,
        reduce: Callable[[Tensor], Tensor] | None = None,
        world_size: int = 1,
        clip_norm: float | None | str = "default",
        extra_grads: Sequence[Tensor | None] | None = None,
    ) -> StepOutcome:
        """Normalize, measure, guard and clip the accumulated gradients of one step.

        Args:
            parameters: the trained parameters (their ``.grad`` is changed in place).
            reduce: sums a tensor over ranks (``strategy.reduce(t, reduce_op="sum")``).
            world_size: number of ranks whose backward averaged the gradients (DDP).
            clip_norm: overrides ``gradient_clip_norm`` for this step (None: no clipping).
            extra_grads: gradients added AFTER normalization, one per parameter (the
                ``forward_backward_custom`` gradients, which own their normalization).

        Returns:
            The ``StepOutcome``. When ``skipped``, every ``.grad`` is set to None, so an optimizer
            step that still runs (to keep a step counter) leaves weights and state untouched.
        """
        params = list(parameters)
        clip = self.gradient_clip_norm if clip_norm == "default" else check_clip_norm(
            "gradient_clip_norm", clip_norm)  # type: ignore[arg-type]
        metric_count = 0 if self._metric_sums is None else len(self._metric_names)
        totals = self._sums if self._metric_sums is None else torch.cat(
            [self._sums, self._metric_sums.to(self._sums)])
        totals = torch.cat([totals, totals.new_tensor([float(self.graded_micro_batches),
                                                       float(self.tokens)])])
        if reduce is not None:
            totals = reduce(totals)
        values = [float(v) for v in totals]
        loss_value, units_value, graded, tokens = values[0], values[1], values[-2], values[-1]
        if self.micro_batches > 0 and graded == 0 and extra_grads is None:
            # Nothing carried a gradient on any rank (a rank under DDP backpropagates zeros to
            # stay in step): no update, as in one process, where no backward left every
            # gradient None and the optimizer skipped its state update.
            for param in params:
                param.grad = None
        scale = world_size / max(units_value, _MIN_UNITS) if self.micro_batches > 0 else 1.0
        if extra_grads is not None:  # custom gradients join after normalization
            _scale_([p.grad for p in params if p.grad is not None], scale)
            scale = 1.0
            for param, extra in zip(params, extra_grads, strict=True):
                if extra is not None:
                    param.grad = extra if param.grad is None else param.grad.add_(extra)
        grads = [p.grad for p in params if p.grad is not None]
        norm_value = float(total_grad_norm(grads)) * scale
        skipped = self.skip_non_finite and not math.isfinite(norm_value)
        self.consecutive_skips = self.consecutive_skips + 1 if skipped else 0
        if skipped:
            self.skipped_steps += 1
            for param in params:
                param.grad = None
            if self.max_consecutive_skips is not None and \
                    self.consecutive_skips >= self.max_consecutive_skips:
                self.reset()
                raise NonFiniteTrainingError(
                    f"{self.consecutive_skips} optimizer steps in a row had non-finite "
                    f"gradients (NaN/inf), so the run stopped; the weights are those of the last "
                    "finite step and the last checkpoint is kept. Lower the learning rate, clip "
                    "gradients, check the data for NaN/inf, or raise "
                    "model.max_consecutive_skipped_steps")
        else:
            if clip is not None and norm_value > clip:
                scale *= clip / (norm_value + 1e-6)  # torch.nn.utils.clip_grad_norm_'s rule
            _scale_(grads, scale)
        per_unit = 1.0 / units_value if units_value > 0 else math.nan
        elapsed = time.perf_counter() - (self._window_start or time.perf_counter())
        outcome = StepOutcome(
            loss=loss_value * per_unit,
            units=units_value,
            grad_norm=norm_value,
            skipped=skipped,
            micro_batches=self.micro_batches,
            metrics={name: values[2 + i] * per_unit
                     for i, name in enumerate(self._metric_names[:metric_count])},
            tokens_per_s=tokens / max(elapsed, 1e-9),
            skipped_steps=self.skipped_steps,
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
            "sums": self._sums.detach().cpu(),
            "metric_names": list(self._metric_names),
            "metric_sums": None if self._metric_sums is None else self._metric_sums.cpu(),
            "micro_batches": self.micro_batches,
            "graded_micro_batches": self.graded_micro_batches,
            "tokens": self.tokens,
            "skipped_steps": self.skipped_steps,
            "consecutive_skips": self.consecutive_skips,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._sums = state["sums"].to(self._sums)
        self._metric_names = list(state["metric_names"])
        self._metric_sums = state["metric_sums"]
        self.micro_batches = int(state["micro_batches"])
        self.graded_micro_batches = int(state.get("graded_micro_batches", self.micro_batches))
        self.tokens = int(state["tokens"])
        self.skipped_steps = int(state["skipped_steps"])
        self.consecutive_skips = int(state.get("consecutive_skips", 0))


class MeanAccumulator:
    """Per-unit means of ``LossOutput``s over many batches (an evaluation epoch), across ranks."""

    def __init__(self) -> None:
        self._sums: dict[str, float] = {}
        self.units = 0.0

    def update(self, output: LossOutput) -> None:
        self.units += float(output.units)
        for name, value in {"loss": output.loss_sum, **output.metric_sums}.items():
            self._sums[name] = self._sums.get(name, 0.0) + float(value.detach())

    def compute(self, reduce: Callable[[Tensor], Tensor] | None = None,
                device: torch.device | None = None) -> dict[str, float]:
        """Means per unit (empty when no rank saw a unit); resets the accumulator.

        ``reduce`` sums over ranks; ``device`` is where the collective needs the tensor.
        """
        names = sorted(self._sums)
        totals = torch.tensor([self.units, *(self._sums[n] for n in names)],
                              dtype=_accumulator_dtype(device or torch.device("cpu")),
                              device=device)
        if reduce is not None:
            totals = reduce(totals)
        self._sums, self.units = {}, 0.0
        units = float(totals[0])
        if units <= 0:
            return {}
        return {name: float(v) / units for name, v in zip(names, totals[1:].tolist(), strict=True)}


@runtime_checkable
class SteppedModule(Protocol):
    """A module whose optimizer steps go through a ``StepController`` (every objective)."""

    step_controller: StepController
