"""``Evaluator``: one entry point for perplexity, generation metrics and benchmarks.

- ``language_modeling``: token-weighted perplexity over a chat dataset. Rows go through the same
  encoding and collation as training (``data.encode_dataset``, ``SFTCollator``), so loss weights
  come from the renderer and ``train_on``; ``training.forward_logprobs`` derives the
  targets and skips padding and untrained tokens. The number therefore matches ``exp`` of the
  validation loss a fit logs on the same data.
- ``generation``: replies through ``evaluation.generation.generate_and_score`` (greedy unless
  ``sampling`` says otherwise), scored by text metrics. Token metrics named beside them
  (``[perplexity, bleu, rouge]``) are measured on the same rows in the same run, exactly as the
  ``language_modeling`` task measures them.
- ``benchmark``: a multiple-choice benchmark scored by log-likelihood
  (``evaluation.benchmarks``), on plain-text prompts as lm-evaluation-harness does.

``run()`` reads ``data_path``; ``evaluate(rows)`` takes rows in memory (a list or a
``datasets.Dataset``, see ``evaluation.rows``) and reports the same numbers for the same rows.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from autotrain_pl.errors import AutotrainError
from autotrain_pl.evaluation.config import (
    DEFAULT_METRICS,
    TASKS,
    TOKEN_METRICS,
    EvaluationConfig,
)
from autotrain_pl.evaluation.result import EvaluationResult

__all__ = [
    "DEFAULT_METRICS",
    "TASKS",
    "TOKEN_METRICS",
    "EvaluationConfig",
    "Evaluator",
    "evaluate_language_modeling",
    "write_jsonl",
]


class Evaluator:
    """Evaluate a model on one task; ``run()`` returns an ``EvaluationResult``.

    Args:
        model: a model reference (``builtin:tiny``, a directory, an exported run, a hub id), an
            objective (``training.PolicyHolder``), or a ``(model, tokenizer)`` / ``(model, tokenizer, renderer)``
            tuple. Given objects are used where they are (device, dtype); a reference is loaded.
        config: the evaluation config; keyword overrides are applied on top.
    """

    def __init__(self, model: Any, config: EvaluationConfig | None = None, **overrides: Any
                 ) -> None:
        if config is None:
            config = EvaluationConfig(**overrides)
        elif overrides:
            config = replace(config, **overrides)
        self.config = config
        self.model_source = model
        self._loaded: tuple[Any, Any, Any, str | None] | None = None

    def run(self) -> EvaluationResult:
        """Evaluate ``config.data_path`` (or the benchmark): read the data and build the metrics,
        then load the model and evaluate.

        Data and metric problems (an empty file, an unknown column layout, a BERTScore model
        that is not there) therefore fail before the model loads.
        """
        if self.config.task != "benchmark" and not self.config.data_path:
            from autotrain_pl.data.validation import option_name, option_setting

            raise AutotrainError(
                f"{option_setting('task', self.config.task)} needs {option_name('data_path')} "
                "(the evaluation data), or pass the rows to Evaluator.evaluate(rows)"
            )
        return self._run(None)

    def evaluate(self, dataset: Any) -> EvaluationResult:
        """Evaluate rows held in memory; the same numbers ``run()`` gives for the same rows.

        Args:
            dataset: a list of row dicts in any row format (``{"messages": [...]}``,
                ``{"prompt": .., "completion": ..}``...), of message lists or of
                ``Conversation`` objects; or a ``datasets.Dataset``. ``config.limit``,
                ``row_format`` and ``column_mapping`` apply as to a file.
        """
        from autotrain_pl.evaluation.rows import in_memory_source

        if self.config.task == "benchmark":
            raise AutotrainError("a benchmark reads its own data (data_path or the hub); call "
                                 "run() for it")
        return self._run(in_memory_source(dataset, self.config.limit,
                                          self.config.column_mapping))

    def _run(self, source) -> EvaluationResult:
        start = time.perf_counter()
        task = self.config.task
        prepared = self._prepare(source) if task != "benchmark" else None
        prepared_at = time.perf_counter()
        model, tokenizer, renderer, model_ref = self.load()
        loaded = time.perf_counter()
        if task == "benchmark":
            metrics, details, records = self._benchmark(model, tokenizer)
        else:
            metrics, details, records = self._chat_task(model, tokenizer, renderer, *prepared)
        done = time.perf_counter()
        if self.config.predictions_path and records is not None:
            details["predictions_path"] = str(write_jsonl(self.config.predictions_path, records))
        samples = details.get("num_docs") or details.get("num_samples") or 0
        running = (done - loaded) + (prepared_at - start)
        timings = {"load_s": loaded - prepared_at, "run_s": running, "total_s": done - start,
                   "samples_per_s": samples / max(running, 1e-9)}
        return EvaluationResult(task, metrics, details, self.config.to_dict(), model_ref, timings)

    # -- loading ------------------------------------------------------------------------------
    def load(self) -> tuple[Any, Any, Any, str | None]:
        """(model, tokenizer, renderer or None, model reference), loaded once."""
        if self._loaded is None:
            source = self.model_source
            if isinstance(source, str):
                self._loaded = self._load_reference(source)
            elif isinstance(source, tuple | list):
                if len(source) not in (2, 3):
                    raise AutotrainError("pass (model, tokenizer) or (model, tokenizer, renderer)")
                model, tokenizer, renderer = (*source, None)[:3]
                self._loaded = self._attach(model, tokenizer, renderer, _name_of(model))
            else:
                self._loaded = self._load_module(source)
        return self._loaded

    def _load_reference(self, ref: str):
        from autotrain_pl.generation.factory import resolve_device
        from autotrain_pl.models import (
            chat_tokenizer,
            load_model,
            load_tokenizer,
            resolve_chat_format,
        )

        renderer = None
        if self.config.task == "benchmark":  # benchmarks score plain text: no chat tokens added
            tokenizer = load_tokenizer(ref)
        else:
            chat_format = resolve_chat_format(ref, self.config.chat_format)
            tokenizer, renderer = chat_tokenizer(ref, chat_format)
        model = load_model(ref, dtype=self.config.dtype, vocab_size=len(tokenizer))
        if not getattr(model, "hf_device_map", None):
            model.to(resolve_device(self.config.device))
        model.eval()
        return model, tokenizer, renderer, ref

    def _load_module(self, module):
        from autotrain_pl.training.policy import PolicyHolder

        if not isinstance(module, PolicyHolder):
            raise AutotrainError(
                f"Evaluator got a {type(module).__name__}; pass a model reference string, an "
                "autotrain_pl objective, or a (model, tokenizer[, renderer]) tuple"
            )
        ref = module.model_name_or_path
        tokenizer = module.tokenizer
        if tokenizer is None:
            from autotrain_pl.models import load_tokenizer

            tokenizer = load_tokenizer(ref)
        return self._attach(module.model, tokenizer, module.renderer, ref)

    def _attach(self, model, tokenizer, renderer, ref: str | None):
        """Build a renderer when one is needed and missing; grow embeddings for its tokens."""
        if renderer is None and self.config.task != "benchmark":
            from autotrain_pl.models import chat_tokenizer, fit_embeddings

            tokenizer, renderer = chat_tokenizer(tokenizer, self.config.chat_format or "auto")
            fit_embeddings(model, tokenizer)
        return model, tokenizer, renderer, ref

    # -- tasks --------------------------------------------------------------------------------
    def _prepare(self, source=None) -> tuple[Any, list | None, dict[str, Any], dict[str, Any]]:
        """The data and the built metrics, before any model loads: ``(source, conversations or
        None, token metrics, text metrics)``. ``source`` (rows in memory) or ``data_path``."""
        from autotrain_pl.data.reading import read_source, source_format
        from autotrain_pl.evaluation.metrics import build_metric_collection

        config = self.config
        if source is None:
            source = read_source(config.data_path, split=config.split, subset=config.subset,
                                 column_mapping=config.column_mapping, max_samples=config.limit)
        source_format(source, config.row_format)  # an unknown layout fails here
        metrics = build_metric_collection(config.metrics, config.metric_kwargs)
        token = {name: m for name, m in metrics.items() if m.kind == "token"}
        text = {name: m for name, m in metrics.items() if m.kind != "token"}
        conversations = self._conversations(source) if text else None
        return source, conversations, token, text

    def _conversations(self, source) -> list:
        from autotrain_pl.data.validation import option_setting
        from autotrain_pl.evaluation.rows import source_records
        from autotrain_pl.rendering import Conversation, Preference

        conversations = []
        for record in source_records(source, self.config.row_format):
            if isinstance(record, Preference):
                record = Conversation(record.prompt + record.chosen, record.metadata)
            if not isinstance(record, Conversation):
                raise AutotrainError(
                    f"{source.locator.name}: generation needs chat rows (messages or prompt and "
                    "completion), not plain text; use "
                    f"{option_setting('task', 'language_modeling')} for text"
                )
            conversations.append(record)
        return conversations

    def _chat_task(self, model, tokenizer, renderer, source, conversations, token_metrics,
                   text_metrics) -> tuple[dict[str, float], dict[str, Any], list | None]:
        """Token metrics (perplexity) and text metrics (generation) of the same rows."""
        metrics: dict[str, float] = {}
        details: dict[str, Any] = {}
        records = None
        if token_metrics:
            values, lm_details, _ = evaluate_language_modeling(
                model, tokenizer, renderer, self.config, source=source, metrics=token_metrics)
            metrics.update(values)
            details.update(lm_details)
        if text_metrics:
            values, generation_details, records = self._generation(
                model, tokenizer, renderer, conversations, text_metrics)
            metrics.update(values)
            details.update(generation_details)
        details["source"] = self.config.data_path or source.locator.name
        return metrics, details, records

    def _generation(self, model, tokenizer, renderer, conversations, metrics):
        from autotrain_pl.evaluation.generation import generate_and_score

        config = self.config
        scores = generate_and_score(
            model, tokenizer, renderer, conversations, metrics, sampling=config.sampling,
            batch_size=config.batch_size, limit=config.limit, metric_kwargs=config.metric_kwargs,
        )
        details = {"num_samples": len(scores.records), "source": config.data_path}
        return scores.metrics, details, scores.records

    def _benchmark(self, model, tokenizer):
        from autotrain_pl.evaluation.benchmarks import run_benchmark

        config = self.config
        run = run_benchmark(
            model, tokenizer, config.benchmark, data_path=config.data_path, split=config.split,
            subset=config.subset, num_fewshot=config.num_fewshot, limit=config.limit,
            batch_size=config.batch_size, method=config.scoring, fewshot_seed=config.fewshot_seed,
            add_bos_token=config.add_bos_token, max_length=config.max_length,
        )
        return run.metrics, run.details, run.records


def evaluate_language_modeling(model, tokenizer, renderer, config: EvaluationConfig,
                               source=None, metrics=None
                               ) -> tuple[dict[str, float], dict[str, Any], None]:
    """Token-weighted perplexity (and mean NLL) of ``model`` on ``config.data_path``.

    ``source`` (a ``LoadedSource``) and ``metrics`` (built) are read and built from ``config``
    when not given.
    """
    import torch

    from autotrain_pl.data.collate import SFTCollator, resolve_pad_token_id
    from autotrain_pl.data.encoding import encode_dataset
    from autotrain_pl.data.reading import read_source, source_format
    from autotrain_pl.data.validation import option_setting
    from autotrain_pl.evaluation.metrics import build_metric_collection
    from autotrain_pl.training import forward_logprobs

    if metrics is None:
        metrics = build_metric_collection(config.metrics, config.metric_kwargs)
    for name, metric in metrics.items():
        if metric.kind != "token" or not hasattr(metric, "update_from_token_nll"):
            raise AutotrainError(
                f"metric {name!r} scores generated text, not tokens; use "
                f"{option_setting('task', 'generation')} for it"
            )
    if source is None:
        source = read_source(config.data_path, split=config.split, subset=config.subset,
                             column_mapping=config.column_mapping, max_samples=config.limit)
    dataset, stats = encode_dataset(
        source, source_format(source, config.row_format), renderer, mode="sft",
        train_on=config.train_on,
        max_length=config.max_length or 1024, overlong_policy="truncate", split_name="eval",
    )
    rows = dataset.select_columns(["input_ids", "loss_weights"]).to_list()
    rows.sort(key=lambda row: -len(row["input_ids"]))  # similar lengths per batch: less padding
    collate = SFTCollator(resolve_pad_token_id(tokenizer))
    device = next(model.parameters()).device
    nll_sum, weight_sum = 0.0, 0.0
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(rows), config.batch_size):
                batch = collate(rows[start:start + config.batch_size])
                batch = {key: value.to(device) for key, value in batch.items()}
                logprobs, selection = forward_logprobs(model, batch)
                token_nll = -logprobs.double()
                for metric in metrics.values():
                    metric.update_from_token_nll(token_nll, selection.weights)
                weights = selection.weights.double()
                nll_sum += float((token_nll * weights).sum())
                weight_sum += float(weights.sum())
    finally:
        model.train(was_training)
    values = {name: float(metric.compute()) for name, metric in metrics.items()}
    values["nll"] = nll_sum / weight_sum if weight_sum else float("nan")
    details = {"num_samples": len(rows), "tokens": weight_sum, "source": config.data_path,
               "data_stats": stats.as_dict(), "train_on": config.train_on}
    return values, details, None


def write_jsonl(path: str | Path, records: list[dict[str, Any]]) -> Path:
    """One JSON object per line; parent folders are created."""
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
    return path


def _name_of(model) -> str | None:
    config = getattr(model, "config", None)
    return getattr(model, "autotrain_base_ref", None) or getattr(config, "_name_or_path", None)
