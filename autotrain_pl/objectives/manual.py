"""Manual optimization for every objective, on the same step primitives as ``TrainingClient``.

Mechanism. ``enable_manual_stepping(module, ...)`` (called by
``autotrain_pl.callbacks.StepControlCallback`` in its ``setup``) sets
``module.automatic_optimization = False`` and attaches a ``ManualStepping`` record as
``module.manual_stepping``. ``ObjectiveModule.training_step`` dispatches to
``manual_training_step`` while that record is attached, so any subclass that only overrides
``compute_loss`` (the documented hook) runs in manual mode unchanged. ``ObjectiveModule``'s own
``on_before_optimizer_step`` does nothing in manual mode: rescaling, clipping, the non-finite
guard and logging happen here, through ``StepController`` (``objectives/stepping.py``), the code
``TrainingClient.optim_step`` uses too.

One manual micro-batch: ``compute_loss`` (summed over units) -> ``manual_backward`` -> record the
units. Every ``optimizer_step_frequency`` micro-batches, and after the last batch of an epoch for
a partial window: sum the units over ranks, divide the gradients by them, measure the norm, skip
(with a warning) if it is not finite, clip, ``optimizer.step()``, ``zero_grad``, step the lr
scheduler once. A skipped step still calls ``optimizer.step()`` with every gradient set to None,
which changes no weight and no optimizer state but counts in ``trainer.global_step``, so
``max_steps`` and the lr schedule keep counting optimizer steps, skipped or not.

Under DDP each ``manual_backward`` all-reduces (Lightning has no backward-sync blocking in manual
mode); the result is exact, only the intermediate all-reduces of a window are extra work.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from autotrain_pl.errors import AutotrainError
from autotrain_pl.objectives.base import count_real_tokens
from autotrain_pl.objectives.stepping import StepController

if TYPE_CHECKING:
    from autotrain_pl.objectives.base import ObjectiveModule


@dataclass
class ManualStepping:
    """Manual-optimization policy attached to an objective as ``module.manual_stepping``.

    Attributes:
        controller: accumulates units and finishes steps (shared with ``TrainingClient``).
        optimizer_step_frequency: forward-backward passes per optimizer step.
        previous_automatic_optimization: restored by ``disable_manual_stepping``.
    """

    controller: StepController
    optimizer_step_frequency: int = 1
    previous_automatic_optimization: bool = True

    def estimated_optimizer_steps(self, trainer: Any) -> int:
        """Optimizer steps of the whole fit: ceil(batches / frequency) per epoch, capped by
        ``max_steps``; the lr schedule's length in manual mode."""
        estimate = trainer.estimated_stepping_batches  # also loads the train data when needed
        batches = trainer.num_training_batches
        max_steps = trainer.max_steps
        if not math.isfinite(batches):
            return max(1, int(max_steps if max_steps > 0 else estimate))
        epochs = trainer.max_epochs if trainer.max_epochs is not None else -1
        per_epoch = math.ceil(batches / self.optimizer_step_frequency)
        steps = per_epoch * epochs if epochs > 0 else math.inf
        if max_steps > 0:
            steps = min(steps, max_steps)
        return max(1, int(steps if math.isfinite(steps) else estimate))


def enable_manual_stepping(
    module: ObjectiveModule,
    optimizer_step_frequency: int = 1,
    gradient_clip_norm: float | None = None,
    skip_non_finite: bool = True,
) -> ManualStepping:
    """Switch ``module`` to manual optimization with this step policy."""
    check_frequency(optimizer_step_frequency)
    stepping = ManualStepping(
        StepController(gradient_clip_norm, skip_non_finite),
        optimizer_step_frequency,
        previous_automatic_optimization=bool(module.automatic_optimization),
    )
    module.automatic_optimization = False
    module.manual_stepping = stepping
    return stepping


def disable_manual_stepping(module: ObjectiveModule) -> None:
    """Detach the policy and restore the module's previous optimization mode."""
    stepping = getattr(module, "manual_stepping", None)
    if stepping is not None:
        module.automatic_optimization = stepping.previous_automatic_optimization
        module.manual_stepping = None


def check_frequency(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise AutotrainError(
            f"optimizer_step_frequency={value!r} must be a positive integer (1 steps every batch)"
        )
    return value


def manual_training_step(module: ObjectiveModule, batch: Mapping[str, Tensor],
                         batch_idx: int) -> Tensor:
    """One micro-batch in manual mode; steps the optimizer when the window is complete."""
    stepping: ManualStepping = module.manual_stepping
    loss_sum, metrics = module.compute_loss(batch)
    units = module.loss_units(batch).detach()
    module.manual_backward(loss_sum)
    stepping.controller.accumulate(loss_sum, units)
    if "attention_mask" in batch:
        module._window_tokens += count_real_tokens(batch)
    for name, value in metrics.items():
        module.log(f"train/{name}", value, on_step=True, on_epoch=False)
    last_batch = batch_idx + 1 >= module.trainer.num_training_batches
    if stepping.controller.micro_batches >= stepping.optimizer_step_frequency or last_batch:
        manual_optimizer_step(module)
    return loss_sum.detach()


def manual_optimizer_step(module: ObjectiveModule, log_on_step: bool = True) -> None:
    """Finish the window: normalize, guard, clip, step, zero, schedule, log."""
    stepping: ManualStepping = module.manual_stepping
    trainer = module.trainer
    optimizer = module.optimizers()
    optimizer = optimizer[0] if isinstance(optimizer, list) else optimizer
    params = [p for p in module.parameters() if p.requires_grad]
    outcome = stepping.controller.finish(
        params,
        reduce=lambda totals: trainer.strategy.reduce(totals, reduce_op="sum"),
        grad_scale=float(trainer.world_size),
    )
    lr = optimizer.param_groups[0]["lr"]
    if outcome.skipped:
        StepController.warn_skipped(trainer.global_step + 1, outcome, type(module).__name__)
    optimizer.step()  # all grads are None when skipped: a counted step that changes nothing
    optimizer.zero_grad(set_to_none=True)
    schedulers = module.lr_schedulers()
    for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
        if scheduler is not None:
            scheduler.step()
    _log_step(module, outcome.loss, outcome.grad_norm, lr, stepping.controller.skipped_steps,
              log_on_step)


def _log_step(module: ObjectiveModule, loss: float, grad_norm: float, lr: float,
              skipped_steps: int, on_step: bool) -> None:
    """The automatic path's step metrics (``ObjectiveModule.on_before_optimizer_step``)."""
    elapsed = max(time.perf_counter() - (module._window_start or time.perf_counter()), 1e-9)
    world = module.trainer.world_size
    step_loss = torch.tensor(loss)
    step_metrics = {
        "train/ppl": torch.exp(step_loss.clamp(max=30)),
        "train/lr": lr,
        "train/tokens_per_s": module._window_tokens * world / elapsed,
        "train/grad_norm": grad_norm,
        "train/skipped_steps": float(skipped_steps),
    }
    if on_step:
        module.log("train/loss", step_loss, prog_bar=True, on_step=True, on_epoch=True)
        for name, value in step_metrics.items():
            module.log(name, value, on_step=True, prog_bar=name in ("train/lr",
                                                                     "train/tokens_per_s"))
    else:  # epoch-end hooks allow epoch-level logging only
        module.log("train/loss", step_loss, on_step=False, on_epoch=True)
        module.log("train/skipped_steps", float(skipped_steps), on_step=False, on_epoch=True)
    module._window_tokens, module._window_start = 0, None
