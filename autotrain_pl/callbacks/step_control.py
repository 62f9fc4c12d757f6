"""``StepControlCallback``: optimizer-step policy for any objective, as a config-level callback.

Add it in a config to run an objective in manual optimization with exact token normalization::

    trainer:
      callbacks:
        - class_path: autotrain_pl.callbacks.StepControlCallback
          init_args: {optimizer_step_frequency: 4, gradient_clip_norm: 1.0}

In ``setup`` it checks the trainer for what Lightning forbids with manual optimization
(``accumulate_grad_batches > 1``, ``gradient_clip_val``) and for 16-mixed precision (its loss
scaler unscales inside ``optimizer.step``, after the clipping and non-finite checks would have
run), then attaches the policy through ``autotrain_pl.objectives.manual.enable_manual_stepping``.
See that module for the mechanism.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer

from autotrain_pl.errors import AutotrainError
from autotrain_pl.objectives.manual import (
    ManualStepping,
    check_frequency,
    enable_manual_stepping,
    manual_optimizer_step,
)
from autotrain_pl.objectives.stepping import check_clip_norm

_CALLBACK = "StepControlCallback"


class StepControlCallback(Callback):
    """Manual optimization with exact normalization, clipping and a non-finite guard.

    Args:
        optimizer_step_frequency: forward-backward passes per optimizer step (gradient
            accumulation; a partial window at the end of an epoch also steps). Replaces
            ``trainer.accumulate_grad_batches``.
        gradient_clip_norm: max L2 norm of the normalized gradients; None: no clipping.
            Replaces ``trainer.gradient_clip_val``.
        skip_non_finite: skip a step (with a warning) when its gradients hold NaN or inf; the
            count is logged as ``train/skipped_steps``.
    """

    def __init__(self, optimizer_step_frequency: int = 1, gradient_clip_norm: float | None = None,
                 skip_non_finite: bool = True) -> None:
        self.optimizer_step_frequency = check_frequency(optimizer_step_frequency)
        self.gradient_clip_norm = check_clip_norm(f"{_CALLBACK}.gradient_clip_norm",
                                                  gradient_clip_norm)
        self.skip_non_finite = bool(skip_non_finite)
        self._skipped_steps = 0
        self._stepping: ManualStepping | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        from autotrain_pl.objectives.base import ObjectiveModule

        if not isinstance(pl_module, ObjectiveModule):
            raise AutotrainError(
                f"{_CALLBACK} needs an autotrain_pl objective (ObjectiveModule subclass), got "
                f"{type(pl_module).__name__}; remove the callback or use an objective"
            )
        self.check_trainer(trainer)
        stepping = enable_manual_stepping(pl_module, self.optimizer_step_frequency,
                                          self.gradient_clip_norm, self.skip_non_finite)
        stepping.controller.skipped_steps = self._skipped_steps
        self._stepping = stepping

    def check_trainer(self, trainer: Trainer) -> None:
        """Raise for trainer settings that manual optimization cannot honour."""
        if trainer.accumulate_grad_batches != 1:
            raise AutotrainError(
                f"trainer.accumulate_grad_batches={trainer.accumulate_grad_batches} cannot be "
                f"combined with {_CALLBACK} (manual optimization); remove it and set "
                f"{_CALLBACK}.optimizer_step_frequency: {trainer.accumulate_grad_batches} instead"
            )
        if trainer.gradient_clip_val:
            raise AutotrainError(
                f"trainer.gradient_clip_val={trainer.gradient_clip_val} cannot be combined with "
                f"{_CALLBACK} (manual optimization); remove it and set "
                f"{_CALLBACK}.gradient_clip_norm: {trainer.gradient_clip_val} instead"
            )
        if getattr(trainer.precision_plugin, "scaler", None) is not None:
            raise AutotrainError(
                f"trainer.precision={trainer.precision!r} uses a loss scaler, which {_CALLBACK} "
                "does not support; use precision bf16-mixed or 32-true, or remove the callback"
            )

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        stepping = getattr(pl_module, "manual_stepping", None)
        # Loaders of unknown length: the last batch was not recognisable, so the partial window
        # steps here (Lightning counts steps in training_step only: global_step stays).
        if stepping is not None and stepping.controller.pending:
            manual_optimizer_step(pl_module, log_on_step=False)

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        # The module stays in manual mode after fit: ``trainer.global_step`` reads the manual
        # step counter only while ``automatic_optimization`` is False. A later fit with this
        # callback re-attaches; ``disable_manual_stepping(module)`` reverts for other uses.
        if stage == "fit" and self._stepping is not None:
            self._skipped_steps = self._stepping.controller.skipped_steps
            self._stepping = None

    @property
    def skipped_steps(self) -> int:
        """Optimizer steps skipped for non-finite gradients (so far, or in the last fit)."""
        if self._stepping is not None:
            return self._stepping.controller.skipped_steps
        return self._skipped_steps

    def state_dict(self) -> dict[str, Any]:
        return {"skipped_steps": self.skipped_steps}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._skipped_steps = int(state_dict.get("skipped_steps", 0))
        if self._stepping is not None:
            self._stepping.controller.skipped_steps = self._skipped_steps
