"""The DPO family: every loss TRL 1.16's ``DPOTrainer`` offers, on per-pair sequence log-probs.

Inputs are ``[B]`` tensors: policy and reference log-probs of the chosen and rejected completions,
summed over completion tokens. The formulas follow ``DPOTrainer._compute_loss`` of TRL 1.16
(f-divergence scores, MPO weighted sums, IPO/sigmoid_norm length averaging, the ``sft`` term),
checked against TRL's own code in ``tests/unit/losses/test_losses_trl.py``. Two additions:
``sigmoid`` with ``label_smoothing > 0`` is cDPO (TRL 1.16 ignores it there), and ``rpo_alpha``
adds RPO's chosen-token NLL (older TRL's ``rpo_alpha``). ``ld_alpha`` and ``use_weighting`` are
not implemented.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from autotrain_pl.errors import AutotrainError
from autotrain_pl.losses._checks import (
    check_choice,
    check_non_negative,
    check_number,
    check_positive,
)
from autotrain_pl.losses._reduction import Normalizer, compute_dtype, reduce_pairs

DPO_LOSS_TYPES = (
    "sigmoid",
    "hinge",
    "ipo",
    "exo_pair",
    "nca_pair",
    "robust",
    "bco_pair",
    "sppo_hard",
    "aot",
    "aot_unpaired",
    "apo_zero",
    "apo_down",
    "discopop",
    "sft",
    "sigmoid_norm",
)
LABEL_SMOOTHING_LOSS_TYPES = ("sigmoid", "robust", "exo_pair", "aot", "aot_unpaired")
F_DIVERGENCE_TYPES = ("reverse_kl", "forward_kl", "js_divergence", "alpha_divergence")
F_DIVERGENCE_LOSS_TYPES = (
    "sigmoid",
    "sigmoid_norm",
    "hinge",
    "ipo",
    "exo_pair",
    "robust",
    "discopop",
    "sft",
)
_LENGTH_LOSS_TYPES = ("ipo", "sigmoid_norm", "sft")
_ALPHA_DIVERGENCE_CLAMP = 80.0  # TRL's float32 clamp: keeps exp() finite


def check_dpo_settings(
    *,
    beta: float,
    loss_type: str | Sequence[str],
    loss_weights: Sequence[float] | None,
    label_smoothing: float,
    f_divergence_type: str,
    f_alpha_divergence_coef: float,
    discopop_tau: float,
    rpo_alpha: float | None,
) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """Validate the DPO settings before a step runs, so a typo fails in one line, not mid-fit.

    Returns:
        The loss types as a tuple and their weights (all 1.0 when ``loss_weights`` is None).

    Raises:
        AutotrainError: naming the ``model.*`` field and how to fix it.
    """
    types = (loss_type,) if isinstance(loss_type, str) else tuple(loss_type)
    if not types:
        raise AutotrainError(
            f"model.loss_type is empty; give one of {', '.join(DPO_LOSS_TYPES)}, or a list of them"
        )
    for name in types:
        check_choice("model.loss_type", name, DPO_LOSS_TYPES, what="a DPO loss type")
    repeated = sorted({name for name in types if types.count(name) > 1})
    if repeated:
        raise AutotrainError(
            f"model.loss_type lists {', '.join(repeated)} more than once; list each type once and "
            "scale it with model.loss_weights"
        )
    if loss_weights is None:
        weights = (1.0,) * len(types)
    else:
        weights = tuple(check_number("model.loss_weights", w) for w in loss_weights)
        if len(weights) != len(types):
            raise AutotrainError(
                f"model.loss_weights has {len(weights)} values for {len(types)} loss types "
                f"{list(types)}; give one weight per type, or leave it unset for all 1.0"
            )
    check_positive("model.beta", beta, hint="DPO's usual value is 0.1")
    _check_label_smoothing(types, label_smoothing)
    check_choice(
        "model.f_divergence_type", f_divergence_type, F_DIVERGENCE_TYPES, what="an f-divergence"
    )
    unsupported = [name for name in types if name not in F_DIVERGENCE_LOSS_TYPES]
    if f_divergence_type != "reverse_kl" and unsupported:
        raise AutotrainError(
            f"model.f_divergence_type={f_divergence_type!r} works only with loss types "
            f"{', '.join(F_DIVERGENCE_LOSS_TYPES)}; {', '.join(unsupported)} need 'reverse_kl'"
        )
    check_number("model.f_alpha_divergence_coef", f_alpha_divergence_coef)
    check_positive("model.discopop_tau", discopop_tau, hint="the DiscoPOP paper uses 0.05")
    if rpo_alpha is not None:
        check_non_negative("model.rpo_alpha", rpo_alpha, hint="the RPO paper uses 1.0; None is off")
    return types, weights


def _check_label_smoothing(types: tuple[str, ...], label_smoothing: float) -> None:
    eps = check_non_negative("model.label_smoothing", label_smoothing)
    users = ", ".join(LABEL_SMOOTHING_LOSS_TYPES)
    if eps > 0 and not any(name in LABEL_SMOOTHING_LOSS_TYPES for name in types):
        raise AutotrainError(
            f"model.label_smoothing={label_smoothing!r} has no effect with model.loss_type="
            f"{list(types)}; set it to 0, or use a type that reads it ({users})"
        )
    if "robust" in types and eps >= 0.5:
        raise AutotrainError(
            f"model.label_smoothing={label_smoothing!r} must lie in [0, 0.5) for loss_type "
            "'robust' (the label-flip probability; 0.1 is typical)"
        )
    smoothed = [name for name in types if name in ("sigmoid", "aot", "aot_unpaired")]
    if smoothed and eps > 0.5:
        raise AutotrainError(
            f"model.label_smoothing={label_smoothing!r} must lie in [0, 0.5] for loss_type "
            f"{', '.join(smoothed)}"
        )
    if "exo_pair" in types and not 0 < eps < 1:
        raise AutotrainError(
            f"model.label_smoothing={label_smoothing!r} must lie in (0, 1) for loss_type "
            "'exo_pair' (it takes log(label_smoothing)); the EXO paper recommends 1e-3"
        )


def chosen_token_nll_per_pair(chosen_logps: Tensor, chosen_lengths: Tensor) -> Tensor:
    """The batch's mean NLL over all chosen completion tokens, spread over pairs as ``[B]``.

    TRL's SFT/RPO/CPO/ORPO NLL terms are ``-sum(chosen token logps) / sum(chosen tokens)`` for the
    whole batch. Written per pair as ``-chosen_logps_b * B / sum(chosen_lengths)``, the pairs' mean
    is TRL's value and their sum is ``B`` times it, so pair-level reduction keeps it exact.
    """
    total_tokens = chosen_lengths.to(chosen_logps.dtype).sum().clamp(min=1.0)
    return -chosen_logps * (chosen_logps.numel() / total_tokens)


def _f_divergence_scores(logratios: Tensor, kind: str, coef: float) -> Tensor:
    """The f-DPO score ``f'(pi / ref)`` of a log-ratio (``reverse_kl``: the log-ratio itself)."""
    if kind == "forward_kl":
        return 1 - torch.exp(-logratios)
    if kind == "js_divergence":
        return math.log(2) + F.logsigmoid(logratios)
    if kind == "alpha_divergence" and abs(coef - 1.0) >= 1e-6:
        scaled = ((coef - 1.0) * logratios).clamp(max=_ALPHA_DIVERGENCE_CLAMP)
        return (torch.exp(scaled) - 1.0) * (1.0 / (coef - 1.0))
    return logratios  # reverse_kl, and alpha_divergence's alpha -> 1 limit


