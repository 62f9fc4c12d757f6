"""Load models and tokenizers from any reference; LoRA/QLoRA; export."""

from autotrain_pl.models.adapters import LoraOptions, apply_lora
from autotrain_pl.models.builtin import BUILTIN_CONFIGS, is_builtin, materialize_builtin
from autotrain_pl.models.chat import chat_tokenizer, fit_embeddings, resolve_chat_format
from autotrain_pl.models.devices import default_precision, select_accelerator, torch_dtype
from autotrain_pl.models.export import EXPORT_MODES, export_model
from autotrain_pl.models.heads import HEADS, head_of
from autotrain_pl.models.loading import (
    load_model,
    load_tokenizer,
    prepare_for_training,
    resize_embeddings,
)
from autotrain_pl.models.quantization import QuantizationOptions
from autotrain_pl.models.references import ResolvedModel, resolve_model_ref
from autotrain_pl.models.reward import RewardScorer

__all__ = [
    "BUILTIN_CONFIGS", "EXPORT_MODES", "HEADS", "LoraOptions", "QuantizationOptions",
    "ResolvedModel", "RewardScorer", "head_of",
    "apply_lora", "chat_tokenizer", "default_precision", "export_model", "fit_embeddings",
    "is_builtin", "load_model", "load_tokenizer", "materialize_builtin", "prepare_for_training",
    "resize_embeddings", "resolve_chat_format", "resolve_model_ref", "select_accelerator",
    "torch_dtype",
]
