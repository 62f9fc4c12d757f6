"""Distillation's machinery: settings, teacher/student data, the ``Distiller`` that ``SFTModule``
holds when it distils (``DistillationModule`` lives in ``objectives.sft``), and
``train_prompt_distillation``, the one-call Python helper."""

from autotrain_pl.objectives.distillation.data import (
    DistillationCollator,
    DistillationEncoding,
    DistillationPrompts,
    apply_prompt,
    encode_pair,
)
from autotrain_pl.objectives.distillation.distiller import Distiller, check_shared_vocabulary
from autotrain_pl.objectives.distillation.prompt_distillation import (
    PromptDistillationConfig,
    PromptDistillationResult,
    train_prompt_distillation,
)
from autotrain_pl.objectives.distillation.settings import KD_LOSSES, DistillationSettings

__all__ = [
    "KD_LOSSES", "DistillationCollator", "DistillationEncoding", "DistillationPrompts",
    "DistillationSettings", "Distiller", "PromptDistillationConfig", "PromptDistillationResult",
    "apply_prompt", "check_shared_vocabulary", "encode_pair", "train_prompt_distillation",
]