@dataclass
class _Pairs:
    """The per-pair tensors every DPO loss type reads (compute dtype, reference detached)."""

    chosen_logps: Tensor
    rejected_logps: Tensor
    ref_chosen_logps: Tensor
    ref_rejected_logps: Tensor
    chosen_logratios: Tensor
    rejected_logratios: Tensor
    chosen_scores: Tensor
    rejected_scores: Tensor
    chosen_lengths: Tensor | None
    rejected_lengths: Tensor | None


def _smoothed_sigmoid(logits: Tensor, eps: float) -> Tensor:
    """``-(1 - eps) logsigmoid(x) - eps logsigmoid(-x)``: a sigmoid loss on soft labels."""
    loss = -(1.0 - eps) * F.logsigmoid(logits)
    return loss - eps * F.logsigmoid(-logits) if eps > 0 else loss


def _length_averaged_delta(p: _Pairs) -> Tensor:
    assert p.chosen_lengths is not None and p.rejected_lengths is not None
    chosen = p.chosen_scores / p.chosen_lengths.clamp(min=1.0)
    return chosen - p.rejected_scores / p.rejected_lengths.clamp(min=1.0)


def _per_pair_loss(loss_type: str, p: _Pairs, beta: float, eps: float, tau: float) -> Tensor:
    """One loss type's ``[B]`` losses, as in TRL 1.16 ``DPOTrainer._compute_loss``."""
    delta = p.chosen_scores - p.rejected_scores
    chosen_rewards, rejected_rewards = beta * p.chosen_logratios, beta * p.rejected_logratios
    if loss_type == "sigmoid":  # cDPO when eps > 0 (TRL 1.16 ignores eps here)
        return _smoothed_sigmoid(beta * delta, eps)
    if loss_type == "hinge":
        return torch.relu(1 - beta * delta)
    if loss_type == "ipo":
        return (_length_averaged_delta(p) - 1 / (2 * beta)) ** 2
    if loss_type == "exo_pair":  # EXO-pref, eq. 16: KL(p_f || [1 - eps, eps])
        logits = beta * delta
        chosen_term = torch.sigmoid(logits) * (F.logsigmoid(logits) - math.log1p(-eps))
        return chosen_term + torch.sigmoid(-logits) * (F.logsigmoid(-logits) - math.log(eps))
    if loss_type == "nca_pair":
        return (
            -F.logsigmoid(chosen_rewards)
            - 0.5 * F.logsigmoid(-chosen_rewards)
            - 0.5 * F.logsigmoid(-rejected_rewards)
        )
    if loss_type == "robust":
        clean = -(1 - eps) * F.logsigmoid(beta * delta)
        flipped = -eps * F.logsigmoid(-beta * delta)
        return (clean - flipped) / (1 - 2 * eps)
    if loss_type == "bco_pair":
        return -F.logsigmoid(chosen_rewards) - F.logsigmoid(-rejected_rewards)
    if loss_type == "sppo_hard":
        winner = (p.chosen_logratios - 0.5 / beta) ** 2
        return winner + (p.rejected_logratios + 0.5 / beta) ** 2
    if loss_type == "aot":  # sorted across the batch: values are per sorted position
        policy = torch.sort(p.chosen_logps - p.rejected_logps, dim=0).values
        reference = torch.sort(p.ref_chosen_logps - p.ref_rejected_logps, dim=0).values
        return _smoothed_sigmoid(beta * (policy - reference), eps)
    if loss_type == "aot_unpaired":
        chosen = torch.sort(p.chosen_logratios, dim=0).values
        rejected = torch.sort(p.rejected_logratios, dim=0).values
        return _smoothed_sigmoid(beta * (chosen - rejected), eps)
    if loss_type == "apo_zero":
        return 1 - torch.sigmoid(chosen_rewards) + torch.sigmoid(rejected_rewards)
    if loss_type == "apo_down":
        margin = beta * (p.chosen_logratios - p.rejected_logratios)
        return torch.sigmoid(chosen_rewards) + 1 - torch.sigmoid(margin)
    if loss_type == "discopop":
        logits = beta * delta
        modulation = torch.sigmoid(logits / tau)
        return -F.logsigmoid(logits) * (1 - modulation) + torch.exp(-logits) * modulation
    if loss_type == "sft":
        assert p.chosen_lengths is not None
        return chosen_token_nll_per_pair(p.chosen_logps, p.chosen_lengths)
    if loss_type == "sigmoid_norm":
        return -F.logsigmoid(beta * _length_averaged_delta(p))
    raise AssertionError(f"unhandled DPO loss type {loss_type!r}")  # check_dpo_settings guards


