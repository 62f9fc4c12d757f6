"""Metric registry: names from configs (`eval_metrics: [perplexity, bleu, rougeL]`) to metrics.

A name is either registered (built-ins, or anything decorated with `@register_metric`; matched
case-insensitively) or an import path `package.module.ClassOrFactory` of user code, imported with
`autotrain_pl.importing.import_object`, never eval/exec. `METRICS` is the
`autotrain_pl.registry.Registry` behind these functions.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from torchmetrics import Metric

from autotrain_pl.errors import AutotrainError
from autotrain_pl.evaluation.metrics.answer import exact_match, f1, token_f1
from autotrain_pl.evaluation.metrics.base import TextMetric
from autotrain_pl.evaluation.metrics.bertscore import bertscore
from autotrain_pl.evaluation.metrics.chrf import chrf, chrf_plus_plus
from autotrain_pl.evaluation.metrics.classification import accuracy, f1_macro, f1_micro
from autotrain_pl.evaluation.metrics.meteor import meteor
from autotrain_pl.evaluation.metrics.overlap import bleu, sacrebleu
from autotrain_pl.evaluation.metrics.perplexity import WeightedPerplexity
from autotrain_pl.evaluation.metrics.rouge import rouge, rouge_set
from autotrain_pl.registry import Registry

EvalMetric = TextMetric | WeightedPerplexity
"""What the registry hands out; tell the two apart with `metric.kind` ("text" / "token")."""

MetricFactory = Callable[..., Any]
F = TypeVar("F", bound=MetricFactory)

METRICS: Registry[MetricFactory] = Registry(
    kind="metric",
    field="metric",
    normalize=lambda name: name.strip().lower(),
    example="my_pkg.metrics.MyMetric",
    accepts=callable,
    expects="callable; point the path at a metric class or factory",
)


def register_metric(name: str) -> Callable[[F], F]:
    """Decorator that registers a metric class or factory under `name`.

    The factory is called with the keyword arguments given to `get_metric`, and must return a
    `TextMetric`, a `WeightedPerplexity`, or a torchmetrics `Metric` whose
    `update(preds, target)` takes strings (it is then wrapped in a `TextMetric`).
    """
    return METRICS.register(name)


def available_metrics() -> list[str]:
    """Registered metric names, sorted."""
    return METRICS.names()


def _check_arguments(name: str, factory: MetricFactory, kwargs: Mapping[str, Any]) -> None:
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return  # no introspectable signature; let the call itself complain
    try:
        signature.bind(**kwargs)
    except TypeError as error:
        accepted = [p for p in signature.parameters if p not in ("args", "kwargs")]
        raise AutotrainError(
            f"metric {name!r}: bad arguments {sorted(kwargs)} ({error}); it accepts {accepted}"
        ) from error


def check_metrics(
    names: Sequence[str],
    metric_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    names_field: str = "metrics",
    kwargs_field: str = "metric_kwargs",
) -> None:
    """Check metric names and their arguments without building a metric (no model loads).

    Unknown names, duplicates, ``metric_kwargs`` entries for metrics not named, and arguments a
    metric does not accept all fail here, so a typo fails before an evaluation loads its model.
    Errors name ``names_field`` / ``kwargs_field`` as the running command spells them.
    """
    from autotrain_pl.data.validation import option_name, option_setting

    names_option, kwargs_option = option_name(names_field), option_name(kwargs_field)
    if isinstance(names, str) or not all(isinstance(name, str) for name in names):
        raise AutotrainError(
            f"{names_option} must be a list of metric names, e.g. "
            f"{option_setting(names_field, ['bleu', 'rougeL'])}"
        )
    duplicates = sorted({name for name in names if list(names).count(name) > 1})
    if duplicates:
        raise AutotrainError(f"{names_option} lists {duplicates} more than once; keep one of each")
    factories = {}
    for name in names:
        try:
            factories[name] = METRICS.get(name)
        except AutotrainError as error:
            raise AutotrainError(f"{names_option}: {error}") from None
    if metric_kwargs is None:
        return
    example = option_setting(kwargs_field, {"bertscore": {"model_name_or_path": "/path/to/model"}})
    if not isinstance(metric_kwargs, Mapping):
        raise AutotrainError(
            f"{kwargs_option} must map metric names to their arguments, e.g. {example}"
        )
    unused = sorted(set(metric_kwargs) - set(names))
    if unused:
        raise AutotrainError(
            f"{kwargs_option} has entries {unused} that are not in {names_option} {list(names)}; "
            f"add them to {names_option} or remove them"
        )
    for name, kwargs in metric_kwargs.items():
        if not isinstance(kwargs, Mapping):
            raise AutotrainError(
                f"{kwargs_option}[{name!r}] must be an object of arguments, got "
                f"{type(kwargs).__name__} ({kwargs!r:.60}); e.g. {example}"
            )
        try:
            _check_arguments(name, factories[name], kwargs)
        except AutotrainError as error:
            raise AutotrainError(f"{kwargs_option}: {error}") from None


def get_metric(name: str, /, **kwargs: Any) -> EvalMetric:
    """Build one metric by registered name or import path.

    Args:
        name: E.g. `"bleu"`, `"rougeL"`, `"perplexity"` or `"my_pkg.metrics.MyMetric"`.
        **kwargs: Passed to the metric's factory (e.g. `model_name_or_path` for bertscore,
            `labels` for accuracy/f1, `normalize` for exact_match).
    """
    factory = METRICS.get(name)
    _check_arguments(name, factory, kwargs)
    metric = factory(**kwargs)
    if isinstance(metric, TextMetric | WeightedPerplexity):
        return metric
    if isinstance(metric, Metric):
        return TextMetric(name.rpartition(".")[2], metric)
    if getattr(metric, "kind", None) in ("text", "token") and all(
        callable(getattr(metric, method, None)) for method in ("update", "compute", "reset")
    ):
        return metric  # duck-typed custom metric that follows the TextMetric protocol
    raise AutotrainError(
        f"metric {name!r} built a {type(metric).__name__}; a metric factory must return a "
        "TextMetric, a WeightedPerplexity or a torchmetrics Metric"
    )


def build_metric_collection(
    names: Sequence[str], metric_kwargs: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, EvalMetric]:
    """Build the metrics named in a config, keyed by name, in the given order.

    Args:
        names: E.g. `["perplexity", "bleu", "rougeL", "exact_match"]`.
        metric_kwargs: Optional per-name arguments, e.g.
            `{"bertscore": {"model_name_or_path": "/models/roberta-large"}}`.
    """
    check_metrics(names, metric_kwargs, names_field="eval_metrics")
    metric_kwargs = dict(metric_kwargs or {})
    return {name: get_metric(name, **dict(metric_kwargs.get(name, {}))) for name in names}


def _register_builtins() -> None:
    builtins: dict[str, MetricFactory] = {
        "perplexity": WeightedPerplexity,
        "bleu": bleu,
        "sacrebleu": sacrebleu,
        "chrf": chrf,
        "chrf++": chrf_plus_plus,
        "bertscore": bertscore,
        "accuracy": accuracy,
        "f1_macro": f1_macro,
        "f1_micro": f1_micro,
        "token_f1": token_f1,
        "f1": f1,
        "exact_match": exact_match,
        "meteor": meteor,
        "rouge": rouge_set,  # rouge1, rouge2 and rougeL together
    }
    for key in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
        builtins[key] = functools.partial(rouge, key)
    for name, factory in builtins.items():
        register_metric(name)(factory)


_register_builtins()
