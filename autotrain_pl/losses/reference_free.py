"""Preference losses without a reference model: CPO/SimPO and ORPO, as in TRL 1.16.

Inputs are ``[B]`` chosen/rejected completion log-probs summed over completion tokens, plus the
completion token counts, from which the length-averaged log-probs that SimPO, IPO and ORPO use
are formed. The formulas follow ``trl.experimental.cpo.CPOTrainer`` (``cpo_loss`` +
``get_batch_loss_metrics``) and ``trl.experimental.orpo.ORPOTrainer`` (``odds_ratio_loss`` +
``get_batch_loss_metrics``); CPO's AlphaPO reward shaping (``alpha != 0``) is not implemented.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from autotrain_pl.errors import AutotrainError
from autotrain_pl.losses._checks import check_choice, check_non_negative, check_positive
from autotrain_pl.losses._reduction import Normalizer, compute_dtype, reduce_pairs
from autotrain_pl.losses.dpo import chosen_token_nll_per_pair

CPO_LOSS_TYPES = ("sigmoid", "hinge", "ipo", "simpo")
_LENGTH_AVERAGED_TYPES = ("ipo", "simpo")


def check_reference_free_settings(
    *,
    beta: float,
    loss_type: str = "sigmoid",
    label_smoothing: float = 0.0,
    simpo_gamma: float = 0.5,
    cpo_alpha: float = 1.0,
) -> None:
    """Validate CPO/SimPO settings (ORPO reads only ``beta``) before a step runs.

    Raises:
        AutotrainError: naming the ``model.*`` field and how to fix it.
    """
    check_choice("model.loss_type", loss_type, CPO_LOSS_TYPES, what="a CPO loss type")
    check_positive("model.beta", beta, hint="TRL's default is 0.1; SimPO uses 2.0 to 2.5")
    check_non_negative("model.simpo_gamma", simpo_gamma, hint="SimPO's target margin; 0.5 is usual")
    check_non_negative("model.cpo_alpha", cpo_alpha, hint="0 turns the NLL term off")
    eps = check_non_negative("model.label_smoothing", label_smoothing)
    if eps > 0 and loss_type in ("hinge", "ipo"):
        raise AutotrainError(
            f"model.label_smoothing={label_smoothing!r} has no effect with loss_type "
            f"{loss_type!r}; set it to 0, or use loss_type 'sigmoid' or 'simpo'"
        )
    if eps > 0.5:
        raise AutotrainError(
            f"model.label_smoothing={label_smoothing!r} must lie in [0, 0.5] (the probability "
            "that a preference label is wrong)"
        )


def _length_average(logps: Tensor, lengths: Tensor) -> Tensor:
    return logps / lengths.to(logps.dtype).clamp(min=1.0)


def _reward_metrics(beta: float, chosen: Tensor, rejected: Tensor) -> dict[str, Tensor]:
    """TRL's reward metrics per pair: rewards are ``beta`` times the log-probs the loss used."""
    chosen, rejected = chosen.detach(), rejected.detach()
    chosen_rewards, rejected_rewards = beta * chosen, beta * rejected
    return {
        "rewards/chosen": chosen_rewards,
        "rewards/rejected": rejected_rewards,
        "rewards/accuracies": (chosen_rewards > rejected_rewards).to(chosen.dtype),
        "rewards/margins": chosen_rewards - rejected_rewards,
        "logps/chosen": chosen,
        "logps/rejected": rejected,
    }


