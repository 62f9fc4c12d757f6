"""``TrainingClient``: forward_backward / optim_step research loops on one model (Tinker-style)."""

from autotrain_pl.client.training_client import TrainingClient
from autotrain_pl.client.types import AdamParams, ForwardBackwardResult, OptimStepResult
from autotrain_pl.training.stepping import NonFiniteGradientWarning

__all__ = [
    "AdamParams", "ForwardBackwardResult", "NonFiniteGradientWarning", "OptimStepResult",
    "TrainingClient",
]
