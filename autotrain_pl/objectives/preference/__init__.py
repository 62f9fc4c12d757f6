"""Preference objectives: DPO and its family on pairs, KTO on unpaired feedback; both score
two completions of a prompt in one forward pass."""

from autotrain_pl.objectives.preference.base import PairObjective
from autotrain_pl.objectives.preference.dpo import REFERENCE_FREE_TYPES, DPOModule
from autotrain_pl.objectives.preference.kto import KTOModule

__all__ = ["REFERENCE_FREE_TYPES", "DPOModule", "KTOModule", "PairObjective"]
