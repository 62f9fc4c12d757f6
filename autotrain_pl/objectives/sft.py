"""Supervised fine-tuning on the renderer's per-token loss weights."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

from autotrain_pl.errors import AutotrainError
from autotrain_pl.losses import CompositeLoss, LossInputs
from autotrain_pl.objectives.base import ObjectiveModule


class _DistillationSwitch:
    """``SFTModule(use_distillation=True, ...)`` returns a ``DistillationModule``.

    A base class rather than ``SFTModule.__new__``: signature readers (jsonargparse, hence
    LightningCLI) read a class's own ``__new__`` instead of its ``__init__``.
    """

    def __new__(cls, *args: Any, **kwargs: Any):
        if cls is SFTModule and kwargs.get("use_distillation"):
            from autotrain_pl.objectives.distillation import DistillationModule

            cls = DistillationModule  # Python then runs DistillationModule.__init__(same args)
        return super().__new__(cls)


class SFTModule(_DistillationSwitch, ObjectiveModule):
    """Weighted token cross-entropy, or a composite of token losses, on chat data.

    Args:
        label_smoothing: cross-entropy label smoothing (the ``ce`` term).
        loss: ``"ce"`` or a composite of registered token losses with coefficients, for example
            ``{ce: 1.0, entropy: -0.01}``; every term is logged as ``train/loss_<term>``.
        loss_params: keyword arguments per term, for example ``{focal: {gamma: 2.0}}``.
        use_distillation: distil from ``teacher_model`` instead: ``SFTModule(...)`` then builds
            a ``DistillationModule`` (same student options), from Python and from YAML.
        teacher_model: the teacher reference, with ``use_distillation``.
        distillation: further ``DistillationModule`` options, e.g. ``{temperature: 2.0}``.
        **kwargs: the shared options of ``ObjectiveModule`` (model, LoRA, optimizer, ...).
    """

    def __init__(
        self,
        *args: Any,
        label_smoothing: float = 0.0,
        loss: str | dict[str, float] = "ce",
        loss_params: dict[str, dict[str, Any]] | None = None,
        use_distillation: bool = False,
        teacher_model: str | None = None,
        distillation: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if use_distillation or teacher_model or distillation:
            raise AutotrainError(
                "model.teacher_model/distillation need model.use_distillation=true on SFTModule "
                "itself (a subclass should extend DistillationModule instead)"
            )
        if not 0.0 <= label_smoothing < 1.0:
            raise AutotrainError(f"model.label_smoothing={label_smoothing} must be in [0, 1)")
        terms = {loss: 1.0} if isinstance(loss, str) else dict(loss)
        params = {name: dict(p) for name, p in (loss_params or {}).items()}
        if label_smoothing:
            params.setdefault("ce", {})["label_smoothing"] = label_smoothing
        loss_fn = CompositeLoss(terms, params=params)  # validated before the model loads
        super().__init__(*args, **kwargs)
        self.loss_fn = loss_fn

    def compute_loss(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        logits, selection = self.forward_logits(self.model, batch)
        inputs = LossInputs(logits=logits, labels=selection.labels,
                            loss_weights=selection.weights, normalizer=1.0)
        total, terms = self.loss_fn(inputs)
        metrics = {f"loss_{name}": value for name, value in terms.items()} if len(terms) > 1 else {}
        return total, metrics