def dpo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    *,
    beta: float = 0.1,
    loss_type: str | Sequence[str] = "sigmoid",
    loss_weights: Sequence[float] | None = None,
    label_smoothing: float = 0.0,
    f_divergence_type: str = "reverse_kl",
    f_alpha_divergence_coef: float = 0.5,
    discopop_tau: float = 0.05,
    rpo_alpha: float | None = None,
    chosen_lengths: Tensor | None = None,
    rejected_lengths: Tensor | None = None,
    normalizer: Normalizer | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Direct Preference Optimization and its variants, with TRL 1.16's formulas and defaults.

    With log-ratios ``rho = logp - ref_logp`` and ``d = rho_c - rho_r``, ``sigmoid`` is
    ``-logsigmoid(beta d)`` (Rafailov et al., 2023); with ``label_smoothing = eps > 0`` it is cDPO,
    ``-(1 - eps) logsigmoid(beta d) - eps logsigmoid(-beta d)``. See ``DPO_LOSS_TYPES`` and TRL's
    DPO docs for the others. A list ``loss_type`` is MPO: ``sum_k w_k * mean_b(loss_k)``.
    ``rpo_alpha`` adds ``rpo_alpha`` times the chosen-token NLL (RPO, Pang et al., 2024); it equals
    ``loss_type=[X, "sft"], loss_weights=[1, rpo_alpha]`` (``None`` or 0: off). ``aot`` and
    ``aot_unpaired`` sort margins across the batch, so their per-pair values are per sorted rank.

    Args:
        policy_chosen_logps: ``[B]`` summed completion log-probs; the rest likewise.
        chosen_lengths: ``[B]`` completion token counts; ``ipo``, ``sigmoid_norm``, ``sft`` and
            ``rpo_alpha`` need them (``rejected_lengths`` too).
        normalizer: ``None``: this batch's B (the mean, TRL's value); ``1``: the sum; or the
            number of pairs in the optimizer step.

    Returns:
        ``(loss, metrics)``; metrics are detached ``[B]`` tensors, to be summed over pairs:
        ``rewards/chosen`` (``beta * rho_c``), ``rewards/rejected``, ``rewards/accuracies``,
        ``rewards/margins``, ``logps/chosen``, ``logps/rejected`` and, with more than one term,
        each term's unweighted ``loss_<type>`` (``loss_sft`` for RPO).
    """
    types, weights = check_dpo_settings(
        beta=beta,
        loss_type=loss_type,
        loss_weights=loss_weights,
        label_smoothing=label_smoothing,
        f_divergence_type=f_divergence_type,
        f_alpha_divergence_coef=f_alpha_divergence_coef,
        discopop_tau=discopop_tau,
        rpo_alpha=rpo_alpha,
    )
    terms = list(zip(types, weights, strict=True))
    if rpo_alpha:
        terms.append(("sft", float(rpo_alpha)))
    needs_lengths = sorted({name for name, _ in terms if name in _LENGTH_LOSS_TYPES})
    if needs_lengths and (chosen_lengths is None or rejected_lengths is None):
        raise ValueError(
            f"dpo_loss: {', '.join(needs_lengths)} (or rpo_alpha) needs chosen_lengths and "
            "rejected_lengths, the completion token counts"
        )
    dtype = compute_dtype(policy_chosen_logps)
    chosen_logps, rejected_logps = policy_chosen_logps.to(dtype), policy_rejected_logps.to(dtype)
    ref_chosen = ref_chosen_logps.detach().to(dtype)
    ref_rejected = ref_rejected_logps.detach().to(dtype)
    chosen_logratios, rejected_logratios = chosen_logps - ref_chosen, rejected_logps - ref_rejected
    pairs = _Pairs(
        chosen_logps=chosen_logps,
        rejected_logps=rejected_logps,
        ref_chosen_logps=ref_chosen,
        ref_rejected_logps=ref_rejected,
        chosen_logratios=chosen_logratios,
        rejected_logratios=rejected_logratios,
        chosen_scores=_f_divergence_scores(
            chosen_logratios, f_divergence_type, f_alpha_divergence_coef
        ),
        rejected_scores=_f_divergence_scores(
            rejected_logratios, f_divergence_type, f_alpha_divergence_coef
        ),
        chosen_lengths=None if chosen_lengths is None else chosen_lengths.to(dtype),
        rejected_lengths=None if rejected_lengths is None else rejected_lengths.to(dtype),
    )
    term_losses: dict[str, Tensor] = {}
    combined = torch.zeros_like(chosen_logps)
    for name, weight in terms:
        if name not in term_losses:
            term_losses[name] = _per_pair_loss(name, pairs, beta, label_smoothing, discopop_tau)
        combined = combined + weight * term_losses[name]
    loss = reduce_pairs(combined, normalizer)

    with torch.no_grad():
        chosen_rewards = beta * chosen_logratios.detach()
        rejected_rewards = beta * rejected_logratios.detach()
        metrics = {
            "rewards/chosen": chosen_rewards,
            "rewards/rejected": rejected_rewards,
            "rewards/accuracies": (chosen_rewards > rejected_rewards).to(dtype),
            "rewards/margins": chosen_rewards - rejected_rewards,
            "logps/chosen": chosen_logps.detach(),
            "logps/rejected": rejected_logps.detach(),
        }
        if len(terms) > 1:
            metrics.update({f"loss_{name}": value.detach() for name, value in term_losses.items()})
    return loss, metrics
