"""``EvaluationConfig``: what ``Evaluator`` evaluates, checked before anything loads."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from autotrain_pl.errors import AutotrainError

TASKS = ("language_modeling", "generation", "benchmark")
DEFAULT_METRICS = {"language_modeling": ["perplexity"], "generation": ["bleu", "rougeL"]}
TOKEN_METRICS = ("perplexity",)


@dataclass
class EvaluationConfig:
    """What to evaluate and how.

    Attributes:
        task: ``language_modeling``, ``generation`` or ``benchmark``; None infers it (a
            ``benchmark`` name means benchmark, text metrics mean generation).
        data_path: chat data (file, folder, dataset name) for ``Evaluator.run()``
            (``Evaluator.evaluate(rows)`` takes rows instead); for benchmarks a local copy in
            the hub layout or None for the hub dataset.
        metrics: metric names, a list or a comma string; default ``[perplexity]`` or
            ``[bleu, rougeL]``. ``rouge`` means rouge1, rouge2 and rougeL. Token metrics
            (``perplexity``) beside text metrics are measured in the same generation run.
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
        row_format: row format of ``data_path`` (``auto`` detects it from the columns).
        column_mapping: rename columns ``{old: new}`` of ``data_path`` before detection.

    Metric names and ``metric_kwargs`` are checked here, so a typo fails before a model loads.
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
    row_format: str = "auto"
    column_mapping: dict[str, str] | None = None

    def __post_init__(self) -> None:
        from autotrain_pl.data.validation import option_name as opt
        from autotrain_pl.data.validation import option_setting

        if isinstance(self.metrics, str):
            self.metrics = [m.strip() for m in self.metrics.split(",") if m.strip()]
        if self.task is None:
            text_metrics = [m for m in self.metrics or [] if _key(m) not in TOKEN_METRICS]
            self.task = "benchmark" if self.benchmark else (
                "generation" if text_metrics else "language_modeling")
        if self.task not in TASKS:
            raise AutotrainError(f"{opt('task')}={self.task!r} is not known; use one of "
                                 f"{list(TASKS)}")
        for name in ("batch_size", "limit", "max_length"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise AutotrainError(f"{opt(name)}={value!r} must be a positive integer")
        if not isinstance(self.num_fewshot, int) or self.num_fewshot < 0:
            raise AutotrainError(f"{opt('num_fewshot')}={self.num_fewshot!r} must be 0 or more")
        if self.task == "benchmark":
            self._check_benchmark()
        else:  # data_path is checked by Evaluator.run(): evaluate(rows) needs none
            if self.benchmark:
                raise AutotrainError(f"{opt('benchmark')}={self.benchmark!r} needs "
                                     f"{option_setting('task', 'benchmark')}")
            self.metrics = list(self.metrics or DEFAULT_METRICS[self.task])
            self._check_metrics()
            self._check_data_options()
        if self.task == "language_modeling" and self.predictions_path:
            raise AutotrainError(f"{opt('predictions_path')} applies to generation and "
                                 "benchmark tasks, not language_modeling; remove it")
        if self.task != "generation" and self.sampling is not None:
            raise AutotrainError(f"{opt('sampling')} applies to "
                                 f"{option_setting('task', 'generation')} only, not {self.task}")
        self.sampling = _sampling(self.sampling) if self.task == "generation" else None

    def _check_metrics(self) -> None:
        """Names, arguments and kinds (text or token) of the metrics, before anything loads."""
        from autotrain_pl.data.validation import option_name as opt
        from autotrain_pl.data.validation import option_setting
        from autotrain_pl.evaluation.metrics.registry import METRICS, check_metrics

        check_metrics(self.metrics, self.metric_kwargs)
        builtin = [m for m in self.metrics if "." not in m and m in METRICS]
        if self.task == "language_modeling":
            wrong = [m for m in builtin if _key(m) not in TOKEN_METRICS]
            fix = option_setting("task", "generation")
            kind = "score generated text, not tokens"
        else:  # token metrics beside text metrics are measured in the same run
            text = [m for m in self.metrics if _key(m) not in TOKEN_METRICS]
            wrong = [] if text else builtin
            fix = option_setting("task", "language_modeling")
            kind = "score tokens, not generated text (add a text metric to measure both)"
        if wrong:
            raise AutotrainError(
                f"{opt('metrics')}: {wrong} {kind}, so they do not apply to task "
                f"{self.task}; use {fix} for them, or remove them"
            )

    def _check_data_options(self) -> None:
        from autotrain_pl.data.formats import ROW_FORMATS
        from autotrain_pl.data.validation import option_name as opt
        from autotrain_pl.data.validation import option_setting

        if not isinstance(self.row_format, str) or (
            self.row_format != "auto" and self.row_format.replace("-", "_") not in ROW_FORMATS
        ):
            raise AutotrainError(f"{opt('row_format')}={self.row_format!r} is unknown; use auto "
                                 f"or one of: {', '.join(ROW_FORMATS)}")
        mapping = self.column_mapping
        if mapping is not None and not (
            isinstance(mapping, Mapping)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items())
        ):
            example = option_setting("column_mapping", {"question": "prompt"})
            raise AutotrainError(f"{opt('column_mapping')} must map old column names to new "
                                 f"ones, e.g. {example}; got {mapping!r:.60}")

    def _check_benchmark(self) -> None:
        from autotrain_pl.data.validation import option_name as opt
        from autotrain_pl.evaluation.benchmarks import SCORING_METHODS, get_benchmark

        if not self.benchmark:
            raise AutotrainError(f"task=benchmark needs {opt('benchmark')} (e.g. mmlu, "
                                 "arc_challenge)")
        get_benchmark(self.benchmark).check_num_fewshot(self.num_fewshot)
        if self.metrics:
            raise AutotrainError(
                f"{opt('metrics')}={self.metrics} do not apply to benchmarks (they report "
                f"acc/acc_norm); remove {opt('metrics')}"
            )
        if self.metric_kwargs:
            raise AutotrainError(f"{opt('metric_kwargs')} does not apply to benchmarks; remove it")
        if self.row_format != "auto" or self.column_mapping:
            raise AutotrainError(
                f"{opt('row_format')} and {opt('column_mapping')} apply to chat data, not to "
                "benchmarks (their columns are fixed); remove them"
            )
        if self.scoring not in SCORING_METHODS:
            raise AutotrainError(f"{opt('scoring')}={self.scoring!r}; use one of "
                                 f"{SCORING_METHODS}")
        self.metrics = []

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (the sampling config as its fields)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.init}
        out["sampling"] = asdict(self.sampling) if self.sampling is not None else None
        return json.loads(json.dumps(out, default=str))


def _key(metric_name: str) -> str:
    """Registry lookup key of a metric name (names are case-insensitive)."""
    return metric_name.strip().lower()


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
