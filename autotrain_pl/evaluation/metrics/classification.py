"""Accuracy and F1 over class labels that a model generates as text.

Label strings are normalized (SQuAD-style, optional) and mapped to class indices, then scored
with torchmetrics' `MulticlassAccuracy` / `MulticlassF1Score`. A generated answer that is not a
known label is put in one extra class, `<other>`: it is always wrong, and for macro F1 it
counts as one more class whose F1 is 0 (it is never a reference).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.distributed as dist
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_f1_score

from autotrain_pl.errors import AutotrainError
from autotrain_pl.evaluation.metrics.answer import normalize_answer
from autotrain_pl.evaluation.metrics.base import References, TextMetric, as_reference_lists

Score = Literal["accuracy", "f1"]
Average = Literal["micro", "macro"]


class LabelMetric(TextMetric):
    """Accuracy or F1 of predicted class labels (strings) against reference labels.

    With `labels` given, the label-to-index map is fixed and the state is a torchmetrics metric
    (synced across ranks as usual). Without `labels`, the label set is inferred at `compute()`
    from all references seen on all ranks (predictions and references are gathered as strings),
    because ranks that inferred their own maps would disagree on what index 3 means.

    Args:
        name: Reported key, e.g. `"f1_macro"`.
        score: `"accuracy"` or `"f1"`.
        average: `"micro"` or `"macro"` (accuracy is always micro: fraction correct).
        labels: The label set; references outside it raise an error.
        normalize: SQuAD-normalize predictions, references and labels before matching.
    """

    def __init__(
        self,
        name: str,
        score: Score = "accuracy",
        average: Average = "micro",
        labels: Sequence[str] | None = None,
        normalize: bool = True,
    ) -> None:
        if score not in ("accuracy", "f1") or average not in ("micro", "macro"):
            raise AutotrainError(
                f"{name}: score must be 'accuracy' or 'f1' and average 'micro' or 'macro', "
                f"got score={score!r}, average={average!r}"
            )
        super().__init__(name)
        self.score = score
        self.average = "micro" if score == "accuracy" else average
        self.normalize = normalize
        self.label_to_index: dict[str, int] | None = None
        if labels is not None:
            self.label_to_index = self._index_labels(name, labels)
            self.metric = self._build(len(self.label_to_index) + 1)
        self._predictions: list[str] = []
        self._references: list[str] = []

    def _index_labels(self, name: str, labels: Sequence[str]) -> dict[str, int]:
        if isinstance(labels, str) or not labels:
            raise AutotrainError(f"{name}: labels must be a non-empty list of strings")
        mapping: dict[str, int] = {}
        for label in labels:
            key = self._clean(label)
            if key in mapping:
                raise AutotrainError(
                    f"{name}: labels contain {label!r} twice after normalization; "
                    "remove the duplicate or pass normalize=False"
                )
            mapping[key] = len(mapping)
        return mapping

    def _build(self, num_classes: int) -> Metric:
        if self.score == "accuracy":
            return MulticlassAccuracy(num_classes=num_classes, average="micro")
        return MulticlassF1Score(num_classes=num_classes, average=self.average)

    def _clean(self, text: str) -> str:
        return normalize_answer(text) if self.normalize else text

    def update(self, predictions: Sequence[str], references: References) -> None:
        """Add predicted labels and their one reference label each."""
        preds, ref_lists = as_reference_lists(self.name, predictions, references)
        if any(len(refs) != 1 for refs in ref_lists):
            raise AutotrainError(
                f"{self.name}: class labels take exactly one reference per prediction; "
                "use exact_match for several acceptable answers"
            )
        if not preds:
            return
        preds = [self._clean(pred) for pred in preds]
        refs = [self._clean(refs[0]) for refs in ref_lists]
        if self.label_to_index is None:
            self._predictions.extend(preds)
            self._references.extend(refs)
            return
        unknown = sorted({ref for ref in refs if ref not in self.label_to_index})
        if unknown:
            raise AutotrainError(
                f"{self.name}: reference labels {unknown[:5]} are not in labels; add them to "
                "labels or leave labels unset to infer the label set"
            )
        assert self.metric is not None
        device = self.metric.device
        self.metric.update(
            self._indices(preds, self.label_to_index, device),
            self._indices(refs, self.label_to_index, device),
        )

    @staticmethod
    def _indices(texts: list[str], mapping: dict[str, int], device: torch.device) -> Tensor:
        other = len(mapping)
        ids = [mapping.get(text, other) for text in texts]
        return torch.tensor(ids, dtype=torch.long, device=device)

    def compute(self) -> dict[str, float]:
        """Score over everything seen on all ranks since the last `reset()`."""
        if self.metric is not None:
            return {self.name: float(self.metric.compute())}
        preds, refs = _gather_strings(self._predictions), _gather_strings(self._references)
        if not refs:
            return {self.name: float("nan")}
        mapping = {label: index for index, label in enumerate(sorted(set(refs)))}
        pred_ids = self._indices(preds, mapping, torch.device("cpu"))
        ref_ids = self._indices(refs, mapping, torch.device("cpu"))
        num_classes = len(mapping) + 1
        if self.score == "accuracy":
            value = multiclass_accuracy(pred_ids, ref_ids, num_classes, average="micro")
        else:
            value = multiclass_f1_score(pred_ids, ref_ids, num_classes, average=self.average)
        return {self.name: float(value)}

    def reset(self) -> None:
        """Forget all accumulated predictions."""
        if self.metric is not None:
            self.metric.reset()
        self._predictions.clear()
        self._references.clear()


def _gather_strings(items: list[str]) -> list[str]:
    """All ranks' strings, rank 0 first (this rank's alone outside DDP)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return list(items)
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, items)
    return [item for part in gathered for item in part]


def accuracy(labels: Sequence[str] | None = None, normalize: bool = True) -> TextMetric:
    """Fraction of predicted labels equal to the reference label, as `{"accuracy": ...}`."""
    return LabelMetric("accuracy", "accuracy", "micro", labels=labels, normalize=normalize)


def f1_macro(labels: Sequence[str] | None = None, normalize: bool = True) -> TextMetric:
    """Unweighted mean over classes of per-class F1, as `{"f1_macro": ...}`."""
    return LabelMetric("f1_macro", "f1", "macro", labels=labels, normalize=normalize)


def f1_micro(labels: Sequence[str] | None = None, normalize: bool = True) -> TextMetric:
    """F1 from pooled counts over classes (equals accuracy for single-label data)."""
    return LabelMetric("f1_micro", "f1", "micro", labels=labels, normalize=normalize)
