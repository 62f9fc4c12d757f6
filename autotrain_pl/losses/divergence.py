"""Distillation divergences between a student and a teacher next-token distribution.

Conventions (the same as TRL's ``GKDTrainer.generalized_jsd_loss``):

- ``forward_kl`` is ``KL(teacher || student)`` (mode-covering; the classic Hinton KD loss).
- ``reverse_kl`` is ``KL(student || teacher)`` (mode-seeking; used for on-policy distillation).
- ``generalized_jsd(beta)`` uses the mixture ``M = beta * teacher + (1 - beta) * student`` and is
  ``beta * KL(teacher || M) + (1 - beta) * KL(student || M)`` for ``0 < beta < 1``. The endpoints
  are special-cased as TRL does: ``beta = 0`` is forward KL and ``beta = 1`` is reverse KL. (The
  interior formula itself tends to 0 at both ends; forward/reverse KL are its limits divided by
  ``beta`` and ``1 - beta``.)

Both distributions are ``softmax(logits / temperature)``. These functions do NOT multiply by
``temperature ** 2``; the distillation objective applies that gradient-scale correction itself.
The teacher is not detached here: compute its logits under ``torch.no_grad()``.
The weighted losses return ``sum_i(w_i * D_i) / normalizer``; ``normalizer=None`` (the default) is
this batch's ``loss_weights.sum()``, ``1`` gives the sum (see ``_reduction``).
All math runs in float32 (float64 stays float64). ``-inf`` logits (masked vocabulary) are handled:
a zero-probability entry contributes 0, not NaN.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from autotrain_pl.errors import AutotrainError
from autotrain_pl.losses._reduction import Normalizer, compute_dtype, reduce_tokens
from autotrain_pl.losses.logprobs import check_temperature, selective_log_softmax

TOPK_KINDS = ("forward_kl", "reverse_kl", "jsd")


def _kl_terms(log_p: Tensor, log_q: Tensor) -> Tensor:
    """Elementwise ``p * (log p - log q)``, with 0 (and a zero gradient) where ``p == 0``."""
    floor = torch.finfo(log_p.dtype).min
    log_p = log_p.clamp_min(floor)
    return log_p.exp() * (log_p - log_q.clamp_min(floor))


def _log_probs(logits: Tensor, temperature: float) -> Tensor:
    logits = logits.to(compute_dtype(logits))
    if temperature != 1.0:
        logits = logits / temperature
    return torch.log_softmax(logits, dim=-1)


def _check_pair(student_logits: Tensor, teacher_logits: Tensor) -> None:
    if student_logits.shape != teacher_logits.shape:
        raise AutotrainError(
            f"teacher_logits shape {tuple(teacher_logits.shape)} != student_logits shape "
            f"{tuple(student_logits.shape)}; teacher and student must share one vocabulary "
            "(slice a padded vocabulary to the tokenizer's size first)."
        )


def _check_beta(beta: float) -> None:
    if isinstance(beta, bool) or not 0.0 <= beta <= 1.0:
        raise AutotrainError(
            f"beta={beta!r} must lie in [0, 1]; 0 = forward KL(teacher||student), "
            "1 = reverse KL(student||teacher)."
        )


def _jsd_from_log_probs(student_logp: Tensor, teacher_logp: Tensor, beta: float) -> Tensor:
    """Elementwise generalized JSD terms for ``0 < beta < 1`` (sum over the last dim to get JSD)."""
    floor = torch.finfo(student_logp.dtype).min  # keeps logaddexp(-inf, -inf) out of backward
    student_logp, teacher_logp = student_logp.clamp_min(floor), teacher_logp.clamp_min(floor)
    log_mixture = torch.logaddexp(student_logp + math.log1p(-beta), teacher_logp + math.log(beta))
    return beta * _kl_terms(teacher_logp, log_mixture) + (1.0 - beta) * _kl_terms(
        student_logp, log_mixture
    )


def per_token_forward_kl(
    student_logits: Tensor, teacher_logits: Tensor, *, temperature: float = 1.0
) -> Tensor:
    """Unreduced ``KL(teacher || student) = sum_v p_T(v) * (log p_T(v) - log p_S(v))``."""
    _check_pair(student_logits, teacher_logits)
    check_temperature(temperature)
    student_logp = _log_probs(student_logits, temperature)
    teacher_logp = _log_probs(teacher_logits, temperature)
    return _kl_terms(teacher_logp, student_logp).sum(dim=-1)


def per_token_reverse_kl(
    student_logits: Tensor, teacher_logits: Tensor, *, temperature: float = 1.0
) -> Tensor:
    """Unreduced ``KL(student || teacher) = sum_v p_S(v) * (log p_S(v) - log p_T(v))``."""
    _check_pair(student_logits, teacher_logits)
    check_temperature(temperature)
    student_logp = _log_probs(student_logits, temperature)
    teacher_logp = _log_probs(teacher_logits, temperature)
    return _kl_terms(student_logp, teacher_logp).sum(dim=-1)


def per_token_generalized_jsd(
    student_logits: Tensor,
    teacher_logits: Tensor,
    *,
    beta: float = 0.5,
    temperature: float = 1.0,
) -> Tensor:
    """Unreduced generalized JSD of the GKD paper (Agarwal et al., 2023, Eq. 1), TRL's convention.

    Formula (``0 < beta < 1``): ``M = beta * p_T + (1 - beta) * p_S`` and
    ``JSD = beta * KL(p_T || M) + (1 - beta) * KL(p_S || M)``; ``beta = 0`` gives
    ``KL(p_T || p_S)`` and ``beta = 1`` gives ``KL(p_S || p_T)``, exactly as TRL special-cases them.
    """
    _check_beta(beta)
    if beta == 0.0:
        return per_token_forward_kl(student_logits, teacher_logits, temperature=temperature)
    if beta == 1.0:
        return per_token_reverse_kl(student_logits, teacher_logits, temperature=temperature)
    _check_pair(student_logits, teacher_logits)
    check_temperature(temperature)
    student_logp = _log_probs(student_logits, temperature)
    teacher_logp = _log_probs(teacher_logits, temperature)
    return _jsd_from_log_probs(student_logp, teacher_logp, beta).sum(dim=-1)


def forward_kl(
    student_logits: Tensor,
    teacher_logits: Tensor,
    loss_weights: Tensor,
    *,
    temperature: float = 1.0,
    normalizer: Normalizer | None = None,
) -> Tensor:
    """Weighted forward KL: ``sum_i w_i * KL(p_T,i || p_S,i) / normalizer`` (no ``T**2`` factor)."""
    per_token = per_token_forward_kl(student_logits, teacher_logits, temperature=temperature)
    return reduce_tokens(per_token, loss_weights, normalizer)


def reverse_kl(
    student_logits: Tensor,
    teacher_logits: Tensor,
    loss_weights: Tensor,
    *,
    temperature: float = 1.0,
    normalizer: Normalizer | None = None,
) -> Tensor:
    """Weighted reverse KL: ``sum_i w_i * KL(p_S,i || p_T,i) / normalizer`` (no ``T**2`` factor)."""
    per_token = per_token_reverse_kl(student_logits, teacher_logits, temperature=temperature)
    return reduce_tokens(per_token, loss_weights, normalizer)


def generalized_jsd(
    student_logits: Tensor,
    teacher_logits: Tensor,
    loss_weights: Tensor,
    *,
    beta: float = 0.5,
    temperature: float = 1.0,
    normalizer: Normalizer | None = None,
) -> Tensor:
    """Weighted generalized JSD: ``sum_i w_i * JSD_beta,i / normalizer`` (no ``T**2`` factor).

    With unit weights and ``normalizer`` = number of tokens this equals TRL's
    ``GKDTrainer.generalized_jsd_loss(..., reduction="batchmean")`` on the same tokens.
    """
    per_token = per_token_generalized_jsd(
        student_logits, teacher_logits, beta=beta, temperature=temperature
    )
    return reduce_tokens(per_token, loss_weights, normalizer)


def per_token_kd_topk(
    student_logits: Tensor,
    topk_values: Tensor,
    topk_indices: Tensor,
    *,
    kind: str = "forward_kl",
    beta: float = 0.5,
    temperature: float = 1.0,
) -> Tensor:
    """Unreduced divergence against a teacher known only through its top-k tokens.

    The teacher is ``q = softmax(topk_values / T)`` over its k tokens and 0 elsewhere (its tail is
    dropped and the top-k renormalised). ``topk_values`` may be logits or log-probs: both give the
    same ``q``. The student uses its full-vocabulary ``log softmax(student_logits / T)`` gathered at
    ``topk_indices`` (``log p_k``), so its mass outside the k tokens stays visible. Per kind:

    - ``forward_kl``: ``sum_k q_k (log q_k - log p_k)``; exactly ``KL(q || p_S)``.
    - ``jsd`` (``0 < beta < 1``): exactly the generalized JSD between ``q`` and ``p_S``; the student
      mass off the support, ``s = 1 - sum_k p_k``, adds ``(1 - beta) * s * -log(1 - beta)``.
      ``beta = 0``/``1`` mean forward/reverse KL, as in ``generalized_jsd``.
    - ``reverse_kl``: ``KL(p_S || q)`` is infinite whenever the student puts mass off the support,
      so this uses the student renormalised over the k tokens, ``p_k / sum_k p_k``. That is the
      conditional reverse KL: it gives no gradient to the student's off-support mass (pair it with
      ``ce`` or ``forward_kl`` if that matters).

    The approximation against the full teacher is the dropped teacher tail, ``1 - sum_k q_T(k)``
    before renormalisation; with k = 20-100 it is usually a few percent. Entries whose value is
    ``-inf`` are treated as padding (outside the support); each row needs one finite entry.
    """
    if kind not in TOPK_KINDS:
        raise AutotrainError(f"kind={kind!r} is not a top-k divergence; use one of {TOPK_KINDS}.")
    _check_beta(beta)
    check_temperature(temperature)
    if (
        topk_values.shape != topk_indices.shape
        or topk_values.shape[:-1] != student_logits.shape[:-1]
    ):
        raise AutotrainError(
            f"teacher_topk_values {tuple(topk_values.shape)} and teacher_topk_indices "
            f"{tuple(topk_indices.shape)} must both be student_logits.shape[:-1] + (k,) = "
            f"{tuple(student_logits.shape[:-1])} + (k,)."
        )
    if kind == "jsd" and beta == 0.0:
        kind = "forward_kl"
    elif kind == "jsd" and beta == 1.0:
        kind = "reverse_kl"
    dtype = compute_dtype(student_logits)
    teacher_logq = _log_probs(topk_values.to(dtype), temperature)
    scaled = student_logits / temperature if temperature != 1.0 else student_logits
    student_logp = selective_log_softmax(scaled, topk_indices).to(dtype)
    student_logp = student_logp.masked_fill(torch.isneginf(topk_values), float("-inf"))
    if kind == "forward_kl":
        return _kl_terms(teacher_logq, student_logp).sum(dim=-1)
    if kind == "reverse_kl":
        student_cond = student_logp - torch.logsumexp(student_logp, dim=-1, keepdim=True)
        return _kl_terms(student_cond, teacher_logq).sum(dim=-1)
    on_support = _jsd_from_log_probs(student_logp, teacher_logq, beta).sum(dim=-1)
    off_support_mass = (-torch.expm1(torch.logsumexp(student_logp, dim=-1))).clamp_min(0.0)
    return on_support + (1.0 - beta) * off_support_mass * -math.log1p(-beta)


def kd_loss_topk(
    student_logits: Tensor,
    topk_values: Tensor,
    topk_indices: Tensor,
    loss_weights: Tensor,
    *,
    kind: str = "forward_kl",
    beta: float = 0.5,
    temperature: float = 1.0,
    normalizer: Normalizer | None = None,
) -> Tensor:
    """Weighted top-k distillation loss: ``sum_i w_i * D_i / normalizer`` (no ``T**2`` factor).

    ``D_i`` is ``per_token_kd_topk``; see it for the exact definition and the approximation.
    Caching only the teacher's top-k (k of ~V) makes offline distillation affordable.
    """
    per_token = per_token_kd_topk(
        student_logits, topk_values, topk_indices, kind=kind, beta=beta, temperature=temperature
    )
    return reduce_tokens(per_token, loss_weights, normalizer)
