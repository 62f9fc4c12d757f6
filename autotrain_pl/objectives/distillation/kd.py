"""The knowledge-distillation term: a divergence from the loss library, on aligned rows.

``kd_divergence_sum`` is the KD term exactly as ``DistillationModule`` uses it, before the
``alpha * T**2`` factor: ``sum_i w_i * D(teacher_i || student_i)`` at temperature ``T``. With
unit weights it equals TRL's ``GKDTrainer.generalized_jsd_loss(..., reduction="sum")`` on the
same logits (``kd_loss: jsd`` with ``beta``; ``forward_kl`` is ``beta = 0`` and ``reverse_kl`` is
``beta = 1``), which a unit test checks by calling TRL.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from autotrain_pl.errors import AutotrainError
from autotrain_pl.losses import forward_kl, generalized_jsd, kd_loss_topk, reverse_kl

KD_LOSSES = ("forward_kl", "reverse_kl", "jsd")


@dataclass
class TeacherTargets:
    """What the student is distilled towards at each selected token (one row per token).

    Either the full teacher logits ``[N, V]`` or only the teacher's top-k ``[N, k]`` (values are
    logits; the loss renormalizes them over the k tokens).
    """

    logits: Tensor | None = None
    topk_values: Tensor | None = None
    topk_indices: Tensor | None = None

    def to(self, device: torch.device) -> TeacherTargets:
        move = lambda t: None if t is None else t.to(device, non_blocking=True)  # noqa: E731
        return TeacherTargets(move(self.logits), move(self.topk_values), move(self.topk_indices))


def check_kd_loss(kd_loss: str, beta: float) -> None:
    """Validate the KD choice before any model loads."""
    if kd_loss not in KD_LOSSES:
        raise AutotrainError(f"model.kd_loss={kd_loss!r} is unknown; use one of {KD_LOSSES}")
    if isinstance(beta, bool) or not 0.0 <= beta <= 1.0:
        raise AutotrainError(f"model.beta={beta!r} must lie in [0, 1] (0: forward KL, 1: reverse KL)")


def common_vocab(student_logits: Tensor, teacher_logits: Tensor) -> tuple[Tensor, Tensor]:
    """Slice both to the shorter vocabulary: padded embedding rows are never real tokens.

    Both widths are at least the tokenizer's size (checked at start-up), so no real token is cut.
    """
    width = min(student_logits.shape[-1], teacher_logits.shape[-1])
    return student_logits[..., :width], teacher_logits[..., :width]


def teacher_topk(teacher_logits: Tensor, k: int, vocab_width: int) -> tuple[Tensor, Tensor]:
    """The teacher's ``k`` largest logits among the first ``vocab_width`` (the student's) ids."""
    logits = teacher_logits[..., :vocab_width]
    values, indices = torch.topk(logits.float(), min(k, logits.shape[-1]), dim=-1)
    return values, indices


def kd_divergence_sum(
    student_logits: Tensor,
    teacher: TeacherTargets,
    loss_weights: Tensor,
    *,
    kd_loss: str = "forward_kl",
    beta: float = 0.5,
    temperature: float = 1.0,
) -> Tensor:
    """``sum_i w_i * D_i`` at ``temperature`` (no ``T**2``, no normalization).

    ``kd_loss`` picks D: ``forward_kl`` = KL(teacher || student), ``reverse_kl`` = KL(student ||
    teacher), ``jsd`` = generalized JSD with ``beta`` (TRL's GKD convention). Top-k targets use
    ``kd_loss_topk`` with the same kind.
    """
    if teacher.logits is not None:
        student, teacher_logits = common_vocab(student_logits, teacher.logits)
        kwargs = {"temperature": temperature, "normalizer": 1.0}
        if kd_loss == "forward_kl":
            return forward_kl(student, teacher_logits, loss_weights, **kwargs)
        if kd_loss == "reverse_kl":
            return reverse_kl(student, teacher_logits, loss_weights, **kwargs)
        return generalized_jsd(student, teacher_logits, loss_weights, beta=beta, **kwargs)
    if teacher.topk_values is None or teacher.topk_indices is None:
        raise ValueError("TeacherTargets needs logits or top-k values and indices")
    return kd_loss_topk(
        student_logits, teacher.topk_values, teacher.topk_indices, loss_weights,
        kind=kd_loss, beta=beta, temperature=temperature, normalizer=1.0,
    )
