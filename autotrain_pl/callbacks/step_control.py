"""``StepControlCallback``: the optimizer-step policy of an objective, as a config-level callback.

Add it in a config to set how often the optimizer steps, how the gradients are clipped and
whether non-finite steps are skipped, in one place::

    trainer:
      callbacks:
        - class_path: autotrain_pl.callbacks.StepControlCallback
          init_args: {optimizer_step_frequency: 4, gradient_clip_norm: 1.0}

Every objective already normalizes each step exactly by its units (all micro-batches and ranks,
see ``autotrain_pl.training.stepping``). This callback only chooses the policy, through the knobs
that mean the same thing: Lightning's own ``trainer.accumulate_grad_batches`` and
``trainer.gradient_clip_val`` for objectives on automatic optimization (as Lightning's
``GradientAccumulationScheduler`` sets the former), and the objective's ``StepController`` for
objectives on manual optimization, which step themselves. Whatever it set is restored after fit,
so the trainer and the module are left as they were found.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer

from autotrain_pl.errors import AutotrainError
from autotrain_pl.training.stepping import SteppedModule, check_clip_norm

_CALLBACK = "StepControlCallback"


def check_frequency(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise AutotrainError(
            f"{_CALLBACK}.optimizer_step_frequency={value!r} must be a positive integer "
            "(1 steps every batch)"
        )
    return value


class StepControlCallback(Callback):
    """Optimizer-step frequency, gradient clipping and the non-finite guard of one fit.

    Args:
        optimizer_step_frequency: micro-batches per optimizer step (gradient accumulation; a
            partial window at the end of an epoch also steps). Sets
            ``trainer.accumulate_grad_batches``.
        gradient_clip_norm: max L2 norm of the normalized gradients; None: no clipping. Sets
            ``trainer.gradient_clip_val``.
        skip_non_finite: skip a step (with a warning) when its gradients hold NaN or inf; the
            count is logged as ``train/skipped_steps``.
    """

    def __init__(self, optimizer_step_frequency: int = 1, gradient_clip_norm: float | None = None,
                 skip_non_finite: bool = True) -> None:
        self.optimizer_step_frequency = check_frequency(optimizer_step_frequency)
        self.gradient_clip_norm = check_clip_norm(f"{_CALLBACK}.gradient_clip_norm",
                                                  gradient_clip_norm)
        self.skip_non_finite = bool(skip_non_finite)
        self._restore: dict[str, Any] | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        if not isinstance(pl_module, SteppedModule):
            raise AutotrainError(
                f"{_CALLBACK} needs an autotrain_pl objective, got {type(pl_module).__name__}; "
                "remove the callback or use an objective"
            )
        self.check_trainer(trainer)
        if not pl_module.automatic_optimization and self.optimizer_step_frequency != 1:
            raise AutotrainError(
                f"{type(pl_module).__name__} steps its optimizer itself (manual optimization); "
                f"remove {_CALLBACK}.optimizer_step_frequency and set the objective's own option"
            )
        controller = pl_module.step_controller
        self._restore = {
            "accumulate_grad_batches": trainer.accumulate_grad_batches,
            "gradient_clip_val": trainer.gradient_clip_val,
            "gradient_clip_norm": controller.gradient_clip_norm,
            "skip_non_finite": controller.skip_non_finite,
        }
        controller.skip_non_finite = self.skip_non_finite
        if pl_module.automatic_optimization:
            trainer.accumulate_grad_batches = self.optimizer_step_frequency
            trainer.gradient_clip_val = self.gradient_clip_norm
        else:
            controller.gradient_clip_norm = self.gradient_clip_norm

    def check_trainer(self, trainer: Trainer) -> None:
        """Raise for trainer settings that would contradict this callback's."""
        if trainer.accumulate_grad_batches != 1:
            raise AutotrainError(
                f"trainer.accumulate_grad_batches={trainer.accumulate_grad_batches} and "
                f"{_CALLBACK} both set the optimizer-step frequency; remove one (for example set "
                f"{_CALLBACK}.optimizer_step_frequency: {trainer.accumulate_grad_batches})"
            )
        if trainer.gradient_clip_val:
            raise AutotrainError(
                f"trainer.gradient_clip_val={trainer.gradient_clip_val} and {_CALLBACK} both set "
                f"gradient clipping; remove one (for example set {_CALLBACK}.gradient_clip_norm: "
                f"{trainer.gradient_clip_val})"
            )

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "fit" or self._restore is None:
            return
        restore, self._restore = self._restore, None
        trainer.accumulate_grad_batches = restore["accumulate_grad_batches"]
        trainer.gradient_clip_val = restore["gradient_clip_val"]
        controller = pl_module.step_controller
        controller.gradient_clip_norm = restore["gradient_clip_norm"]
        controller.skip_non_finite = restore["skip_non_finite"]
