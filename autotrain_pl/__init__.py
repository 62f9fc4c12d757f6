"""autotrain_pl: Lightning-based post-training for language models.

The names a user imports, in one place::

    from autotrain_pl import SFTModule, ChatDataModule, TrainingClient, create_completer
    from autotrain_pl import create_chat_session, train_prompt_distillation

They are imported on first use, so ``import autotrain_pl`` (and ``aitrain --help``) stays fast.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import TYPE_CHECKING

from autotrain_pl.importing import lazy_exports

__version__ = version("autotrain_pl")  # one source of truth: pyproject.toml

_EXPORTS = {
    # objectives
    "ObjectiveModule": "autotrain_pl.objectives",
    "SFTModule": "autotrain_pl.objectives",
    "DistillationModule": "autotrain_pl.objectives",
    "PromptDistillationConfig": "autotrain_pl.objectives.distillation",
    "train_prompt_distillation": "autotrain_pl.objectives.distillation",
    "RewardModule": "autotrain_pl.objectives",
    "LossOutput": "autotrain_pl.training",
    # data
    "ChatDataModule": "autotrain_pl.data",
    # rendering
    "Message": "autotrain_pl.rendering",
    "Conversation": "autotrain_pl.rendering",
    "Renderer": "autotrain_pl.rendering",
    "TrainOnWhat": "autotrain_pl.rendering",
    "get_renderer": "autotrain_pl.rendering",
    "register_renderer": "autotrain_pl.rendering",
    # models
    "load_model": "autotrain_pl.models",
    "load_tokenizer": "autotrain_pl.models",
    "export_model": "autotrain_pl.models",
    "RewardScorer": "autotrain_pl.models",
    # losses
    "get_loss": "autotrain_pl.losses",
    "register_loss": "autotrain_pl.losses",
    "CompositeLoss": "autotrain_pl.losses",
    # generation
    "SamplingConfig": "autotrain_pl.generation",
    "TokenCompleter": "autotrain_pl.generation",
    "MessageCompleter": "autotrain_pl.generation",
    "ChatSession": "autotrain_pl.generation",
    "create_completer": "autotrain_pl.generation",
    "create_chat_session": "autotrain_pl.generation",
    # client
    "TrainingClient": "autotrain_pl.client",
    "AdamParams": "autotrain_pl.client",
    # evaluation
    "Evaluator": "autotrain_pl.evaluation",
    "EvaluationConfig": "autotrain_pl.evaluation",
    # callbacks
    "PeriodicEvalCallback": "autotrain_pl.callbacks",
    "BestModelCallback": "autotrain_pl.callbacks",
    "MetricsLoggerCallback": "autotrain_pl.callbacks",
    "StepControlCallback": "autotrain_pl.callbacks",
    # errors
    "AutotrainError": "autotrain_pl.errors",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # what static checkers and IDEs see; at run time __getattr__ imports lazily
    from autotrain_pl.callbacks import (
        BestModelCallback,
        MetricsLoggerCallback,
        PeriodicEvalCallback,
        StepControlCallback,
    )
    from autotrain_pl.client import AdamParams, TrainingClient
    from autotrain_pl.data import ChatDataModule
    from autotrain_pl.errors import AutotrainError
    from autotrain_pl.evaluation import EvaluationConfig, Evaluator
    from autotrain_pl.generation import (
        ChatSession,
        MessageCompleter,
        SamplingConfig,
        TokenCompleter,
        create_chat_session,
        create_completer,
    )
    from autotrain_pl.losses import CompositeLoss, get_loss, register_loss
    from autotrain_pl.models import RewardScorer, export_model, load_model, load_tokenizer
    from autotrain_pl.objectives import (
        DistillationModule,
        ObjectiveModule,
        RewardModule,
        SFTModule,
    )
    from autotrain_pl.objectives.distillation import (
        PromptDistillationConfig,
        train_prompt_distillation,
    )
    from autotrain_pl.rendering import (
        Conversation,
        Message,
        Renderer,
        TrainOnWhat,
        get_renderer,
        register_renderer,
    )
    from autotrain_pl.training import LossOutput


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
