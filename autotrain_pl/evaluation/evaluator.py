"""``Evaluator``: one entry point for perplexity, generation metrics and benchmarks.

- ``language_modeling``: token-weighted perplexity over a chat dataset. Rows go through the same
  encoding and collation as training (``data.encode_dataset``, ``SFTCollator``), so loss weights
  come from the renderer and ``train_on``; ``training.forward_logprobs`` derives the
  targets and skips padding and untrained tokens. The number therefore matches ``exp`` of the
  validation loss a fit logs on the same data.
- ``generation``: replies through ``evaluation.generation.generate_and_score`` (greedy unless
  ``sampling`` says otherwise), scored by text metrics.
- ``benchmark``: a multiple-choice benchmark scored by log-likelihood
  (``evaluation.benchmarks``), on plain-text prompts as lm-evaluation-harness does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from autotrain_pl.errors import AutotrainError
from autotrain_pl.evaluation.result import EvaluationResult

TASKS = ("language_modeling", "generation", "benchmark")
DEFAULT_METRICS = {"language_modeling": ["perplexity"], "generation": ["bleu", "rougeL"]}
TOKEN_METRICS = ("perplexity",)


@dataclass
class EvaluationConfig:
    """What to evaluate and how.

    Attributes:
        task: ``language_modeling``, ``generation`` or ``benchmark``; None infers it (a
            ``benchmark`` name means benchmark, text metrics mean generation).
        data_path: chat data (file, folder, dataset name); for benchmarks a local copy in the
            hub layout or None for the hub dataset.
        metrics: metric names; default ``[perplexity]`` or ``[bleu, rougeL]``.
        batch_size: samples (benchmarks: questions) per forward or ``generate`` call.
        limit: evaluate only the first ``limit`` samples.
        chat_format: renderer when the model's export records none (None: export, else auto).
        sampling: ``SamplingConfig`` or its fields for generation; default greedy, 64 tokens.
        predictions_path: write one JSONL record (prompt, prediction, reference) per sample.
        benchmark: ``mmlu``, ``hellaswag``, ``arc_easy``, ``arc_challenge``,
            ``truthfulqa_mc1`` or ``truthfulqa_mc2``.
        num_fewshot: solved examples before each benchmark question.
        split: data split (benchmarks default to the harness's split, e.g. ``test``).
        subset: dataset configuration (MMLU subject, ``ARC-Easy``...).
        max_length: longest sample in tokens (language_modeling: truncation, default 1024;
            benchmarks: longest input, default the model's maximum).
        train_on: which tokens the perplexity covers (``TrainOnWhat``), as in training.
        metric_kwargs: per-metric arguments, e.g. ``{"bertscore": {"model_name_or_path": ..}}``.
        scoring: multiple-choice scorer (``shared_context``, ``batched``, ``naive``).
        add_bos_token: prepend BOS to benchmark contexts (harness ``add_bos_token``).
        fewshot_seed: seed of the random few-shot sampler (harness default 1234).
        dtype: weight dtype when loading a model reference.
        device: ``cuda``, ``mps`` or ``cpu`` for a model reference (None: the best available).
    """

    task: str | None = None
    data_path: str | None = None
    metrics: list[str] | None = None
    batch_size: int = 8
    limit: int | None = None
    chat_format: str | None = None
    sampling: Any = None
    predictions_path: str | None = None
    benchmark: str | None = None
    num_fewshot: int = 0
    split: str | None = None
    subset: str | None = None
    max_length: int | None = None
    train_on: str = "last_assistant_message"
    metric_kwargs: dict[str, dict[str, Any]] | None = None
    scoring: str = "shared_context"
    add_bos_token: bool = False
    fewshot_seed: int = 1234
    dtype: str = "float32"
    device: str | None = None

    def __post_init__(self) -> None:
        if self.task is None:
            text_metrics = [m for m in self.metrics or [] if m not in TOKEN_METRICS]
            self.task = "benchmark" if self.benchmark else (
                "generation" if text_metrics else "language_modeling")
        if self.task not in TASKS:
            raise AutotrainError(f"task={self.task!r} is not known; use one of {list(TASKS)}")
        for name in ("batch_size", "limit", "max_length"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise AutotrainError(f"{name}={value!r} must be a positive integer")
        if not isinstance(self.num_fewshot, int) or self.num_fewshot < 0:
            raise AutotrainError(f"num_fewshot={self.num_fewshot!r} must be 0 or more")
        if isinstance(self.metrics, str):
            self.metrics = [m.strip() for m in self.metrics.split(",") if m.strip()]
        if self.task == "benchmark":
            self._check_benchmark()
        else:
            if not self.data_path:
                raise AutotrainError(f"task={self.task} needs data_path (the evaluation data)")
            if self.benchmark:
                raise AutotrainError(f"benchmark={self.benchmark!r} needs task=benchmark")
            self.metrics = list(self.metrics or DEFAULT_METRICS[self.task])
        if self.task == "language_modeling" and self.predictions_path:
            raise AutotrainError("predictions_path applies to generation and benchmark tasks, "
                                 "not language_modeling; remove it")
        if self.task != "generation" and self.sampling is not None:
            raise AutotrainError(f"sampling applies to task=generation only, not {self.task}")
        self.sampling = _sampling(self.sampling) if self.task == "generation" else None

    def _check_benchmark(self) -> None:
        from autotrain_pl.evaluation.benchmarks import SCORING_METHODS, get_benchmark

        if not self.benchmark:
            raise AutotrainError("task=benchmark needs benchmark (e.g. mmlu, arc_challenge)")
        get_benchmark(self.benchmark).check_num_fewshot(self.num_fewshot)
        if self.metrics:
            raise AutotrainError(
                f"metrics={self.metrics} do not apply to benchmarks (they report acc/acc_norm); "
                "remove metrics"
            )
        if self.scoring not in SCORING_METHODS:
            raise AutotrainError(f"scoring={self.scoring!r}; use one of {SCORING_METHODS}")
        self.metrics = []

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (the sampling config as its fields)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.init}
        out["sampling"] = asdict(self.sampling) if self.sampling is not None else None
        return json.loads(json.dumps(out, default=str))


def _sampling(value: Any):
    from autotrain_pl.generation.sampling import SamplingConfig

    if value is None:
        return SamplingConfig(max_new_tokens=64, temperature=0.0)
    if isinstance(value, SamplingConfig):
        return value
    if isinstance(value, Mapping):
        known = {f.name for f in fields(SamplingConfig)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise AutotrainError(f"sampling has unknown fields {unknown}; use {sorted(known)}")
        options = {"max_new_tokens": 64, "temperature": 0.0, **value}
        if isinstance(options.get("stop"), list):
            options["stop"] = tuple(options["stop"])
        return SamplingConfig(**options)
    raise AutotrainError(
        f"sampling must be a SamplingConfig or a mapping, got {type(value).__name__}"
    )


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
        start = time.perf_counter()
        model, tokenizer, renderer, model_ref = self.load()
        loaded = time.perf_counter()
        task = self.config.task
        if task == "language_modeling":
            metrics, details, records = evaluate_language_modeling(model, tokenizer, renderer,
                                                                   self.config)
        elif task == "generation":
            metrics, details, records = self._generation(model, tokenizer, renderer)
        else:
            metrics, details, records = self._benchmark(model, tokenizer)
        done = time.perf_counter()
        if self.config.predictions_path and records is not None:
            details["predictions_path"] = str(write_jsonl(self.config.predictions_path, records))
        samples = details.get("num_docs") or details.get("num_samples") or 0
        timings = {"load_s": loaded - start, "run_s": done - loaded, "total_s": done - start,
                   "samples_per_s": samples / max(done - loaded, 1e-9)}
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
    def _generation(self, model, tokenizer, renderer):
        from autotrain_pl.data import load_conversations
        from autotrain_pl.evaluation.generation import generate_and_score
        from autotrain_pl.rendering import Conversation, Preference

        config = self.config
        conversations = []
        for record in load_conversations(config.data_path, split=config.split,
                                         subset=config.subset, max_samples=config.limit):
            if isinstance(record, Preference):
                record = Conversation(record.prompt + record.chosen, record.metadata)
            if not isinstance(record, Conversation):
                raise AutotrainError(
                    f"{config.data_path}: generation needs chat rows (messages or prompt and "
                    "completion), not plain text; use task=language_modeling for text"
                )
            conversations.append(record)
        scores = generate_and_score(
            model, tokenizer, renderer, conversations, config.metrics, sampling=config.sampling,
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


def evaluate_language_modeling(model, tokenizer, renderer, config: EvaluationConfig
                               ) -> tuple[dict[str, float], dict[str, Any], None]:
    """Token-weighted perplexity (and mean NLL) of ``model`` on ``config.data_path``."""
    import torch

    from autotrain_pl.data.collate import SFTCollator, resolve_pad_token_id
    from autotrain_pl.data.encoding import encode_dataset
    from autotrain_pl.data.reading import read_source, source_format
    from autotrain_pl.evaluation.metrics import build_metric_collection
    from autotrain_pl.training import forward_logprobs

    metrics = build_metric_collection(config.metrics, config.metric_kwargs)
    for name, metric in metrics.items():
        if metric.kind != "token" or not hasattr(metric, "update_from_token_nll"):
            raise AutotrainError(
                f"metric {name!r} scores generated text, not tokens; use task=generation for it"
            )
    source = read_source(config.data_path, split=config.split, subset=config.subset,
                         max_samples=config.limit)
    dataset, stats = encode_dataset(
        source, source_format(source), renderer, mode="sft", train_on=config.train_on,
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
