"""Training objectives: each is a LightningModule with a small ``compute_loss`` hook."""

from autotrain_pl.objectives.base import ObjectiveModule
from autotrain_pl.objectives.distillation import DistillationModule
from autotrain_pl.objectives.sft import SFTModule
from autotrain_pl.objectives.tokens import (
    TokenSelection,
    forward_logprobs,
    forward_trained_logits,
    select_trained_tokens,
)

__all__ = [
    "DistillationModule", "ObjectiveModule", "SFTModule", "TokenSelection", "forward_logprobs",
    "forward_trained_logits", "select_trained_tokens",
]
