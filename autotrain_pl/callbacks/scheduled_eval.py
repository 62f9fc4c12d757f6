"""``ScheduledEvalCallback``: when an evaluation runs during training and where its values go.

The evaluation callbacks (``PeriodicEvalCallback``: generation metrics and perplexity on held-out
conversations; ``BenchmarkEvalCallback``: a multiple-choice benchmark) differ only in what they
measure (``evaluate``); this base class owns the schedule and the reporting, so they keep the
same one.

When it evaluates, and why there:

- by default at every validation run, in ``on_validation_epoch_end``: the values are logged next
  to ``val/loss``, so ``EarlyStopping``/``ModelCheckpoint`` (which check in ``on_validation_end``,
  or in ``on_train_epoch_end`` after all other callbacks) and ``BestModelCallback`` see them;
- with ``every_n_steps``: in ``on_train_batch_end`` after every N-th optimizer step, whatever
  ``val_check_interval`` is. Monitors read the latest value at their next check, so align
  ``val_check_interval`` with N when early stopping on it;
- with ``every_n_epochs``: in ``on_train_epoch_end``, which Lightning runs before its monitoring
  callbacks;
- ``eval_at_start`` (``on_train_start``) and ``eval_at_end`` (``on_train_end``, while the model is
  still on its device): Lightning forbids ``self.log`` at a fixed step there, so the values go to
  the trainer's loggers directly (so ``metrics.jsonl`` has them) and into
  ``trainer.callback_metrics`` (so ``BestModelCallback`` can keep the initial or final model).
  The end evaluation reuses the last result when nothing trained since.

``trainer.validate`` evaluates too, and ``trainer.test`` for callbacks that measure the test rows
(``test/`` prefix). Values are logged as ``<prefix>/<metric>`` (``val/`` by default).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import RichProgressBar

from autotrain_pl.errors import AutotrainError


def check_positive(owner: str, field: str, value: int | None, allow_none: bool = True) -> None:
    """``owner.field`` must be a positive integer (or None where allowed)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise AutotrainError(f"{owner}.{field}={value!r} must be a positive integer")


