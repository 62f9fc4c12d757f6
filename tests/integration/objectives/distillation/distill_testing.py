"""Helpers of the distillation integration tests (imported by conftest and the tests)."""

import re
from dataclasses import dataclass
from pathlib import Path

import lightning as L

from autotrain_pl.generation import MessageCompleter, SamplingConfig
from autotrain_pl.rendering import Message, get_renderer

INSTRUCTION = "Wrap the answer in << and >>."
WRAPPED = re.compile(r"^<<.*>>$")


def quiet_trainer(root, max_steps: int = -1, **kwargs) -> L.Trainer:
    options = {"accelerator": "cpu", "logger": False, "enable_checkpointing": False,
               "enable_progress_bar": False, "enable_model_summary": False,
               "num_sanity_val_steps": 0, **kwargs}
    return L.Trainer(max_steps=max_steps, default_root_dir=root, **options)


def wrap_rate(model, tokenizer, questions, system: str | None = None) -> float:
    """Share of greedy replies shaped ``<<...>>``."""
    completer = MessageCompleter(model, tokenizer, get_renderer("auto", tokenizer))
    prefix = [Message("system", system)] if system else []
    was_training = model.training
    model.eval()
    replies = completer.batch_complete([prefix + [Message("user", q)] for q in questions],
                                       SamplingConfig(max_new_tokens=10, temperature=0.0))
    model.train(was_training)
    return sum(bool(WRAPPED.match(r.content)) for r in replies) / len(replies)


@dataclass
class WrapTeacher:
    export: Path           # the trained teacher, exported
    prompts: Path          # user questions only, without the instruction
    answers: Path          # the same questions with plain replies
    questions: list[str]   # held-out questions
    rate_with: float       # teacher wrap rate with the instruction
    rate_without: float    # ... and without it
