"""Kahneman-Tversky optimization on unpaired feedback: one completion per prompt, labelled.

``KTOModule`` trains on ``prompt``/``completion``/``label`` rows (``label`` true for a desirable
completion) with ``losses.kto.kto_loss``, the KTO loss of TRL 1.16 ``KTOTrainer`` (or its
``apo_zero_unpaired`` variant). The KL term is estimated from mismatched prompt/completion pairs
(``objectives.preference.data.UnpairedEncoding``): each example's second completion, scored in
the same forward pass as its own in the packed layout. The reference works as for DPO.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autotrain_pl.losses.kto import check_kto_settings, kto_loss
from autotrain_pl.objectives.preference.base import PairObjective
from autotrain_pl.objectives.preference.data import UnpairedEncoding
from autotrain_pl.training import LossOutput

_MEANS = ("rewards/chosen", "logps/chosen", "rewards/rejected", "logps/rejected")


class KTOModule(PairObjective):
    """KTO on desirable/undesirable completions (see module docstring).

    Args:
        loss_type: ``kto`` or ``apo_zero_unpaired`` (no KL term, so no mismatched completions
            are needed; they are still scored for the logged ``kl``).
        beta: the KL strength, 0.1 as in TRL.
        desirable_weight: weight of desirable examples' losses.
        undesirable_weight: weight of undesirable ones'; keep ``weight x count`` about equal
            for the two labels when the data is imbalanced (the KTO paper's advice).
        **kwargs: the reference and layout options of ``PairObjective`` and the shared options
            of ``ObjectiveModule``.

    Logged, as TRL names them: ``rewards/chosen`` and ``logps/chosen`` (means over desirable
    examples), the same for rejected (undesirable), ``rewards/margins`` and ``kl``.
    """

    data_kind = "unpaired_preference"

    def __init__(self, *args: Any, loss_type: str = "kto", beta: float = 0.1,
                 desirable_weight: float = 1.0, undesirable_weight: float = 1.0,
                 **kwargs: Any) -> None:
        check_kto_settings(beta=beta, desirable_weight=desirable_weight,
                           undesirable_weight=undesirable_weight, loss_type=loss_type)
        super().__init__(*args, **kwargs)

    @staticmethod
    def make_encoding(layout: str, cache_index: bool = True) -> UnpairedEncoding:
        return UnpairedEncoding(layout, cache_index)

    def compute_loss(self, batch: Mapping[str, Any]) -> LossOutput:
        policy = self.pair_scores(self.model, batch)
        ref_completion, ref_kl = self.reference_scores(batch)
        hp = self.hparams
        kl = hp.loss_type == "kto"
        loss, metrics = kto_loss(
            policy.chosen, ref_completion, batch["labels"],
            policy.rejected if kl else None, ref_kl if kl else None,
            beta=hp.beta, desirable_weight=hp.desirable_weight,
            undesirable_weight=hp.undesirable_weight, loss_type=hp.loss_type, normalizer=1)
        examples = policy.chosen.new_tensor(float(batch["num_pairs"]))
        sums = {name: value.sum() for name, value in metrics.items()}
        return LossOutput.from_sum(loss, examples, sums, int(batch["tokens"]))

    def derived_metrics(self, means: Mapping[str, float]) -> dict[str, float]:
        """TRL's per-label means from the per-example sums and counts."""
        out = {}
        for name in _MEANS:
            label = name.split("/")[1]
            count = means.get(f"count/{label}", 0.0)
            if count > 0:
                out[name] = means[f"{name}_sum"] / count
        if "rewards/chosen" in out and "rewards/rejected" in out:
            out["rewards/margins"] = out["rewards/chosen"] - out["rewards/rejected"]
        return out
