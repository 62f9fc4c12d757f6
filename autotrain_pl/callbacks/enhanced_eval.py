"""The seed-style ``use_enhanced_eval`` switch of an objective, mapped onto the eval callbacks.

Configs written for the original trainer say, on the model::

    use_enhanced_eval: true
    eval_metrics: [perplexity, bleu, rougeL]
    eval_steps: 50          # optional

``ObjectiveModule.configure_callbacks`` then returns ``enhanced_eval_callbacks(...)``: a
``PeriodicEvalCallback`` for the text metrics (every ``eval_steps`` optimizer steps, else at every
validation run) and a ``MetricsLoggerCallback``. Lightning merges these with the trainer's
callbacks; one of the same type in ``trainer.callbacks`` is replaced by the module's.
``perplexity`` needs no generation: the objective already logs it as ``val/ppl``.
"""

from __future__ import annotations

from collections.abc import Sequence

from lightning.pytorch import Callback

from autotrain_pl.callbacks.metrics_logger import MetricsLoggerCallback
from autotrain_pl.callbacks.periodic_eval import PeriodicEvalCallback, check_metric_names
from autotrain_pl.errors import AutotrainError

#: Metrics the objective computes from the validation forward pass itself.
LOSS_METRICS = frozenset({"perplexity", "loss"})


def generation_metrics(eval_metrics: Sequence[str] | None) -> list[str]:
    """The names in ``eval_metrics`` that need generated text (checked), in order."""
    if eval_metrics is None:
        return []
    if isinstance(eval_metrics, str):
        raise AutotrainError("model.eval_metrics must be a list, e.g. [bleu, rougeL]")
    names = [name for name in eval_metrics if str(name).lower() not in LOSS_METRICS]
    return check_metric_names(names) if names else []


def check_enhanced_eval(use_enhanced_eval: bool, eval_metrics: Sequence[str] | None,
                        eval_steps: int | None) -> None:
    """Fail in the objective's ``__init__``, before the model loads, on a bad combination."""
    if eval_steps is not None and (isinstance(eval_steps, bool) or not isinstance(eval_steps, int)
                                   or eval_steps < 1):
        raise AutotrainError(f"model.eval_steps={eval_steps!r} must be a positive integer")
    if not use_enhanced_eval:
        if eval_metrics or eval_steps is not None:
            raise AutotrainError(
                "model.eval_metrics/eval_steps take effect only with model.use_enhanced_eval=true; "
                "set it or remove them"
            )
        return
    generation_metrics(eval_metrics)


def enhanced_eval_callbacks(eval_metrics: Sequence[str] | None = None,
                            eval_steps: int | None = None) -> list[Callback]:
    """``PeriodicEvalCallback`` (when a text metric is asked for) + ``MetricsLoggerCallback``.

    Without ``eval_metrics`` (or with only ``perplexity``) nothing is generated: the seed's
    default metric is perplexity, which the objective logs as ``val/ppl`` anyway.
    """
    callbacks: list[Callback] = []
    names = generation_metrics(eval_metrics)
    if names:
        callbacks.append(PeriodicEvalCallback(metrics=names, every_n_steps=eval_steps))
    callbacks.append(MetricsLoggerCallback())
    return callbacks
