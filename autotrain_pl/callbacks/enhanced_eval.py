"""The seed-style ``use_enhanced_eval`` switch of an objective, mapped onto the eval callbacks.

Configs written for the original trainer say, on the model (``model.init_args``)::

    use_enhanced_eval: true
    eval_metrics: perplexity,bleu,rouge     # or a list; default [perplexity]
    eval_steps: 50                          # optional: every 50 optimizer steps
    eval_batch_size: 8                      # prompts generated for at once
    eval_dataset_path: heldout.jsonl        # optional: a held-out set of its own (eval/...)
    eval_save_predictions: true             # predictions/step_<N>.jsonl per evaluation
    eval_benchmark: arc                     # optional, with eval_benchmark_data: a local copy
    eval_benchmark_data: data/ai2_arc

``ObjectiveModule.configure_callbacks`` then returns ``enhanced_eval_callbacks(...)``:

- ``PeriodicEvalCallback`` on the validation rows for the text metrics (``val/bleu``,
  ``val/rouge1``...). ``perplexity`` needs no generation there: the objective logs ``val/ppl``;
- with ``eval_dataset_path``, a second ``PeriodicEvalCallback`` on that file for every metric,
  perplexity included, logged as ``eval/<metric>``;
- with ``eval_benchmark``, a ``BenchmarkEvalCallback`` logging ``eval/<benchmark>_acc`` (and
  ``_acc_norm``); ``arc`` and ``truthfulqa`` run as the Open LLM Leaderboard ran them;
- a ``MetricsLoggerCallback`` (``metrics.jsonl`` and plots).

They evaluate every ``eval_steps`` optimizer steps if set, else at every validation run (or,
without validation data, at the end of every epoch), and once more at the end of fit. Lightning
merges these with the trainer's callbacks; one of the same type in ``trainer.callbacks`` is
replaced by the module's. Every key is checked in the objective's ``__init__``, before the model
loads (``check_enhanced_eval``), and an error names the key.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from lightning.pytorch import Callback
from lightning.pytorch.utilities import rank_zero_info

from autotrain_pl.errors import AutotrainError

#: Metrics the objective computes from the validation forward pass itself.
LOSS_METRICS = frozenset({"perplexity", "loss"})
#: Metric names that score tokens, not generated text.
TOKEN_METRICS = frozenset({"perplexity"})
DEFAULT_METRICS = ("perplexity",)


@dataclass(frozen=True)
class EnhancedEvalOptions:
    """The objective's ``eval_*`` keys, as given (field names are the config keys)."""

    eval_metrics: Sequence[str] | str | None = None
    eval_steps: int | None = None
    eval_batch_size: int = 8
    eval_dataset_path: str | None = None
    eval_save_predictions: bool = False
    eval_benchmark: str | None = None
    eval_benchmark_data: str | None = None
    eval_benchmark_num_fewshot: int | None = None
    eval_benchmark_limit: int | None = None

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def non_default(self) -> list[str]:
        """The keys set to something other than their default."""
        return [f.name for f in fields(self) if getattr(self, f.name) != f.default]

    @property
    def metrics(self) -> list[str]:
        """``eval_metrics`` as a list (a comma string split), default ``[perplexity]``."""
        return parse_eval_metrics(self.eval_metrics)


def parse_eval_metrics(eval_metrics: Sequence[str] | str | None) -> list[str]:
    """``"perplexity,bleu,rouge"`` or ``[perplexity, bleu, rouge]`` -> the list; None -> default."""
    if eval_metrics is None:
        return list(DEFAULT_METRICS)
    if isinstance(eval_metrics, str):
        names = [name.strip() for name in eval_metrics.split(",")]
    elif isinstance(eval_metrics, Sequence):
        names = list(eval_metrics)
    else:
        raise AutotrainError(f"model.eval_metrics={eval_metrics!r} must be a list or a comma "
                             "string, e.g. perplexity,bleu,rouge")
    if not all(isinstance(name, str) and name.strip() for name in names) or not names:
        raise AutotrainError(f"model.eval_metrics={eval_metrics!r} must name metrics, e.g. "
                             "perplexity,bleu,rouge")
    names = [name.strip() for name in names]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise AutotrainError(f"model.eval_metrics lists {duplicates} more than once; keep one")
    return names


