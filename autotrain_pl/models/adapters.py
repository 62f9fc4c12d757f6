"""LoRA adapters through ``peft`` (QLoRA when the base model is 4-bit or 8-bit).

A reward model (``models.heads``) gets peft's ``SEQ_CLS`` task: its ``score`` head trains in full
and "all-linear" leaves it out of the LoRA targets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from autotrain_pl.errors import AutotrainError
from autotrain_pl.models.heads import CLASSIFIER_MODULES, PEFT_TASK_TYPES, head_of


@dataclass
class LoraOptions:
    """LoRA settings. ``target_modules="all-linear"`` adapts every linear layer but the LM head.

    Args:
        r: adapter rank.
        alpha: scaling numerator; the update is scaled by ``alpha / r``.
        dropout: dropout on the adapter input.
        target_modules: module names, or ``"all-linear"``.
        modules_to_save: extra modules trained in full and saved with the adapter (for example
            ``embed_tokens`` and ``lm_head`` when special tokens were added).
    """

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] | str = "all-linear"
    bias: str = "none"
    modules_to_save: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if isinstance(self.r, bool) or not isinstance(self.r, int) or self.r < 1:
            raise AutotrainError(f"lora.r={self.r!r} must be an integer >= 1 (e.g. 16)")
        if isinstance(self.alpha, bool) or not 0 < self.alpha < float("inf"):  # NaN fails too
            raise AutotrainError(f"lora.alpha={self.alpha!r} must be > 0 (e.g. 2 * r); the update "
                                 "is scaled by alpha / r")
        if not 0.0 <= self.dropout < 1.0:
            raise AutotrainError(f"lora.dropout={self.dropout} must be in [0, 1)")


def apply_lora(model, options: LoraOptions, *, quantized: bool = False, gradient_checkpointing: bool = False):
    """Wrap ``model`` in a ``PeftModel``; for quantized bases prepare k-bit training first."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    head = head_of(model)
    modules_to_save = list(options.modules_to_save)
    if head == "reward":  # peft adds the classifier names to modules_to_save itself
        modules_to_save = [m for m in modules_to_save if m not in CLASSIFIER_MODULES]
    if quantized:
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=gradient_checkpointing
        )
    config = LoraConfig(
        r=options.r,
        lora_alpha=options.alpha,
        lora_dropout=options.dropout,
        target_modules=options.target_modules,
        bias=options.bias,
        modules_to_save=modules_to_save or None,
        task_type=PEFT_TASK_TYPES[head],
    )
    return get_peft_model(model, config)
