"""Distillation options, checked before any model loads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from autotrain_pl.errors import AutotrainError
from autotrain_pl.generation import SamplingConfig
from autotrain_pl.models import QuantizationOptions
from autotrain_pl.objectives.distillation.data import DistillationPrompts, check_template

RESPONSE_SOURCES = ("auto", "dataset", "teacher", "on_policy")
KD_LOSSES = ("forward_kl", "reverse_kl", "jsd")
TEACHER_CACHES = ("none", "disk")
#: k used when ``teacher_cache: disk`` is set without ``kd_top_k``.
DEFAULT_CACHE_TOP_K = 32
#: Names of the seed project (``autotrain`` LLM params) accepted in the ``distillation`` mapping.
SEED_ALIASES = {"distill_temperature": "temperature", "distill_alpha": "alpha"}


def check_kd_loss(kd_loss: str, beta: float) -> None:
    """Validate the KD choice before any model loads."""
    if kd_loss not in KD_LOSSES:
        raise AutotrainError(f"model.kd_loss={kd_loss!r} is unknown; use one of {KD_LOSSES}")
    if isinstance(beta, bool) or not 0.0 <= beta <= 1.0:
        raise AutotrainError(f"model.beta={beta!r} must lie in [0, 1] (0: forward KL, 1: reverse KL)")


@dataclass(frozen=True)
class DistillationSettings:
    """The distillation options of ``DistillationModule`` (see its docstring for each)."""

    teacher_model: str | None = None
    temperature: float = 3.0
    alpha: float = 0.7
    kd_loss: str = "forward_kl"
    beta: float = 0.5
    teacher_prompt_template: str = "{input}"
    student_prompt_template: str = "{input}"
    teacher_system_prompt: str | None = None
    student_system_prompt: str | None = None
    response_source: str = "auto"
    lmbda: float = 0.5
    #: Teacher replies are training targets: a cut reply teaches the student to stop mid-answer.
    #: Generation stops at the end of turn, so short replies cost nothing extra.
    distill_max_teacher_length: int = 512
    teacher_sampling: dict[str, Any] | None = None
    student_sampling: dict[str, Any] | None = None
    kd_top_k: int | None = None
    teacher_cache: str = "none"
    teacher_cache_dir: str | None = None
    teacher_dtype: str | None = None
    teacher_device: str | None = None
    teacher_quantization: QuantizationOptions | None = None

    def __post_init__(self) -> None:
        if not self.teacher_model or not isinstance(self.teacher_model, str):
            raise AutotrainError("model.teacher_model is not set; name the teacher (e.g. "
                                 "builtin:mini or Qwen/Qwen2.5-1.5B-Instruct)")
        if isinstance(self.temperature, bool) or not 0 < self.temperature < float("inf"):
            raise AutotrainError(f"model.temperature={self.temperature!r} must be > 0 (e.g. 3.0)")
        if isinstance(self.alpha, bool) or not 0.0 <= self.alpha <= 1.0:
            raise AutotrainError(f"model.alpha={self.alpha!r} must lie in [0, 1] (weight of KD)")
        check_kd_loss(self.kd_loss, self.beta)
        check_template("teacher_prompt_template", self.teacher_prompt_template)
        check_template("student_prompt_template", self.student_prompt_template)
        if self.response_source not in RESPONSE_SOURCES:
            raise AutotrainError(f"model.response_source={self.response_source!r} is unknown; "
                                 f"use one of {RESPONSE_SOURCES}")
        if isinstance(self.lmbda, bool) or not 0.0 <= self.lmbda <= 1.0:
            raise AutotrainError(f"model.lmbda={self.lmbda!r} must lie in [0, 1] (share of "
                                 "on-policy batches)")
        if not isinstance(self.distill_max_teacher_length, int) or self.distill_max_teacher_length < 1:
            raise AutotrainError(f"model.distill_max_teacher_length={self.distill_max_teacher_length!r}"
                                 " must be a positive number of tokens")
        if self.teacher_cache not in TEACHER_CACHES:
            raise AutotrainError(f"model.teacher_cache={self.teacher_cache!r} is unknown; use "
                                 f"one of {TEACHER_CACHES}")
        if self.kd_top_k is not None and (isinstance(self.kd_top_k, bool)
                                          or not isinstance(self.kd_top_k, int) or self.kd_top_k < 1):
            raise AutotrainError(f"model.kd_top_k={self.kd_top_k!r} must be a positive integer")
        if self.teacher_cache == "disk" and self.kd_top_k is None:
            object.__setattr__(self, "kd_top_k", DEFAULT_CACHE_TOP_K)
        if isinstance(self.teacher_quantization, Mapping):
            object.__setattr__(self, "teacher_quantization",
                               QuantizationOptions(**self.teacher_quantization))
        self.sampling("teacher")
        self.sampling("student")

    @property
    def prompts(self) -> DistillationPrompts:
        return DistillationPrompts(self.teacher_prompt_template, self.student_prompt_template,
                                   self.teacher_system_prompt, self.student_system_prompt)

    def sampling(self, who: str) -> SamplingConfig:
        """Teacher replies: greedy by default; on-policy student samples: temperature 1."""
        defaults: dict[str, Any] = {"max_new_tokens": self.distill_max_teacher_length, "seed": 0,
                                    "temperature": 0.0 if who == "teacher" else 1.0}
        given = getattr(self, f"{who}_sampling") or {}
        try:
            return SamplingConfig(**{**defaults, **given})
        except TypeError as error:
            names = ", ".join(f.name for f in fields(SamplingConfig))
            raise AutotrainError(f"model.{who}_sampling: {error}; keys are: {names}") from None
        except AutotrainError as error:  # "sampling.top_p=5 ...": name the option it came from
            text = str(error)
            raise AutotrainError(f"model.{who}_{text}" if text.startswith("sampling.") else
                                 f"model.{who}_sampling: {text}") from None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def merge_options(explicit: dict[str, Any], defaults: Mapping[str, Any],
                  overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Apply the ``distillation`` mapping (the ``use_distillation`` switch of SFT) on top.

    A key set both ways to different non-default values is an error rather than a silent pick.
    """
    merged = dict(explicit)
    for key, value in (overrides or {}).items():
        name = SEED_ALIASES.get(key, key)
        if name not in merged:
            known = ", ".join(sorted(merged))
            raise AutotrainError(f"model.distillation.{key} is not a distillation option; use "
                                 f"one of: {known}")
        if merged[name] != defaults[name] and merged[name] != value:
            raise AutotrainError(f"model.{name} is set twice ({merged[name]!r} and "
                                 f"distillation.{key}={value!r}); keep one")
        merged[name] = value
    return merged
