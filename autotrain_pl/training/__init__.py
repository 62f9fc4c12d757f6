"""Step machinery shared by objectives, the client, evaluation and callbacks.

Forward passes at trained positions only (``tokens``, ``final_layer``), compiled decoder
layers for training forwards (``compiled``), the one optimizer-step
implementation (``stepping``), optimizer and schedule construction (``optim``), and the holder of
frozen models and of values they computed once (``frozen``, ``frozen_cache``).
"""

from autotrain_pl.training.compiled import CompiledLayers, compiled_layers_for
from autotrain_pl.training.frozen import FrozenModel, model_signature
from autotrain_pl.training.frozen_cache import FrozenValueCache, rank_zero_first
from autotrain_pl.training.optim import (
    SCHEDULES,
    lr_lambda,
    parameter_groups,
    resolve_optimizer_class,
    warmup_steps_for,
)
from autotrain_pl.training.policy import PolicyHolder
from autotrain_pl.training.stepping import (
    LossOutput,
    MeanAccumulator,
    NonFiniteGradientWarning,
    NonFiniteTrainingError,
    StepController,
    StepOutcome,
    SteppedModule,
    check_clip_norm,
    check_loss_output,
)
from autotrain_pl.training.tokens import (
    TokenSelection,
    count_real_tokens,
    forward_logprobs,
    forward_trained_logits,
    forward_trained_states,
    select_trained_tokens,
    trained_inputs,
)

__all__ = [
    "SCHEDULES", "CompiledLayers", "FrozenModel", "FrozenValueCache", "LossOutput", "MeanAccumulator",
    "NonFiniteGradientWarning", "NonFiniteTrainingError", "PolicyHolder", "StepController", "StepOutcome", "SteppedModule",
    "TokenSelection", "check_clip_norm", "check_loss_output", "compiled_layers_for", "count_real_tokens",
    "forward_logprobs", "forward_trained_logits", "forward_trained_states", "lr_lambda",
    "model_signature", "parameter_groups", "rank_zero_first", "resolve_optimizer_class", "select_trained_tokens",
    "trained_inputs", "warmup_steps_for",
]
