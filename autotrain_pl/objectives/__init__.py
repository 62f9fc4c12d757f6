"""Training objectives: each is a LightningModule with a small ``compute_loss`` hook."""

from autotrain_pl.objectives.base import ObjectiveModule
from autotrain_pl.objectives.preference import DPOModule, KTOModule, PairObjective
from autotrain_pl.objectives.reward import RewardModule
from autotrain_pl.objectives.rl import GRPOModule, PPOModule
from autotrain_pl.objectives.sft import DistillationModule, SFTModule
from autotrain_pl.training import LossOutput

__all__ = ["DPOModule", "DistillationModule", "GRPOModule", "KTOModule", "LossOutput",
           "ObjectiveModule", "PPOModule", "PairObjective", "RewardModule", "SFTModule"]