def generation_metrics(eval_metrics: Sequence[str] | str | None) -> list[str]:
    """The names in ``eval_metrics`` that need generated text (checked), in order."""
    from autotrain_pl.evaluation.metrics import available_metrics
    from autotrain_pl.evaluation.metrics.registry import METRICS

    if eval_metrics is None:
        return []
    names = [name for name in parse_eval_metrics(eval_metrics)
             if name.lower() not in LOSS_METRICS]
    known = {name.lower() for name in available_metrics()}
    for name in names:
        if "." in name:
            try:
                METRICS.get(name)  # imports the user's metric now, not at the first evaluation
            except AutotrainError as error:
                raise AutotrainError(f"model.eval_metrics: {error}") from None
        elif name.lower() not in known:
            raise AutotrainError(
                f"model.eval_metrics: unknown metric {name!r}; use one of "
                f"{available_metrics()}, or an import path like my_pkg.metrics.MyMetric"
            )
    return names


def _check_positive(key: str, value: Any, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise AutotrainError(f"model.{key}={value!r} must be a positive integer")


def _check_path(key: str, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not value.strip():
        raise AutotrainError(f"model.{key}={value!r} must be a path")
    if not os.path.exists(os.path.expanduser(value)):
        raise AutotrainError(f"model.{key}={value!r} does not exist; give an existing file or "
                             "folder")


def _check_benchmark(options: EnhancedEvalOptions) -> None:
    from autotrain_pl.callbacks.benchmark_eval import describe_benchmark
    from autotrain_pl.data.validation import spell_options

    benchmark = options.eval_benchmark
    for key in ("eval_benchmark_data", "eval_benchmark_num_fewshot", "eval_benchmark_limit"):
        if benchmark is None and getattr(options, key) is not None:
            raise AutotrainError(f"model.{key} applies to model.eval_benchmark; set it or "
                                 f"remove model.{key}")
    if benchmark is None:
        return
    if not isinstance(benchmark, str) or not benchmark.strip():
        raise AutotrainError(f"model.eval_benchmark={benchmark!r} must name a benchmark, e.g. arc")
    _check_path("eval_benchmark_data", options.eval_benchmark_data)
    _check_positive("eval_benchmark_limit", options.eval_benchmark_limit)
    shots = options.eval_benchmark_num_fewshot
    if shots is not None and (isinstance(shots, bool) or not isinstance(shots, int) or shots < 0):
        raise AutotrainError(f"model.eval_benchmark_num_fewshot={shots!r} must be 0 or more")
    try:
        with spell_options({"num_fewshot": "model.eval_benchmark_num_fewshot",
                            "benchmark": "model.eval_benchmark"}):
            describe_benchmark(benchmark, shots)
    except AutotrainError as error:
        message = str(error)
        raise AutotrainError(message if "model.eval_benchmark" in message
                             else f"model.eval_benchmark={benchmark!r}: {message}") from None
    offline = any(os.environ.get(name, "").lower() in ("1", "true", "yes")
                  for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))
    if options.eval_benchmark_data is None and offline:
        raise AutotrainError(
            f"model.eval_benchmark={benchmark!r} needs model.eval_benchmark_data (a local copy "
            "in the hub layout) here: the hub is offline (HF_HUB_OFFLINE)"
        )


def check_enhanced_eval(use_enhanced_eval: bool, eval_metrics: Sequence[str] | str | None = None,
                        eval_steps: int | None = None, **options: Any) -> EnhancedEvalOptions:
    """Fail in the objective's ``__init__``, before the model loads, on a bad key or
    combination; return the options."""
    unknown = sorted(set(options) - set(EnhancedEvalOptions.keys()))
    if unknown:
        raise TypeError(f"check_enhanced_eval got unknown options {unknown}")
    given = EnhancedEvalOptions(eval_metrics=eval_metrics, eval_steps=eval_steps, **options)
    _check_positive("eval_steps", given.eval_steps)
    if not use_enhanced_eval:
        if given.non_default():
            keys = "/".join(given.non_default())
            raise AutotrainError(
                f"model.{keys} take effect only with model.use_enhanced_eval=true; set it or "
                "remove them"
            )
        return given
    generation_metrics(given.eval_metrics)
    _check_positive("eval_batch_size", given.eval_batch_size, allow_none=False)
    if not isinstance(given.eval_save_predictions, bool):
        raise AutotrainError(f"model.eval_save_predictions={given.eval_save_predictions!r} "
                             "must be true or false")
    if given.eval_dataset_path is not None:
        from autotrain_pl.data.sources import check_source_ref

        if not isinstance(given.eval_dataset_path, str):
            raise AutotrainError(f"model.eval_dataset_path={given.eval_dataset_path!r} must be "
                                 "a path")
        check_source_ref(given.eval_dataset_path, "model.eval_dataset_path")
    _check_benchmark(given)
    return given


def has_validation_data(datamodule: Any) -> bool:
    """Whether fit will run validation: a ``ChatDataModule`` without ``valid_path``,
    ``valid_split`` or ``valid_fraction`` does not. Other (or no) data modules: assumed yes."""
    keys = ("valid_path", "valid_split", "valid_fraction")
    if datamodule is None or not all(hasattr(datamodule, key) for key in keys):
        return True
    return any(getattr(datamodule, key) for key in keys)


def enhanced_eval_callbacks(eval_metrics: Sequence[str] | str | None = None,
                            eval_steps: int | None = None, *, has_validation: bool = True,
                            **options: Any) -> list[Callback]:
    """The callbacks that ``use_enhanced_eval`` stands for (see module docstring).

    Args:
        eval_metrics, eval_steps, **options: the ``EnhancedEvalOptions`` keys.
        has_validation: whether fit runs validation (``has_validation_data``); without it the
            evaluations run at the end of every epoch unless ``eval_steps`` is set.
    """
    from autotrain_pl.callbacks.benchmark_eval import BenchmarkEvalCallback
    from autotrain_pl.callbacks.metrics_logger import MetricsLoggerCallback
    from autotrain_pl.callbacks.periodic_eval import PeriodicEvalCallback

    given = check_enhanced_eval(True, eval_metrics, eval_steps, **options)
    metrics = given.metrics
    text = generation_metrics(metrics)
    schedule: dict[str, Any] = {"every_n_steps": given.eval_steps}
    if not given.eval_steps and not has_validation:
        schedule = {"every_n_epochs": 1}
    common = {"batch_size": given.eval_batch_size, "save_predictions": given.eval_save_predictions,
              **schedule}
    callbacks: list[Callback] = []
    described = []
    on_validation = text or (given.eval_save_predictions and not given.eval_dataset_path)
    if on_validation and (has_validation or not given.eval_dataset_path):
        callbacks.append(PeriodicEvalCallback(metrics=text, **common))
        described.append(f"{', '.join(text) or 'predictions'} on the validation rows (val/)")
    own = [m for m in metrics if m.lower() in TOKEN_METRICS or m in text]
    if given.eval_dataset_path and (own or given.eval_save_predictions):
        callbacks.append(PeriodicEvalCallback(metrics=own, data_path=given.eval_dataset_path,
                                              **common))
        described.append(f"{', '.join(own) or 'predictions'} on {given.eval_dataset_path} "
                         "(eval/)")
    if given.eval_benchmark:
        benchmark = BenchmarkEvalCallback(
            given.eval_benchmark, data_path=given.eval_benchmark_data,
            num_fewshot=given.eval_benchmark_num_fewshot, limit=given.eval_benchmark_limit,
            batch_size=given.eval_batch_size, **schedule)
        callbacks.append(benchmark)
        described.append(f"eval_benchmark={benchmark.description}")
    callbacks.append(MetricsLoggerCallback())
    steps = given.eval_steps
    when = (f"every {steps} optimizer step{'s' if steps != 1 else ''}" if steps else
            "at each validation" if has_validation else "at each epoch end")
    if described:
        rank_zero_info(f"use_enhanced_eval: {'; '.join(described)}; {when} and at the end")
    return callbacks
