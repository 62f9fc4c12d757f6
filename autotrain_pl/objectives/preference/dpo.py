"""Direct preference optimization and its family, on pairs scored in one forward pass.

``DPOModule`` trains on prompt/chosen/rejected pairs from ``ChatDataModule``:

- every ``loss_type`` of TRL 1.16's ``DPOTrainer``, alone or as a weighted combination (MPO),
  with cDPO label smoothing, the f-divergence regularizers and an NLL-on-chosen term
  (``rpo_alpha``), all from ``losses.dpo``;
- the reference-free types ``simpo`` and ``cpo`` (``losses.reference_free.cpo_loss``) and
  ``orpo`` (``losses.reference_free.orpo_loss``), which load no reference model.

Both completions of a batch go through the policy in ONE forward pass (``data.pair_batches``:
packed by default, the prompt encoded once), and the LM head runs only at completion tokens.
The reference (``objectives.preference.reference``) is a frozen copy, the LoRA adapter disabled,
or log-probabilities computed once before training and cached on disk.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from autotrain_pl.errors import AutotrainError
from autotrain_pl.losses._checks import check_choice
from autotrain_pl.losses.dpo import DPO_LOSS_TYPES, check_dpo_settings, dpo_loss
from autotrain_pl.losses.reference_free import (
    check_reference_free_settings,
    cpo_loss,
    orpo_loss,
)
from autotrain_pl.objectives.preference.base import PairObjective
from autotrain_pl.training import LossOutput

#: Reference-free types: the policy alone is scored, no reference model loads.
REFERENCE_FREE_TYPES = ("simpo", "cpo", "orpo")


class DPOModule(PairObjective):
    """Preference optimization on chosen/rejected pairs (see module docstring).

    Args:
        loss_type: a ``losses.dpo.DPO_LOSS_TYPES`` name, a list of them (combined with
            ``loss_weights``, e.g. MPO's ``[sigmoid, bco_pair, sft]``), or one reference-free
            type: ``simpo`` (length-normalized, target margin ``simpo_gamma``), ``cpo``, ``orpo``.
        loss_weights: one weight per listed type (default 1 each).
        beta: the KL strength (DPO), temperature of the reward (SimPO) or weight of the
            odds-ratio term (ORPO). 0.1 as in TRL.
        label_smoothing: the assumed share of flipped labels: cDPO with ``sigmoid``; also read by
            ``robust``, ``exo_pair``, ``aot``, ``aot_unpaired``, ``simpo`` and ``cpo``.
        rpo_alpha: weight of an NLL term on the chosen reply, added to any type (RPO). ``cpo``
            defaults it to 1 (CPO's behaviour-cloning term); ``orpo`` has its own NLL term.
        f_divergence_type: ``reverse_kl`` (standard DPO), ``forward_kl``, ``js_divergence`` or
            ``alpha_divergence`` (with ``f_alpha_divergence_coef``).
        f_alpha_divergence_coef: alpha of the alpha-divergence.
        discopop_tau: temperature of the ``discopop`` loss.
        simpo_gamma: SimPO's target reward margin.
        **kwargs: the reference and layout options of ``PairObjective`` (``ref_model``,
            ``precompute_ref_log_probs``, ``ref_cache_dir``, ``pair_layout``) and the shared
            options of ``ObjectiveModule`` (model, LoRA, optimizer, ...).
    """

    def __init__(
        self,
        *args: Any,
        loss_type: str | list[str] = "sigmoid",
        loss_weights: list[float] | None = None,
        beta: float = 0.1,
        label_smoothing: float = 0.0,
        rpo_alpha: float | None = None,
        f_divergence_type: str = "reverse_kl",
        f_alpha_divergence_coef: float = 0.5,
        discopop_tau: float = 0.05,
        simpo_gamma: float = 0.5,
        **kwargs: Any,
    ) -> None:
        types, weights = _check_loss(
            loss_type, loss_weights, beta=beta, label_smoothing=label_smoothing,
            rpo_alpha=rpo_alpha, f_divergence_type=f_divergence_type,
            f_alpha_divergence_coef=f_alpha_divergence_coef, discopop_tau=discopop_tau,
            simpo_gamma=simpo_gamma)
        super().__init__(*args, reference_free=types[0] in REFERENCE_FREE_TYPES, **kwargs)
        self.loss_types, self.loss_term_weights = types, weights

    # -- loss -----------------------------------------------------------------------------------
    def compute_loss(self, batch: Mapping[str, Any]) -> LossOutput:
        policy = self.pair_scores(self.model, batch)
        pairs = policy.chosen.new_tensor(float(batch["num_pairs"]))
        hp = self.hparams
        lengths = {"chosen_lengths": policy.chosen_lengths,
                   "rejected_lengths": policy.rejected_lengths}
        if self.loss_types[0] == "orpo":
            loss, metrics = orpo_loss(policy.chosen, policy.rejected, beta=hp.beta,
                                      normalizer=1, **lengths)
        elif self.loss_types[0] in ("simpo", "cpo"):
            loss, metrics = cpo_loss(
                policy.chosen, policy.rejected, beta=hp.beta, normalizer=1,
                loss_type="simpo" if self.loss_types[0] == "simpo" else "sigmoid",
                label_smoothing=hp.label_smoothing, simpo_gamma=hp.simpo_gamma,
                cpo_alpha=_cpo_alpha(self.loss_types[0], hp.rpo_alpha), **lengths)
        else:
            ref_chosen, ref_rejected = self.reference_scores(batch)
            loss, metrics = dpo_loss(
                policy.chosen, policy.rejected, ref_chosen, ref_rejected, beta=hp.beta,
                loss_type=list(self.loss_types), loss_weights=list(self.loss_term_weights),
                label_smoothing=hp.label_smoothing, f_divergence_type=hp.f_divergence_type,
                f_alpha_divergence_coef=hp.f_alpha_divergence_coef,
                discopop_tau=hp.discopop_tau, rpo_alpha=hp.rpo_alpha, normalizer=1, **lengths)
        sums = {name: value.sum() for name, value in metrics.items()}
        return LossOutput.from_sum(loss, pairs, sums, int(batch["tokens"]))


def _check_loss(loss_type: str | Sequence[str], loss_weights: Sequence[float] | None, *,
                beta: float, label_smoothing: float, rpo_alpha: float | None,
                f_divergence_type: str, f_alpha_divergence_coef: float, discopop_tau: float,
                simpo_gamma: float) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """The loss settings, checked before any model loads; returns (types, weights)."""
    types = (loss_type,) if isinstance(loss_type, str) else tuple(loss_type)
    for name in types:
        check_choice("model.loss_type", name, DPO_LOSS_TYPES + REFERENCE_FREE_TYPES,
                     what="a DPO or reference-free loss type")
    free = [t for t in types if t in REFERENCE_FREE_TYPES]
    if not free:
        return check_dpo_settings(
            beta=beta, loss_type=loss_type, loss_weights=loss_weights,
            label_smoothing=label_smoothing, f_divergence_type=f_divergence_type,
            f_alpha_divergence_coef=f_alpha_divergence_coef, discopop_tau=discopop_tau,
            rpo_alpha=rpo_alpha)
    if len(types) > 1 or loss_weights:
        raise AutotrainError(
            f"model.loss_type={list(types)!r}: {free[0]} is reference-free and does not combine "
            "with other types; give it alone, or combine DPO types (e.g. [sigmoid, sft])"
        )
    if f_divergence_type != "reverse_kl":
        raise AutotrainError(
            f"model.f_divergence_type={f_divergence_type!r} regularizes toward a reference; "
            f"{free[0]} has none, so remove it or use a DPO type"
        )
    if free[0] == "orpo":
        if label_smoothing:
            raise AutotrainError("model.label_smoothing has no effect with loss_type='orpo'; "
                                 "set it to 0")
        if rpo_alpha is not None:
            raise AutotrainError("model.rpo_alpha: ORPO's loss already holds the chosen NLL "
                                 "with weight 1; remove rpo_alpha and scale the odds-ratio term "
                                 "with beta")
        check_reference_free_settings(beta=beta)
    else:
        check_reference_free_settings(
            beta=beta, loss_type="simpo" if free[0] == "simpo" else "sigmoid",
            label_smoothing=label_smoothing, simpo_gamma=simpo_gamma,
            cpo_alpha=_cpo_alpha(free[0], rpo_alpha))
    return types, (1.0,)


def _cpo_alpha(loss_type: str, rpo_alpha: float | None) -> float:
    """The chosen-NLL weight of the CPO family: ``rpo_alpha``, else 1 for CPO, 0 for SimPO."""
    if rpo_alpha is not None:
        return float(rpo_alpha)
    return 1.0 if loss_type == "cpo" else 0.0