def cpo_loss(
    chosen_logps: Tensor,
    rejected_logps: Tensor,
    chosen_lengths: Tensor,
    rejected_lengths: Tensor,
    *,
    loss_type: str = "sigmoid",
    beta: float = 0.1,
    label_smoothing: float = 0.0,
    simpo_gamma: float = 0.5,
    cpo_alpha: float = 1.0,
    normalizer: Normalizer | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """CPO (Xu et al., 2024) and SimPO (Meng et al., 2024): DPO-style losses on the policy alone.

    With ``z = logp_c - logp_r`` (length-averaged log-probs for ``simpo`` and ``ipo``, sums
    otherwise) and ``eps = label_smoothing``: ``sigmoid`` is
    ``-(1 - eps) logsigmoid(beta z) - eps logsigmoid(-beta z)``; ``simpo`` is the same with
    ``z - simpo_gamma / beta``; ``hinge`` is ``relu(1 - beta z)``; ``ipo`` is
    ``(z - 1 / (2 beta))^2``. The total is ``mean_b(loss) + cpo_alpha * NLL`` where NLL is the
    mean over all chosen completion tokens of the batch (``chosen_token_nll_per_pair``). Defaults
    are TRL's ``CPOConfig`` (CPO: sigmoid, beta 0.1, cpo_alpha 1.0); SimPO is
    ``loss_type="simpo", cpo_alpha=0`` with the paper's beta of 2.0 to 2.5.

    Args:
        chosen_logps: ``[B]`` summed completion log-probs; ``rejected_logps`` likewise.
        chosen_lengths: ``[B]`` completion token counts; ``rejected_lengths`` likewise.
        normalizer: ``None``: this batch's B (the mean, TRL's value); ``1``: the sum.

    Returns:
        ``(loss, metrics)``; detached ``[B]`` metrics with TRL's names: ``rewards/chosen``
        (``beta`` times the log-probs the loss used), ``rewards/rejected``, ``rewards/accuracies``,
        ``rewards/margins``, ``logps/chosen``, ``logps/rejected`` (averaged for simpo/ipo) and,
        when ``cpo_alpha > 0``, ``nll_loss`` (its mean is TRL's value).
    """
    check_reference_free_settings(
        beta=beta,
        loss_type=loss_type,
        label_smoothing=label_smoothing,
        simpo_gamma=simpo_gamma,
        cpo_alpha=cpo_alpha,
    )
    dtype = compute_dtype(chosen_logps)
    chosen_sum, rejected_sum = chosen_logps.to(dtype), rejected_logps.to(dtype)
    chosen, rejected = chosen_sum, rejected_sum
    if loss_type in _LENGTH_AVERAGED_TYPES:
        chosen = _length_average(chosen_sum, chosen_lengths)
        rejected = _length_average(rejected_sum, rejected_lengths)
    logits = chosen - rejected
    eps = label_smoothing
    if loss_type in ("sigmoid", "simpo"):
        if loss_type == "simpo":
            logits = logits - simpo_gamma / beta
        per_pair = -F.logsigmoid(beta * logits) * (1 - eps) - F.logsigmoid(-beta * logits) * eps
    elif loss_type == "hinge":
        per_pair = torch.relu(1 - beta * logits)
    else:  # ipo: eq. 17, beta is the paper's tau
        per_pair = (logits - 1 / (2 * beta)) ** 2
    nll = None
    if cpo_alpha > 0:
        nll = chosen_token_nll_per_pair(chosen_sum, chosen_lengths)
        per_pair = per_pair + cpo_alpha * nll
    loss = reduce_pairs(per_pair, normalizer)
    with torch.no_grad():
        metrics = _reward_metrics(beta, chosen, rejected)
        if nll is not None:
            metrics["nll_loss"] = nll.detach()
    return loss, metrics


def _log1mexp(x: Tensor) -> Tensor:
    """``log(1 - exp(x))`` for ``x <= 0``, stable on both sides of ``-ln 2`` (TRL's branching)."""
    return torch.where(x < -math.log(2), torch.log1p(-torch.exp(x)), torch.log(-torch.expm1(x)))


def orpo_loss(
    chosen_logps: Tensor,
    rejected_logps: Tensor,
    chosen_lengths: Tensor,
    rejected_lengths: Tensor,
    *,
    beta: float = 0.1,
    prompt_logps: Tensor | None = None,
    prompt_lengths: Tensor | None = None,
    normalizer: Normalizer | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """ORPO (Hong et al., 2024): the chosen NLL minus ``beta`` times the log-odds-ratio term.

    With length-averaged log-probs ``a = logp / n`` and ``log_odds = (a_c - a_r) -
    (log(1 - exp(a_c)) - log(1 - exp(a_r)))``, the loss is
    ``NLL - mean_b(beta * logsigmoid(log_odds))`` where NLL is the mean over all chosen tokens of
    the batch. TRL 1.16 (and the ORPO authors' code) also counts the chosen row's prompt tokens in
    the NLL; pass ``prompt_logps``/``prompt_lengths`` (summed log-probs and count of the predicted
    prompt tokens, i.e. all but the first) to reproduce that. Without them the NLL covers the
    chosen completion only, the paper's ``L_SFT``.

    Args:
        chosen_logps: ``[B]`` summed completion log-probs; ``rejected_logps`` likewise.
        chosen_lengths: ``[B]`` completion token counts; ``rejected_lengths`` likewise.
        normalizer: ``None``: this batch's B (the mean, TRL's value); ``1``: the sum.

    Returns:
        ``(loss, metrics)``; detached ``[B]`` metrics with TRL's names: ``rewards/*``
        (``beta * a``), ``logps/*`` (``a``), ``nll_loss``, ``log_odds_ratio`` (TRL's name for
        ``logsigmoid(log_odds)``) and ``log_odds_chosen`` (``log_odds``).
    """
    check_positive("model.beta", beta, hint="ORPO's usual value is 0.1 (its lambda)")
    if (prompt_logps is None) != (prompt_lengths is None):
        raise ValueError("orpo_loss: pass prompt_logps and prompt_lengths together, or neither")
    dtype = compute_dtype(chosen_logps)
    chosen_sum = chosen_logps.to(dtype)
    chosen = _length_average(chosen_sum, chosen_lengths)
    rejected = _length_average(rejected_logps.to(dtype), rejected_lengths)
    log_odds = (chosen - rejected) - (_log1mexp(chosen) - _log1mexp(rejected))
    log_sigmoid_odds = F.logsigmoid(log_odds)
    nll_logps, nll_lengths = chosen_sum, chosen_lengths.to(dtype)
    if prompt_logps is not None and prompt_lengths is not None:
        nll_logps = nll_logps + prompt_logps.to(dtype)
        nll_lengths = nll_lengths + prompt_lengths.to(dtype)
    nll = chosen_token_nll_per_pair(nll_logps, nll_lengths)
    loss = reduce_pairs(nll - beta * log_sigmoid_odds, normalizer)
    with torch.no_grad():
        metrics = _reward_metrics(beta, chosen, rejected)
        metrics["nll_loss"] = nll.detach()
        metrics["log_odds_ratio"] = log_sigmoid_odds.detach()
        metrics["log_odds_chosen"] = log_odds.detach()
    return loss, metrics
