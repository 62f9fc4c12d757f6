"""``PeriodicEvalCallback``: generation metrics on the validation conversations during training.

Loss says little about whether a model answers correctly, so this callback generates replies for
the held-out conversations (``ChatDataModule.eval_conversations``) and scores them with
``autotrain_pl.evaluation.generation.generate_and_score``, the same function the evaluator and
the quickstart use. Each metric is logged as ``val/<metric>``.

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

``trainer.validate``/``trainer.test`` evaluate too (``val/`` or ``test/`` on the test rows).

Distributed: every rank generates for its shard ``conversations[rank::world_size]`` and the
torchmetrics states are summed across ranks in ``compute()``, so all ranks log the same value;
no rank idles at a barrier. Ranks generate at their own pace, so FSDP/DeepSpeed stage 3 (whose
forward passes must run in lockstep) is not supported.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import RichProgressBar
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_info

from autotrain_pl.errors import AutotrainError
from autotrain_pl.evaluation.generation import generate_and_score
from autotrain_pl.training.policy import PolicyHolder


@runtime_checkable
class HeldOutConversations(Protocol):
    """A data module that gives the held-out conversations (``ChatDataModule`` does)."""

    def eval_conversations(self, stage: str = "validate") -> list: ...


_NAME = "PeriodicEvalCallback"


def _positive(field: str, value: int | None, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise AutotrainError(f"{_NAME}.{field}={value!r} must be a positive integer")


def check_metric_names(metrics: Sequence[str]) -> list[str]:
    """Fail at construction, before any model loads, on a metric name that cannot work."""
    from autotrain_pl.evaluation.metrics import available_metrics

    if isinstance(metrics, str) or not metrics:
        raise AutotrainError(f"{_NAME}.metrics must be a non-empty list, e.g. [exact_match]")
    known = {name.lower() for name in available_metrics()}
    for name in metrics:
        if not isinstance(name, str):
            raise AutotrainError(f"{_NAME}.metrics: {name!r} is not a metric name")
        if name.lower() == "perplexity":
            raise AutotrainError(
                f"{_NAME}.metrics: perplexity scores tokens, not generated text, and the "
                "objective already logs it as val/ppl; remove it from metrics"
            )
        if name.lower() not in known and "." not in name:
            raise AutotrainError(
                f"{_NAME}.metrics: unknown metric {name!r}; use one of {available_metrics()} "
                "or an import path like my_pkg.metrics.MyMetric"
            )
    return list(metrics)


class PeriodicEvalCallback(Callback):
    """Generate replies for the validation conversations and log their metrics as ``val/<m>``.

    Args:
        metrics: text metric names (``exact_match``, ``bleu``, ``rougeL``, ``chrf``,
            ``token_f1``, ``accuracy``, ... or an import path).
        every_n_steps: evaluate after every N-th optimizer step instead of at validation runs.
        every_n_epochs: evaluate at the end of every N-th training epoch instead.
        eval_at_start: evaluate once before the first training step.
        eval_at_end: evaluate the final model when training ends.
        limit: evaluate at most this many conversations (None: all). ``trainer.limit_val_batches``
            caps it further (an int N allows N * ``batch_size``; a fraction, that share).
        batch_size: prompts generated for at once.
        max_new_tokens: longest reply, in tokens (greedy decoding).
        num_samples_to_log: prompt/prediction/reference examples shown per evaluation, on the
            console and as text in loggers that take it (TensorBoard, W&B).
        metric_kwargs: per-metric arguments, e.g. ``{exact_match: {normalize: false}}``.
        summary: with ``eval_at_start`` and ``eval_at_end``, print one line
            ``"{summary} before={x:.2f} after={y:.2f}"`` for the first metric when fit ends
            (in ``teardown``, after the export, so it is the last line of the fit).

    Attributes:
        history: one dict per evaluation: ``step``, ``epoch``, ``when`` and the metric values.
        start_metrics, end_metrics: the values before and after training (unprefixed names).
    """

    def __init__(
        self,
        metrics: Sequence[str] = ("exact_match",),
        every_n_steps: int | None = None,
        every_n_epochs: int | None = None,
        eval_at_start: bool = False,
        eval_at_end: bool = True,
        limit: int | None = 200,
        batch_size: int = 64,
        max_new_tokens: int = 64,
        num_samples_to_log: int = 3,
        metric_kwargs: dict[str, dict[str, Any]] | None = None,
        summary: str | None = None,
    ) -> None:
        self.metrics = check_metric_names(metrics)
        for field, value in (("every_n_steps", every_n_steps), ("every_n_epochs", every_n_epochs),
                             ("limit", limit)):
            _positive(field, value)
        for field, value in (("batch_size", batch_size), ("max_new_tokens", max_new_tokens)):
            _positive(field, value, allow_none=False)
        if every_n_steps and every_n_epochs:
            raise AutotrainError(f"{_NAME}: set every_n_steps or every_n_epochs, not both")
        if isinstance(num_samples_to_log, bool) or num_samples_to_log < 0:
            raise AutotrainError(f"{_NAME}.num_samples_to_log={num_samples_to_log!r} must be >= 0")
        unused = set(metric_kwargs or {}) - set(self.metrics)
        if unused:
            raise AutotrainError(
                f"{_NAME}.metric_kwargs has {sorted(unused)}, which are not in metrics; "
                "add them to metrics or remove them"
            )
        if summary is not None and not (eval_at_start and eval_at_end):
            raise AutotrainError(
                f"{_NAME}.summary compares before and after training; set eval_at_start=true "
                "and eval_at_end=true"
            )
        self.every_n_steps = every_n_steps
        self.every_n_epochs = every_n_epochs
        self.eval_at_start = bool(eval_at_start)
        self.eval_at_end = bool(eval_at_end)
        self.limit = limit
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.num_samples_to_log = num_samples_to_log
        self.metric_kwargs = {name: dict(kw) for name, kw in (metric_kwargs or {}).items()}
        self.summary = summary
        self.history: list[dict[str, Any]] = []
        self.start_metrics: dict[str, float] | None = None
        self.end_metrics: dict[str, float] | None = None
        self._conversations: dict[str, list] = {}
        self._last: tuple[int, dict[str, float]] | None = None  # (step, metrics) during fit
        self._fit_finished = False

    # -- Lightning hooks --------------------------------------------------------------------
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self._conversations = {}
        if stage == "fit":  # fail before training, not at the first evaluation
            self._eval_conversations(trainer, "validate")

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
        self._log(pl_module, metrics, "val", logger=False)
        self._send_to_loggers(trainer, {f"val/{k}": v for k, v in metrics.items()})

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.every_n_epochs and (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self._log(pl_module, self._evaluate(trainer, pl_module, "validate", "epoch"), "val")

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking:
            return
        fitting = trainer.state.fn == "fit"
        if fitting and (self.every_n_steps or self.every_n_epochs):
            return
        self._log(pl_module, self._evaluate(trainer, pl_module, "validate",
                                            "validation" if fitting else "validate"), "val")

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
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
            raise AutotrainError(f"{_NAME}: no before/after values yet; call after fit")
        key = next(iter(self.start_metrics))
        return (f"{self.summary} before={self.start_metrics[key]:.2f} "
                f"after={self.end_metrics[key]:.2f}")

    # -- evaluation -------------------------------------------------------------------------
    def _eval_conversations(self, trainer: Trainer, stage: str) -> list:
        if stage not in self._conversations:
            datamodule = trainer.datamodule
            if not isinstance(datamodule, HeldOutConversations):
                raise AutotrainError(
                    f"{_NAME} reads the held-out conversations from the data module; use a "
                    "ChatDataModule (trainer.fit(model, datamodule=...) or data: in the config)"
                )
            conversations = list(datamodule.eval_conversations(stage))
            if not conversations:
                what = "test_path" if stage == "test" else "valid_path, valid_split or valid_fraction"
                raise AutotrainError(f"{_NAME} found no held-out data; set data.init_args.{what}")
            self._conversations[stage] = conversations
        return self._conversations[stage]

    def _effective_limit(self, trainer: Trainer, available: int, stage: str) -> int:
        limit = available if self.limit is None else min(self.limit, available)
        cap = trainer.limit_test_batches if stage == "test" else trainer.limit_val_batches
        if isinstance(cap, int) and not isinstance(cap, bool) and cap >= 1:
            limit = min(limit, cap * self.batch_size)
        elif isinstance(cap, float) and 0.0 < cap < 1.0:
            limit = min(limit, max(1, math.ceil(cap * available)))
        return limit

    def _evaluate(self, trainer: Trainer, pl_module: LightningModule, stage: str,
                  when: str) -> dict[str, float]:
        from autotrain_pl.generation import SamplingConfig

        if not isinstance(pl_module, PolicyHolder) or pl_module.renderer is None:
            raise AutotrainError(
                f"{_NAME} needs an autotrain_pl objective with a tokenizer and renderer "
                "(trained on a ChatDataModule)"
            )
        model, tokenizer, renderer = pl_module.model, pl_module.tokenizer, pl_module.renderer
        conversations = self._eval_conversations(trainer, stage)
        chosen = conversations[: self._effective_limit(trainer, len(conversations), stage)]
        if len(chosen) < trainer.world_size:
            raise AutotrainError(
                f"{_NAME}.limit leaves {len(chosen)} conversations for {trainer.world_size} "
                "ranks; raise limit so every rank gets at least one"
            )
        shard = chosen[trainer.global_rank :: trainer.world_size]
        sampling = SamplingConfig(max_new_tokens=self.max_new_tokens, temperature=0.0)
        with torch.no_grad():
            scores = generate_and_score(
                model, tokenizer, renderer, shard, self.metrics, sampling=sampling,
                batch_size=self.batch_size, metric_kwargs=self.metric_kwargs or None,
            )
        metrics = {name: float(value) for name, value in scores.metrics.items()}
        step = trainer.global_step
        self.history.append({"step": step, "epoch": trainer.current_epoch, "when": when,
                             **metrics})
        if trainer.state.fn == "fit":
            self._last = (step, metrics)
        prefix = "test" if stage == "test" else "val"
        self._log_samples(trainer, scores.records, prefix, step)
        return metrics

    # -- reporting --------------------------------------------------------------------------
    def _log(self, pl_module: LightningModule, metrics: dict[str, float], prefix: str,
             logger: bool = True) -> None:
        for name, value in metrics.items():
            # Already reduced over ranks by torchmetrics, so no sync_dist.
            pl_module.log(f"{prefix}/{name}", value, logger=logger, sync_dist=False, batch_size=1)

    def _publish(self, trainer: Trainer, metrics: dict[str, float]) -> None:
        """Values from hooks that cannot ``self.log``: to the loggers and to the monitors."""
        prefixed = {f"val/{name}": value for name, value in metrics.items()}
        self._send_to_loggers(trainer, prefixed)
        trainer.callback_metrics.update({k: torch.tensor(v) for k, v in prefixed.items()})

    @staticmethod
    def _send_to_loggers(trainer: Trainer, metrics: dict[str, float]) -> None:
        # Optimizer steps done: the public counter closest to the step Lightning logs at.
        step = trainer.global_step
        for logger in trainer.loggers:
            logger.log_metrics({**metrics, "epoch": trainer.current_epoch}, step=step)

    def _log_samples(self, trainer: Trainer, records: list[dict[str, Any]], prefix: str,
                     step: int) -> None:
        if not self.num_samples_to_log or not records or not trainer.is_global_zero:
            return
        rows = [(_prompt_text(r["prompt"]), r["prediction"], r["reference"])
                for r in records[: self.num_samples_to_log]]
        lines = [f"  prompt: {p!r} | prediction: {pred!r} | reference: {ref!r}"
                 for p, pred, ref in rows]
        rank_zero_info(f"{prefix} samples at step {step}:\n" + "\n".join(lines))
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                table = "| prompt | prediction | reference |\n|---|---|---|\n" + "\n".join(
                    "| " + " | ".join(_cell(x) for x in row) + " |" for row in rows)
                logger.experiment.add_text(f"{prefix}/samples", table, global_step=step)
            elif callable(getattr(logger, "log_text", None)):  # e.g. WandbLogger
                logger.log_text(key=f"{prefix}/samples", columns=["prompt", "prediction",
                                "reference"], data=[list(r) for r in rows], step=step)


def _prompt_text(prompt: list[dict[str, Any]]) -> str:
    """The last user turn: the question, without system prompt or earlier turns."""
    users = [m.get("content", "") for m in prompt if m.get("role") == "user"]
    return str(users[-1] if users else (prompt[-1].get("content", "") if prompt else ""))


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
