"""``train_prompt_distillation``: prompt distillation in one Python call, as the guide writes it.

    config = PromptDistillationConfig(
        teacher_model_name="Qwen/Qwen2.5-1.5B-Instruct",
        teacher_prompt_template="You are an expert. Think step by step.\\n\\nQuery: {input}",
        student_model_name="Qwen/Qwen2.5-0.5B-Instruct",
    )
    result = train_prompt_distillation(config, base_inputs=queries, output_dir="runs/distilled")
    result.export_dir        # runs/distilled/export: a plain Hugging Face model directory

No second training loop: the prompts are written to ``<output_dir>/data/train.jsonl`` as
prompt-only chat rows, and the run is the one ``aitrain fit`` makes of a ``DistillationModule``
on a ``ChatDataModule``. The teacher writes the replies behind its prompt template (generated
once, cached under ``<output_dir>/teacher_cache``), the student learns them behind its own
template, and the loss is ``alpha * T**2 * KL(teacher || student) + (1 - alpha) * CE`` (see
``objectives.sft.DistillationModule``). ``metrics.jsonl``, CSV logs and the export land in
``output_dir``, as for a fit.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autotrain_pl.errors import AutotrainError
from autotrain_pl.objectives.distillation.data import INPUT_PLACEHOLDER

log = logging.getLogger(__name__)


@dataclass
class PromptDistillationConfig:
    """What ``train_prompt_distillation`` trains; field names follow the aitraining guide.

    Attributes:
        teacher_model_name: the teacher reference (hub id, directory, ``builtin:<name>``); it
            must share the student's tokenizer vocabulary.
        student_model_name: the trained model.
        teacher_prompt_template: the teacher's user message; ``{input}`` is the input.
        student_prompt_template: the student's; ``"{input}"`` (or ``""``): the bare input.
        teacher_system_prompt, student_system_prompt: optional system messages.
        temperature: softening temperature T of both distributions.
        alpha: weight of the KD term; ``1 - alpha`` weights cross-entropy on the replies.
        max_teacher_length: most tokens per teacher reply (longer ones are dropped).
        num_samples: use only the first N inputs (None: all).
        num_epochs: passes over the inputs (ignored when ``max_steps`` is set).
        max_steps: optimizer steps to train for (None: ``num_epochs``).
        batch_size: samples per optimizer step.
        learning_rate: peak learning rate (cosine schedule after ``warmup_ratio``).
        warmup_ratio: linear warmup as a share of the steps.
        lr_scheduler: ``cosine``, ``linear`` or ``constant``.
        use_peft: train a LoRA adapter (``lora_r``, ``lora_alpha``, ``lora_dropout``), merged
            into the export.
        chat_format: renderer of both models (``auto``: the tokenizer's template, else ChatML).
        max_length: longest prompt plus reply, in tokens.
        seed: seeds Lightning, the data order and the teacher's (greedy) generation.
        accelerator: ``auto``, ``cpu``, ``cuda``, ``mps``.
        precision: Lightning precision (None: the device's default, as ``aitrain fit``).
        enable_progress_bar: show the progress bar and model summary.
    """

    teacher_model_name: str
    student_model_name: str
    teacher_prompt_template: str = INPUT_PLACEHOLDER
    student_prompt_template: str = INPUT_PLACEHOLDER
    teacher_system_prompt: str | None = None
    student_system_prompt: str | None = None
    temperature: float = 3.0
    alpha: float = 0.7
    max_teacher_length: int = 512
    num_samples: int | None = None
    num_epochs: int = 3
    max_steps: int | None = None
    batch_size: int = 4
    learning_rate: float = 2e-4
    warmup_ratio: float = 0.0
    lr_scheduler: str = "cosine"
    use_peft: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    chat_format: str = "auto"
    max_length: int = 1024
    seed: int = 42
    accelerator: str = "auto"
    precision: str | None = None
    enable_progress_bar: bool = True

    def __post_init__(self) -> None:
        for name in ("teacher_model_name", "student_model_name"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                raise AutotrainError(f"PromptDistillationConfig.{name} must name a model")
        if self.student_prompt_template == "":
            self.student_prompt_template = INPUT_PLACEHOLDER  # the guide's "no prompt"
        for name in ("num_samples", "max_steps"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise AutotrainError(f"PromptDistillationConfig.{name}={value!r} must be a "
                                     "positive integer or None")
        for name in ("num_epochs", "batch_size", "max_length", "max_teacher_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise AutotrainError(f"PromptDistillationConfig.{name}={value!r} must be a "
                                     "positive integer")


@dataclass
class PromptDistillationResult:
    """What a ``train_prompt_distillation`` run produced.

    Attributes:
        export_dir: ``<output_dir>/export``, the distilled student as a Hugging Face directory.
        metrics: the run's final logged values (``train/loss_epoch``, ``train/loss_kd``...).
        steps: optimizer steps trained.
        num_examples: prompts the student trained on (teacher replies that were cut are
            dropped).
        metrics_path: ``<output_dir>/metrics.jsonl``, every logged value by step.
    """

    export_dir: Path
    metrics: dict[str, float] = field(default_factory=dict)
    steps: int = 0
    num_examples: int = 0
    metrics_path: Path | None = None

    @property
    def train_loss(self) -> float:
        """The last epoch's mean training loss (NaN when none was logged)."""
        for key in ("train/loss_epoch", "train/loss", "train/loss_step"):
            if key in self.metrics:
                return self.metrics[key]
        return math.nan


def _rows(inputs: Any, name: str) -> list[dict[str, Any]]:
    if isinstance(inputs, str) or not isinstance(inputs, list | tuple) or not inputs:
        raise AutotrainError(f"{name} must be a non-empty list of input strings")
    bad = [i for i, text in enumerate(inputs) if not isinstance(text, str) or not text.strip()]
    if bad:
        raise AutotrainError(f"{name}[{bad[0]}] is not a non-empty string; pass the inputs as "
                             "text (each fills the templates' {input})")
    return [{"messages": [{"role": "user", "content": text}]} for text in inputs]


def train_prompt_distillation(
    config: PromptDistillationConfig,
    base_inputs: list[str],
    output_dir: str | Path,
    validation_inputs: list[str] | None = None,
) -> PromptDistillationResult:
    """Distil the teacher-with-its-prompt into the student-without-it (module docstring).

    Args:
        config: models, templates and training settings.
        base_inputs: the inputs (questions, queries...) that fill ``{input}``.
        output_dir: the run directory: data, teacher cache, logs, ``metrics.jsonl``, ``export/``.
        validation_inputs: optional held-out inputs; the teacher answers them too and the
            validation loss is logged as ``val/loss``.
    """
    import lightning as L
    from lightning.pytorch.loggers import CSVLogger

    from autotrain_pl.callbacks.metrics_logger import MetricsLoggerCallback
    from autotrain_pl.callbacks.model_summary import AutotrainModelSummary
    from autotrain_pl.callbacks.progress import AutotrainProgressBar
    from autotrain_pl.data import ChatDataModule, write_jsonl
    from autotrain_pl.models import LoraOptions
    from autotrain_pl.models.devices import default_precision, select_accelerator
    from autotrain_pl.objectives.sft import DistillationModule

    if not isinstance(config, PromptDistillationConfig):
        raise AutotrainError("train_prompt_distillation needs a PromptDistillationConfig")
    rows = _rows(list(base_inputs)[: config.num_samples] if isinstance(base_inputs, list | tuple)
                 else base_inputs, "base_inputs")
    root = Path(output_dir).expanduser()
    train_path = write_jsonl(rows, root / "data" / "train.jsonl")
    valid_path = None
    if validation_inputs is not None:
        valid_path = str(write_jsonl(_rows(validation_inputs, "validation_inputs"),
                                     root / "data" / "valid.jsonl"))
    L.seed_everything(config.seed)
    lora = (LoraOptions(r=config.lora_r, alpha=config.lora_alpha, dropout=config.lora_dropout)
            if config.use_peft else None)
    module = DistillationModule(
        config.student_model_name, teacher_model=config.teacher_model_name,
        temperature=config.temperature, alpha=config.alpha,
        teacher_prompt_template=config.teacher_prompt_template,
        student_prompt_template=config.student_prompt_template,
        teacher_system_prompt=config.teacher_system_prompt,
        student_system_prompt=config.student_system_prompt,
        response_source="teacher", distill_max_teacher_length=config.max_teacher_length,
        teacher_sampling={"seed": config.seed}, learning_rate=config.learning_rate,
        warmup_ratio=config.warmup_ratio, lr_scheduler=config.lr_scheduler, lora=lora,
    )
    data = ChatDataModule(str(train_path), valid_path=valid_path,
                          tokenizer=config.student_model_name, chat_format=config.chat_format,
                          batch_size=config.batch_size, max_length=config.max_length,
                          seed=config.seed)
    accelerator = select_accelerator(config.accelerator)
    callbacks = [MetricsLoggerCallback()]
    if config.enable_progress_bar:
        callbacks += [AutotrainProgressBar(), AutotrainModelSummary()]
    trainer = L.Trainer(
        default_root_dir=str(root), accelerator=accelerator,
        precision=config.precision or default_precision(accelerator),
        max_steps=config.max_steps or -1,
        max_epochs=-1 if config.max_steps else config.num_epochs,
        logger=CSVLogger(str(root), name="logs"), callbacks=callbacks, log_every_n_steps=1,
        enable_checkpointing=False, enable_progress_bar=config.enable_progress_bar,
        enable_model_summary=config.enable_progress_bar, num_sanity_val_steps=0,
    )
    trainer.fit(module, datamodule=data)
    metrics = {key: float(value) for key, value in trainer.callback_metrics.items()
               if getattr(value, "numel", lambda: 1)() == 1}
    result = PromptDistillationResult(
        export_dir=module.export_dir(), metrics=metrics, steps=trainer.global_step,
        num_examples=len(data.train_dataset) if data.train_dataset is not None else 0,
        metrics_path=callbacks[0].metrics_path(trainer),
    )
    log.info("prompt distillation: %d steps on %d teacher replies, train loss %.4f; exported "
             "to %s", result.steps, result.num_examples, result.train_loss, result.export_dir)
    return result
