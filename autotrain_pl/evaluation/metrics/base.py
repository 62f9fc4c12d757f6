"""The uniform interface of generation metrics: `TextMetric`.

Every text metric takes decoded strings, accumulates state in a `torchmetrics.Metric` (so the
state is synced across DDP ranks on `compute()`), and returns a flat `dict[str, float]`.

Callers tell the two kinds of metric apart by `metric.kind`:

- `"text"`: a `TextMetric`; call `update(predictions, references)` with strings.
- `"token"`: `WeightedPerplexity`; call `update(nll_sum, weight_sum)` or
  `update_from_logits(logits, labels, loss_weights)` with tensors from the forward pass.

`compute()` already returns the value over all ranks, on every rank (all ranks must call it),
so log its result without `sync_dist=True`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn
from torchmetrics import Metric

from autotrain_pl.errors import AutotrainError

MetricKind = Literal["text", "token"]
References = Sequence[str] | Sequence[Sequence[str]]


def as_reference_lists(
    name: str, predictions: Sequence[str], references: References
) -> tuple[list[str], list[list[str]]]:
    """Check the inputs of `update` and give every prediction a list of references.

    Accepting both `list[str]` and `list[list[str]]` lets single- and multi-reference data use the
    same call; the metrics below always see the list-of-lists form.
    """
    if isinstance(predictions, str) or isinstance(references, str):
        raise AutotrainError(
            f"{name}: predictions and references must be lists of strings, not a single string; "
            "wrap it in a list"
        )
    predictions = list(predictions)
    references = list(references)
    if len(predictions) != len(references):
        raise AutotrainError(
            f"{name}: got {len(predictions)} predictions but {len(references)} references; "
            "pass one reference (or one list of references) per prediction"
        )
    reference_lists: list[list[str]] = []
    for item in references:
        refs = [item] if isinstance(item, str) else list(item)
        if not refs or not all(isinstance(ref, str) for ref in refs):
            raise AutotrainError(
                f"{name}: each reference must be a string or a non-empty list of strings, "
                f"got {item!r}"
            )
        reference_lists.append(refs)
    if not all(isinstance(pred, str) for pred in predictions):
        raise AutotrainError(f"{name}: every prediction must be a string (decode token ids first)")
    return predictions, reference_lists


def _to_float(value: Any) -> float:
    if isinstance(value, Tensor):
        if value.numel() != 1:
            return float(value.float().mean())
        return float(value)
    return float(value)


class TextMetric(nn.Module):
    """A generation metric over strings: `update(predictions, references)`, `compute()`, `reset()`.

    It wraps one `torchmetrics.Metric` whose `update(preds, target)` takes a list of predictions
    and a list of reference lists. Being an `nn.Module` means a `LightningModule` that holds it
    moves it to the right device and the inner metric syncs across ranks. Subclasses with their
    own state pass `metric=None` and override `update`, `compute` and `reset`.

    Args:
        name: The key under which a scalar result is reported, e.g. `"bleu"`.
        metric: The torchmetrics metric that holds the state.
        keys: Maps keys of a dict result of `metric.compute()` to reported keys; only those keys
            are reported. Without it a dict result is reported as `{name}_{key}`. Tensors with
            more than one value (per-example scores) are reported as their mean.
    """

    kind: ClassVar[MetricKind] = "text"

    def __init__(
        self, name: str, metric: Metric | None = None, keys: Mapping[str, str] | None = None
    ) -> None:
        super().__init__()
        self.name = name
        self.metric = metric
        self.keys = dict(keys) if keys is not None else None

    def update(self, predictions: Sequence[str], references: References) -> None:
        """Add a batch of decoded predictions and their reference(s)."""
        preds, refs = as_reference_lists(self.name, predictions, references)
        self._inner().update(preds, refs)

    def compute(self) -> dict[str, float]:
        """Return the metric over everything seen since the last `reset()`, on all ranks."""
        return self._format(self._inner().compute())

    def reset(self) -> None:
        """Forget all accumulated state, e.g. at the start of a validation epoch."""
        self._inner().reset()

    def _inner(self) -> Metric:
        if self.metric is None:
            raise NotImplementedError(
                f"{type(self).__name__} has no inner metric; override update/compute/reset"
            )
        return self.metric

    def _format(self, value: Any) -> dict[str, float]:
        if isinstance(value, Mapping):
            if self.keys is not None:
                return {out: _to_float(value[key]) for key, out in self.keys.items()}
            return {f"{self.name}_{key}": _to_float(val) for key, val in value.items()}
        return {self.name: _to_float(value)}

    def extra_repr(self) -> str:
        return f"name={self.name!r}"


class MeanScore(Metric):
    """Base for per-example scores averaged over a dataset (exact match, token F1, METEOR).

    The states are a sum and a count, reduced by sum, so the mean is exact under DDP.
    Subclasses implement `score(prediction, references) -> float`.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    score_sum: Tensor
    count: Tensor

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # float32, not float64: MPS has no float64 and metrics move with the LightningModule.
        self.add_state("score_sum", torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def score(self, prediction: str, references: Sequence[str]) -> float:
        """Score one prediction against its references."""
        raise NotImplementedError

    def update(self, preds: Sequence[str], target: Sequence[Sequence[str]]) -> None:
        """Add the scores of a batch of predictions."""
        total = sum(self.score(pred, refs) for pred, refs in zip(preds, target, strict=True))
        self.score_sum += total
        self.count += len(preds)

    def compute(self) -> Tensor:
        """Mean score; NaN when nothing was seen."""
        return self.score_sum / self.count
