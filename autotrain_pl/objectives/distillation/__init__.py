"""Knowledge and prompt distillation: ``DistillationModule`` and its data, teacher and caches."""

from autotrain_pl.objectives.distillation.data import (
    DistillationCollator,
    DistillationDataModule,
    DistillationDataSpec,
    DistillationPrompts,
    apply_prompt,
    encode_pair,
)
from autotrain_pl.objectives.distillation.kd import KD_LOSSES, TeacherTargets, kd_divergence_sum
from autotrain_pl.objectives.distillation.module import DistillationModule
from autotrain_pl.objectives.distillation.settings import DistillationSettings
from autotrain_pl.objectives.distillation.teacher import Teacher, check_shared_vocabulary
from autotrain_pl.objectives.distillation.teacher_cache import TeacherLogitCache

__all__ = [
    "KD_LOSSES", "DistillationCollator", "DistillationDataModule", "DistillationDataSpec",
    "DistillationModule", "DistillationPrompts", "DistillationSettings", "Teacher",
    "TeacherLogitCache", "TeacherTargets", "apply_prompt", "check_shared_vocabulary",
    "encode_pair", "kd_divergence_sum",
]
