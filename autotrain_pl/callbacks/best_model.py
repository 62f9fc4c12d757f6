"""``BestModelCallback``: keep the export of the best model by any monitored metric.

``ModelCheckpoint`` keeps Lightning checkpoints (weights plus optimizer state, for resuming);
this keeps a plain Hugging Face directory of the best model, written by
``autotrain_pl.models.export_model`` exactly like the final ``export/``, so it loads as is in
transformers, vLLM or the completers. ``best.json`` beside it records the metric and step.

When it checks, and why there (each check exports only on an improvement, see
``BestModelCallback.is_better``):

- ``on_validation_end``: after ``val/loss`` and every ``val/<metric>`` of the validation run;
- ``on_train_batch_start`` once per new optimizer step or epoch: catches values logged in
  ``on_train_batch_end``/``on_train_epoch_end`` (e.g. ``PeriodicEvalCallback(every_n_steps=N)``)
  whatever the order of the callbacks, while the weights are still those that were scored;
- ``on_fit_end``: catches the final evaluation of ``PeriodicEvalCallback(eval_at_end=True)``.

Rank 0 decides and exports; its decision is broadcast, so all ranks agree, then they meet at a
barrier.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_warn

from autotrain_pl.errors import AutotrainError
from autotrain_pl.training.policy import PolicyHolder

log = logging.getLogger(__name__)

BEST_JSON = "best.json"


class BestModelCallback(Callback):
    """Export the model to ``dirpath`` each time ``monitor`` reaches a new best value.

    Args:
        monitor: a logged metric, e.g. ``val/loss``, ``val/exact_match`` or ``val/rougeL``.
        mode: ``min`` (lower is better) or ``max``.
        dirpath: where the best export goes; default ``<default_root_dir>/best``.

    An improvement is a value strictly better than the best so far, or equal to it at a later
    step: on a plateau (accuracy stuck at 1.0, a loss that stopped moving) the later model is
    at least as good by the metric and more trained, so ``best/`` follows it. A value re-read
    from an earlier measurement (later hooks and steps see the last validation's value again)
    is no improvement, nor is a value at the step already exported; NaN never is.

    Attributes:
        best_value, best_step: the best value so far and the global step it was last reached at.
    """

    def __init__(self, monitor: str = "val/loss", mode: str = "min",
                 dirpath: str | Path | None = None) -> None:
        if not isinstance(monitor, str) or not monitor:
            raise AutotrainError("BestModelCallback.monitor must name a logged metric, e.g. val/loss")
        if mode not in ("min", "max"):
            raise AutotrainError(f"BestModelCallback.mode={mode!r}; use min or max")
        self.monitor = monitor
        self.mode = mode
        self.dirpath = Path(dirpath) if dirpath is not None else None
        self.best_value: float | None = None
        self.best_step: int | None = None
        self._checked_at: tuple[int, int] | None = None  # (global_step, epoch) of the last check
        self._last_seen: Any = None  # the monitored value object the last check read

    @property
    def state_key(self) -> str:
        return self._generate_state_key(monitor=self.monitor, mode=self.mode)

    def state_dict(self) -> dict[str, Any]:
        return {"best_value": self.best_value, "best_step": self.best_step}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best_value = state_dict.get("best_value")
        self.best_step = state_dict.get("best_step")

    def best_dir(self, trainer: Trainer) -> Path:
        """The export directory: ``dirpath`` or ``<default_root_dir>/best``."""
        return self.dirpath or Path(trainer.default_root_dir) / "best"

    # -- Lightning hooks --------------------------------------------------------------------
    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any,
                             batch_idx: int) -> None:
        position = (trainer.global_step, trainer.current_epoch)
        if position != self._checked_at:  # the same on every rank, so the broadcast matches
            self._checked_at = position
            self._check(trainer, pl_module)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.state.fn == "fit" and not trainer.sanity_checking:
            self._check(trainer, pl_module)

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._check(trainer, pl_module)
        if self.best_value is None:
            available = sorted(trainer.callback_metrics)
            rank_zero_warn(f"BestModelCallback: {self.monitor!r} was never logged, so no best "
                           f"model was exported; logged metrics: {available}")

    # -- decision and export ----------------------------------------------------------------
    def is_better(self, value: float, step: int | None = None) -> bool:
        """Strictly better than the best so far, or equal to it at a ``step`` later than the
        best's (a plateau keeps the later model). NaN never is."""
        if math.isnan(value):
            return False
        if self.best_value is None:
            return True
        if value == self.best_value:
            return step is not None and self.best_step is not None and step > self.best_step
        return value < self.best_value if self.mode == "min" else value > self.best_value

    def _check(self, trainer: Trainer, pl_module: LightningModule) -> None:
        current = trainer.callback_metrics.get(self.monitor)
        # A value left over from an earlier measurement must not count as a tie at a later step.
        fresh = not _same_measurement(current, self._last_seen)
        self._last_seen = current  # held, so its memory cannot be reused by a new value
        value = None if current is None else float(current)
        step = trainer.global_step if fresh else None
        improved = value is not None and self.is_better(value, step)
        improved, value = trainer.strategy.broadcast((improved, value), src=0)
        if improved:
            self._export(trainer, pl_module, value)

    def _export(self, trainer: Trainer, pl_module: LightningModule, value: float) -> None:
        self.best_value, self.best_step = value, trainer.global_step
        if not isinstance(pl_module, PolicyHolder) or pl_module.tokenizer is None:
            raise AutotrainError("BestModelCallback needs an autotrain_pl objective with a "
                                 "tokenizer (trained on a ChatDataModule)")
        if trainer.is_global_zero:
            out = pl_module.export(self.best_dir(trainer))
            record = {"monitor": self.monitor, "mode": self.mode, "value": value,
                      "step": trainer.global_step, "epoch": trainer.current_epoch, "path": str(out)}
            (out / BEST_JSON).write_text(json.dumps(record, indent=2) + "\n")
            log.info("new best %s=%.4g at step %d; exported to %s", self.monitor, value,
                     trainer.global_step, out)
        trainer.strategy.barrier()


def _same_measurement(current: Any, previous: Any) -> bool:
    """Whether ``current`` re-reads the value ``previous`` was read from.

    Lightning hands out a fresh ``detach()`` of its cached tensor at every read of
    ``callback_metrics``, so identity does not tell; a new measurement is a new tensor with its
    own memory, while a re-read shares the cached tensor's.
    """
    if current is None or previous is None:
        return current is previous
    if current is previous:
        return True
    if isinstance(current, torch.Tensor) and isinstance(previous, torch.Tensor):
        return (current.untyped_storage().data_ptr() == previous.untyped_storage().data_ptr()
                and current.storage_offset() == previous.storage_offset())
    return False
