"""``PeriodicEvalCallback``: generation metrics (and perplexity) on held-out conversations.

Loss says little about whether a model answers correctly, so this callback generates replies for
held-out conversations and scores them with ``autotrain_pl.evaluation.generation.
generate_and_score``, the same function the evaluator and the quickstart use. The schedule (every
validation run, every N steps or epochs, start and end) is ``ScheduledEvalCallback``'s.

Which conversations:

- by default the data module's validation rows (``ChatDataModule.eval_conversations``), logged as
  ``val/<metric>``. ``trainer.validate``/``trainer.test`` evaluate too (``val/`` or ``test/`` on
  the test rows);
- with ``data_path``, a held-out file of its own, separate from the validation set and logged
  as ``eval/<metric>``. ``perplexity`` may then be named too: the token-weighted perplexity of
  that file (``evaluation.evaluate_language_modeling``, the evaluator's), with the data module's
  ``max_length`` and ``train_on``. (On the validation rows the objective already logs it as
  ``val/ppl``.)

``save_predictions`` writes every evaluation's rows (prompt, reference, prediction, step) to
``<default_root_dir>/predictions/step_<N>.jsonl`` (``<prefix>_step_<N>.jsonl`` for a prefix
other than ``val``), on rank 0, gathered from all ranks in the held-out order.

Distributed: every rank generates for its shard ``conversations[rank::world_size]`` and the
torchmetrics states are summed across ranks in ``compute()``, so all ranks log the same value;
no rank idles at a barrier. Ranks generate at their own pace, so FSDP/DeepSpeed stage 3 (whose
forward passes must run in lockstep) is not supported. Perplexity of a ``data_path`` is computed
whole on every rank (the same value everywhere).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_info

from autotrain_pl.callbacks.scheduled_eval import ScheduledEvalCallback, check_positive
from autotrain_pl.errors import AutotrainError
from autotrain_pl.evaluation.generation import generate_and_score
from autotrain_pl.training.policy import PolicyHolder


@runtime_checkable
class HeldOutConversations(Protocol):
    """A data module that gives the held-out conversations (``ChatDataModule`` does)."""

    def eval_conversations(self, stage: str = "validate") -> list: ...


_NAME = "PeriodicEvalCallback"
#: Metrics measured on tokens rather than generated text (only with ``data_path``).
TOKEN_METRICS = frozenset({"perplexity"})


def _positive(field: str, value: int | None, allow_none: bool = True) -> None:
    check_positive(_NAME, field, value, allow_none)


def check_metric_names(metrics: Sequence[str], allow_perplexity: bool = False,
                       allow_empty: bool = False) -> list[str]:
    """Fail at construction, before any model loads, on a metric name that cannot work."""
    from autotrain_pl.evaluation.metrics import available_metrics

    if isinstance(metrics, str) or not (metrics or allow_empty):
        raise AutotrainError(f"{_NAME}.metrics must be a non-empty list, e.g. [exact_match]")
    known = {name.lower() for name in available_metrics()}
    for name in metrics:
        if not isinstance(name, str):
            raise AutotrainError(f"{_NAME}.metrics: {name!r} is not a metric name")
        if name.lower() in TOKEN_METRICS and not allow_perplexity:
            raise AutotrainError(
                f"{_NAME}.metrics: perplexity scores tokens, not generated text, and the "
                "objective already logs it as val/ppl; remove it from metrics (or give a "
                "data_path of its own to measure)"
            )
        if name.lower() not in known and "." not in name:
            raise AutotrainError(
                f"{_NAME}.metrics: unknown metric {name!r}; use one of {available_metrics()} "
                "or an import path like my_pkg.metrics.MyMetric"
            )
    return list(metrics)


class PeriodicEvalCallback(ScheduledEvalCallback):
    """Generate replies for held-out conversations and log their metrics (module docstring).

    Args:
        metrics: text metric names (``exact_match``, ``bleu``, ``rouge``, ``rougeL``, ``chrf``,
            ``token_f1``, ``accuracy``, ... or an import path); with ``data_path`` also
            ``perplexity``. Empty with ``save_predictions``: generate only to save.
        every_n_steps: evaluate after every N-th optimizer step instead of at validation runs.
        every_n_epochs: evaluate at the end of every N-th training epoch instead.
        eval_at_start: evaluate once before the first training step.
        eval_at_end: evaluate the final model when training ends.
        limit: evaluate at most this many conversations (None: all). On the validation rows
            ``trainer.limit_val_batches`` caps it further (an int N allows N * ``batch_size``;
            a fraction, that share).
        batch_size: prompts generated for (and, for perplexity, rows scored) at once.
        max_new_tokens: longest reply, in tokens (greedy decoding).
        num_samples_to_log: prompt/prediction/reference examples shown per evaluation, on the
            console and as text in loggers that take it (TensorBoard, W&B).
        metric_kwargs: per-metric arguments, e.g. ``{exact_match: {normalize: false}}``.
        summary: with ``eval_at_start`` and ``eval_at_end``, print one line
            ``"{summary} before={x:.2f} after={y:.2f}"`` for the first metric when fit ends.
        data_path: a held-out file of its own (jsonl, json, csv, parquet; the data module's
            ``row_format`` and ``column_mapping``) instead of the validation rows.
        prefix: logged names are ``<prefix>/<metric>``; default ``val``, or ``eval`` with
            ``data_path``.
        save_predictions: write each evaluation's predictions as JSONL (module docstring).

    Attributes:
        history: one dict per evaluation: ``step``, ``epoch``, ``when`` and the metric values.
        start_metrics, end_metrics: the values before and after training (unprefixed names).
        predictions_paths: the JSONL files written (rank 0).
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
        data_path: str | None = None,
        prefix: str | None = None,
        save_predictions: bool = False,
    ) -> None:
        self.metrics = check_metric_names(metrics, allow_perplexity=data_path is not None,
                                          allow_empty=bool(save_predictions))
        _positive("limit", limit)
        for field, value in (("batch_size", batch_size), ("max_new_tokens", max_new_tokens)):
            _positive(field, value, allow_none=False)
        if isinstance(num_samples_to_log, bool) or num_samples_to_log < 0:
            raise AutotrainError(f"{_NAME}.num_samples_to_log={num_samples_to_log!r} must be >= 0")
        unused = set(metric_kwargs or {}) - set(self.metrics)
        if unused:
            raise AutotrainError(
                f"{_NAME}.metric_kwargs has {sorted(unused)}, which are not in metrics; "
                "add them to metrics or remove them"
            )
        if data_path is not None:
            from autotrain_pl.data.sources import check_source_ref

            check_source_ref(data_path, f"{_NAME}.data_path")
        super().__init__(every_n_steps=every_n_steps, every_n_epochs=every_n_epochs,
                         eval_at_start=eval_at_start, eval_at_end=eval_at_end,
                         prefix=prefix or ("eval" if data_path else "val"), summary=summary)
        self.limit = limit
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.num_samples_to_log = num_samples_to_log
        self.metric_kwargs = {name: dict(kw) for name, kw in (metric_kwargs or {}).items()}
        self.data_path = data_path
        self.save_predictions = bool(save_predictions)
        self.evaluates_test = data_path is None  # its own file has no test split
        self.predictions_paths: list[Path] = []
        self._conversations: dict[str, list] = {}
        self._source = None  # the loaded data_path, for perplexity

    @property
    def text_metrics(self) -> list[str]:
        return [m for m in self.metrics if m.lower() not in TOKEN_METRICS]

    # -- ScheduledEvalCallback --------------------------------------------------------------
    def prepare(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self._conversations = {}
        self._source = None
        if stage == "fit":  # fail before training, not at the first evaluation
            self._eval_conversations(trainer, "validate")

    def evaluate(self, trainer: Trainer, pl_module: LightningModule, stage: str,
                 when: str) -> dict[str, float]:
        if not isinstance(pl_module, PolicyHolder) or pl_module.renderer is None:
            raise AutotrainError(
                f"{_NAME} needs an autotrain_pl objective with a tokenizer and renderer "
                "(trained on a ChatDataModule)"
            )
        conversations = self._eval_conversations(trainer, stage)
        count = self._effective_limit(trainer, len(conversations), stage)
        metrics: dict[str, float] = {}
        if len(self.text_metrics) < len(self.metrics):
            metrics.update(self._perplexity(trainer, pl_module, count))
        if self.text_metrics or self.save_predictions:
            metrics.update(self._generate(trainer, pl_module, conversations[:count], stage))
        return metrics

    # -- evaluation -------------------------------------------------------------------------
    def _eval_conversations(self, trainer: Trainer, stage: str) -> list:
        if stage not in self._conversations:
            if self.data_path is not None:
                self._conversations[stage] = self._read_own_data(trainer)
                return self._conversations[stage]
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

    def _read_own_data(self, trainer: Trainer) -> list:
        from autotrain_pl.data.reading import read_source
        from autotrain_pl.evaluation.rows import source_records
        from autotrain_pl.rendering import Conversation, Preference

        datamodule = trainer.datamodule
        self._source = read_source(self.data_path,
                                   column_mapping=getattr(datamodule, "column_mapping", None))
        conversations = []
        for record in source_records(self._source, self._row_format(trainer)):
            if isinstance(record, Preference):
                record = Conversation(record.prompt + record.chosen, record.metadata)
            if not isinstance(record, Conversation):
                raise AutotrainError(f"{_NAME}.data_path={self.data_path!r} holds plain text; "
                                     "held-out evaluation needs chat rows")
            conversations.append(record)
        return conversations

    @staticmethod
    def _row_format(trainer: Trainer) -> str:
        return str(getattr(trainer.datamodule, "row_format", "auto"))

    def _effective_limit(self, trainer: Trainer, available: int, stage: str) -> int:
        limit = available if self.limit is None else min(self.limit, available)
        if self.data_path is not None:  # the trainer's caps are for its own loaders
            return limit
        cap = trainer.limit_test_batches if stage == "test" else trainer.limit_val_batches
        if isinstance(cap, int) and not isinstance(cap, bool) and cap >= 1:
            limit = min(limit, cap * self.batch_size)
        elif isinstance(cap, float) and 0.0 < cap < 1.0:
            limit = min(limit, max(1, math.ceil(cap * available)))
        return limit

    def _perplexity(self, trainer: Trainer, pl_module: LightningModule,
                    count: int) -> dict[str, float]:
        """Token-weighted perplexity of the first ``count`` rows of ``data_path``."""
        from autotrain_pl.data.sources import LoadedSource
        from autotrain_pl.evaluation.config import EvaluationConfig
        from autotrain_pl.evaluation.evaluator import evaluate_language_modeling

        datamodule = trainer.datamodule
        config = EvaluationConfig(
            task="language_modeling", data_path=self.data_path, batch_size=self.batch_size,
            max_length=getattr(datamodule, "max_length", None),
            train_on=str(getattr(datamodule, "train_on", "last_assistant_message")),
            row_format=self._row_format(trainer),
        )
        source = self._source
        if count < len(source.dataset):
            source = LoadedSource(source.dataset.select(range(count)), source.locator,
                                  source.splits)
        values, _, _ = evaluate_language_modeling(pl_module.model, pl_module.tokenizer,
                                                  pl_module.renderer, config, source=source)
        return {"perplexity": values["perplexity"]}

    def _generate(self, trainer: Trainer, pl_module: LightningModule, chosen: list,
                  stage: str) -> dict[str, float]:
        from autotrain_pl.generation import SamplingConfig

        if len(chosen) < trainer.world_size:
            raise AutotrainError(
                f"{_NAME}.limit leaves {len(chosen)} conversations for {trainer.world_size} "
                "ranks; raise limit so every rank gets at least one"
            )
        shard = chosen[trainer.global_rank :: trainer.world_size]
        sampling = SamplingConfig(max_new_tokens=self.max_new_tokens, temperature=0.0)
        with torch.no_grad():
            scores = generate_and_score(
                pl_module.model, pl_module.tokenizer, pl_module.renderer, shard,
                self.text_metrics, sampling=sampling, batch_size=self.batch_size,
                metric_kwargs=self.metric_kwargs or None,
            )
        prefix = self.log_prefix(stage)
        step = trainer.global_step
        self._log_samples(trainer, scores.records, prefix, step)
        if self.save_predictions:
            self._write_predictions(trainer, scores.records, prefix, step)
        return {name: float(value) for name, value in scores.metrics.items()}

    # -- reporting --------------------------------------------------------------------------
    def predictions_path(self, trainer: Trainer, prefix: str, step: int) -> Path:
        name = f"step_{step}.jsonl" if prefix == "val" else f"{prefix}_step_{step}.jsonl"
        return Path(trainer.default_root_dir) / "predictions" / name

    def _write_predictions(self, trainer: Trainer, records: list[dict[str, Any]], prefix: str,
                           step: int) -> None:
        from autotrain_pl.evaluation.evaluator import write_jsonl

        records = _gather_in_order(trainer, records)
        if not trainer.is_global_zero:
            return
        rows = [{"prompt": r["prompt"], "reference": r["reference"],
                 "prediction": r["prediction"], "step": step} for r in records]
        self.predictions_paths.append(write_jsonl(self.predictions_path(trainer, prefix, step),
                                                  rows))

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


def _gather_in_order(trainer: Trainer, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every rank's records (rank r held rows r, r + W, ...), back in the held-out order."""
    world = trainer.world_size
    if world == 1 or not torch.distributed.is_available() or \
            not torch.distributed.is_initialized():
        return list(records)
    shards: list[list[dict[str, Any]]] = [[] for _ in range(world)]
    torch.distributed.all_gather_object(shards, list(records))
    ordered = []
    for index in range(max(len(shard) for shard in shards)):
        ordered += [shard[index] for shard in shards if index < len(shard)]
    return ordered