class ScheduledEvalCallback(Callback):
    """Run ``evaluate`` on a schedule during fit and log its values (see module docstring).

    Args:
        every_n_steps: evaluate after every N-th optimizer step instead of at validation runs.
        every_n_epochs: evaluate at the end of every N-th training epoch instead.
        eval_at_start: evaluate once before the first training step.
        eval_at_end: evaluate the final model when training ends.
        prefix: logged names are ``<prefix>/<metric>``.
        summary: with ``eval_at_start`` and ``eval_at_end``, print one line
            ``"{summary} before={x:.2f} after={y:.2f}"`` for the first metric when fit ends
            (in ``teardown``, after the export, so it is the last line of the fit).

    Attributes:
        history: one dict per evaluation: ``step``, ``epoch``, ``when`` and the metric values.
        start_metrics, end_metrics: the values before and after training (unprefixed names).
    """

    #: Whether ``trainer.test`` runs an evaluation (on the test rows, logged as ``test/``).
    evaluates_test: ClassVar[bool] = True

    def __init__(
        self,
        every_n_steps: int | None = None,
        every_n_epochs: int | None = None,
        eval_at_start: bool = False,
        eval_at_end: bool = True,
        prefix: str = "val",
        summary: str | None = None,
    ) -> None:
        name = type(self).__name__
        for field, value in (("every_n_steps", every_n_steps), ("every_n_epochs", every_n_epochs)):
            check_positive(name, field, value)
        if every_n_steps and every_n_epochs:
            raise AutotrainError(f"{name}: set every_n_steps or every_n_epochs, not both")
        if summary is not None and not (eval_at_start and eval_at_end):
            raise AutotrainError(
                f"{name}.summary compares before and after training; set eval_at_start=true "
                "and eval_at_end=true"
            )
        if not isinstance(prefix, str) or not prefix or "/" in prefix:
            raise AutotrainError(f"{name}.prefix={prefix!r} must be a name without '/', e.g. val")
        self.every_n_steps = every_n_steps
        self.every_n_epochs = every_n_epochs
        self.eval_at_start = bool(eval_at_start)
        self.eval_at_end = bool(eval_at_end)
        self.prefix = prefix
        self.summary = summary
        self.history: list[dict[str, Any]] = []
        self.start_metrics: dict[str, float] | None = None
        self.end_metrics: dict[str, float] | None = None
        self._last: tuple[int, dict[str, float]] | None = None  # (step, metrics) during fit
        self._fit_finished = False

    # -- what subclasses provide ------------------------------------------------------------
    def prepare(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Read what the evaluations need, in ``setup``: a fit fails before training, not at
        the first evaluation."""

    def evaluate(self, trainer: Trainer, pl_module: LightningModule, stage: str,
                 when: str) -> dict[str, float]:
        """Measure the model; ``stage`` is ``validate`` or ``test``, ``when`` says which hook
        (``start``, ``step``, ``epoch``, ``validation``, ``validate``, ``test``, ``end``)."""
        raise NotImplementedError(f"{type(self).__name__} must implement evaluate")

    def log_prefix(self, stage: str) -> str:
        return "test" if stage == "test" else self.prefix

    # -- Lightning hooks --------------------------------------------------------------------
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self.prepare(trainer, pl_module, stage)

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.start_metrics = self.end_metrics = self._last = None

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.eval_at_start:
            self.start_metrics = self._evaluate(trainer, pl_module, "validate", "start")
            self._publish(trainer, self.start_metrics)

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        if not self.every_n_steps or step == 0 or step % self.every_n_steps:
            return
        if self._last is not None and self._last[0] == step:  # later micro-batch, same step
            return
        metrics = self._evaluate(trainer, pl_module, "validate", "step")
        # Log on every such step, not only on log_every_n_steps boundaries.
        self._log(pl_module, metrics, self.prefix, logger=False)
        self._send_to_loggers(trainer, {f"{self.prefix}/{k}": v for k, v in metrics.items()})

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.every_n_epochs and (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self._log(pl_module, self._evaluate(trainer, pl_module, "validate", "epoch"),
                      self.prefix)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking:
            return
        fitting = trainer.state.fn == "fit"
        if fitting and (self.every_n_steps or self.every_n_epochs):
            return
        self._log(pl_module, self._evaluate(trainer, pl_module, "validate",
                                            "validation" if fitting else "validate"), self.prefix)

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.evaluates_test:
            self._log(pl_module, self._evaluate(trainer, pl_module, "test", "test"), "test")

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self.eval_at_end:
            return
        if self._last is not None and self._last[0] == trainer.global_step:
            self.end_metrics = dict(self._last[1])  # nothing trained since the last evaluation
            return
        self.end_metrics = self._evaluate(trainer, pl_module, "validate", "end")
        self._publish(trainer, self.end_metrics)

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._fit_finished = True

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        # Printed here, after the objective's export in on_fit_end, so it is the fit's last line.
        trained = self.start_metrics is not None and self.end_metrics is not None
        # A resumed run that had already finished trains (and evaluates) nothing: no summary.
        if stage == "fit" and self._fit_finished and self.summary is not None and trained:
            bar = trainer.progress_bar_callback
            if isinstance(bar, RichProgressBar):  # it renders its last frame when it stops
                bar.teardown(trainer, pl_module, stage)  # idempotent
            if trainer.is_global_zero:
                print(self.summary_line(), flush=True)
        self._fit_finished = False

    # -- results ----------------------------------------------------------------------------
    def summary_line(self) -> str:
        """``"{summary} before={x:.2f} after={y:.2f}"`` for the first metric."""
        if self.start_metrics is None or self.end_metrics is None:
            raise AutotrainError(f"{type(self).__name__}: no before/after values yet; call "
                                 "after fit")
        key = next(iter(self.start_metrics))
        return (f"{self.summary} before={self.start_metrics[key]:.2f} "
                f"after={self.end_metrics[key]:.2f}")

    # -- reporting --------------------------------------------------------------------------
    def _evaluate(self, trainer: Trainer, pl_module: LightningModule, stage: str,
                  when: str) -> dict[str, float]:
        metrics = {name: float(value) for name, value in
                   self.evaluate(trainer, pl_module, stage, when).items()}
        step = trainer.global_step
        self.history.append({"step": step, "epoch": trainer.current_epoch, "when": when,
                             **metrics})
        if trainer.state.fn == "fit":
            self._last = (step, metrics)
        return metrics

    @staticmethod
    def _log(pl_module: LightningModule, metrics: dict[str, float], prefix: str,
             logger: bool = True) -> None:
        for name, value in metrics.items():
            # Already the same on every rank (reduced, or computed alike), so no sync_dist.
            pl_module.log(f"{prefix}/{name}", value, logger=logger, sync_dist=False, batch_size=1)

    def _publish(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        """Values from hooks that cannot ``self.log``: to the loggers and to the monitors."""
        prefixed = {f"{self.prefix}/{name}": value for name, value in metrics.items()}
        self._send_to_loggers(trainer, prefixed)
        trainer.callback_metrics.update({k: torch.tensor(v) for k, v in prefixed.items()})

    @staticmethod
    def _send_to_loggers(trainer: Trainer, metrics: dict[str, float]) -> None:
        # Optimizer steps done: the public counter closest to the step Lightning logs at.
        step = trainer.global_step
        for logger in trainer.loggers:
            logger.log_metrics({**metrics, "epoch": trainer.current_epoch}, step=step)
