"""``load_model`` and ``load_tokenizer``: one entry point for every model reference.

The same options work for every source: dtype, attention implementation, gradient
checkpointing, 4-bit/8-bit quantization and LoRA. ``trust_remote_code`` defaults to False.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from autotrain_pl.errors import AutotrainError
from autotrain_pl.models.adapters import LoraOptions, apply_lora
from autotrain_pl.models.devices import torch_dtype
from autotrain_pl.models.heads import (
    auto_model_class,
    check_head,
    head_load_options,
    quiet_new_head_report,
)
from autotrain_pl.models.quantization import QuantizationOptions
from autotrain_pl.models.references import adapter_base_ref, resolve_model_ref

log = logging.getLogger(__name__)
#: Sources already warned about: a run loads the tokenizer, the model and maybe a reference copy.
_WARNED_REMOTE_CODE: set[str] = set()


def warn_remote_code(source: str, trust_remote_code: bool) -> None:
    """With ``trust_remote_code``, say whose code runs: the Python files in that repository or
    directory run in this process with the user's rights (once per source)."""
    if not trust_remote_code or source in _WARNED_REMOTE_CODE:
        return
    _WARNED_REMOTE_CODE.add(source)
    log.warning("trust_remote_code=true: the Python code in %r will run on this machine with "
                "your rights; use it only for a repository you trust", source)


def load_tokenizer(ref: str, *, trust_remote_code: bool = False):
    """Load the tokenizer of a model reference; pad falls back to EOS when the model has none."""
    from transformers import AutoTokenizer

    resolved = resolve_model_ref(ref)
    warn_remote_code(resolved.source, trust_remote_code)
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            resolved.source, trust_remote_code=trust_remote_code
        )
    except OSError as error:
        raise AutotrainError(f"could not load a tokenizer from {ref!r}: {_first_line(error)}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _as_options(value: Any, cls: type) -> Any:
    if value is None or isinstance(value, cls):
        return value
    if isinstance(value, Mapping):
        return cls(**value)
    raise AutotrainError(f"expected a mapping for {cls.__name__}, got {type(value).__name__}")


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def load_model(
    ref: str,
    *,
    dtype: str | None = "float32",
    attn_implementation: str | None = None,
    trust_remote_code: bool = False,
    quantization: QuantizationOptions | Mapping | None = None,
    vocab_size: int | None = None,
    device_map: str | dict | None = None,
    gradient_checkpointing: bool = False,
    lora: LoraOptions | Mapping | None = None,
    head: str = "lm",
):
    """Load a causal LM (or a reward model) from any reference, optionally quantized; for
    training, prepare it too.

    Loading and preparing are separate steps (``prepare_for_training``): a frozen model (a
    teacher, a reference) loads quantized or not with nothing trained on it. ``lora`` and
    ``gradient_checkpointing`` here are a shortcut for ``prepare_for_training(load_model(...))``.

    Args:
        ref: ``builtin:<name>``, a local HF directory, an autotrain_pl run/export directory
            (full, merged or adapter-only), or a hub id.
        dtype: weight dtype (``float32``, ``bfloat16``, ``float16``, ``auto``).
        attn_implementation: ``sdpa``, ``eager``, ``flash_attention_2``... (None: transformers'
            default).
        trust_remote_code: allow model code from the hub (off by default).
        quantization: 4-bit/8-bit bitsandbytes loading; to train such a model, give ``lora``.
        vocab_size: resize the input/output embeddings to this size (after adding special tokens
            to the tokenizer).
        device_map: passed to ``from_pretrained`` (quantized models need the target device).
        gradient_checkpointing: see ``prepare_for_training``.
        lora: see ``prepare_for_training``; the returned model is then a ``PeftModel``.
        head: ``lm`` (``AutoModelForCausalLM``) or ``reward``: ``AutoModelForSequenceClassification``
            with one label on the same base, whose ``score`` head is new unless ``ref`` is a reward
            model already (``models.heads``). Set ``config.pad_token_id`` before batched use: the
            score is read at the last token that is not padding.
    """
    check_head(head)
    quantization = _as_options(quantization, QuantizationOptions)
    resolved = resolve_model_ref(ref)
    exported_head = (resolved.metadata or {}).get("head", "lm")
    if head == "lm" and exported_head != "lm":
        raise AutotrainError(f"{ref!r} is a {exported_head} model, not a language model; load it "
                             f"with head={exported_head!r} (e.g. autotrain_pl.models.RewardScorer)")
    if resolved.is_adapter:
        if quantization is not None:
            raise AutotrainError(f"{ref!r} is an adapter export, which cannot load quantized; "
                                 "export it merged (export_mode: merged) or drop quantization")
        model = _load_adapter_export(resolved.source, dtype=dtype, lora_trainable=lora is not None,
                                     head=head, attn_implementation=attn_implementation,
                                     trust_remote_code=trust_remote_code)
        return prepare_for_training(model, gradient_checkpointing=gradient_checkpointing)
    warn_remote_code(resolved.source, trust_remote_code)
    kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if dtype is not None:
        kwargs["dtype"] = torch_dtype(dtype) if dtype != "auto" else "auto"
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    if quantization is not None:
        kwargs["quantization_config"] = quantization.to_bnb_config()
        kwargs["device_map"] = device_map or "cpu"
    elif device_map is not None:
        kwargs["device_map"] = device_map
    kwargs.update(head_load_options(head))
    try:
        with quiet_new_head_report(head):
            model = auto_model_class(head).from_pretrained(resolved.source, **kwargs)
    except OSError as error:
        raise AutotrainError(f"could not load model {ref!r}: {_first_line(error)}") from None
    if vocab_size is not None:
        resize_embeddings(model, vocab_size)
    if lora is None and not gradient_checkpointing:
        return model
    return prepare_for_training(model, lora=lora, gradient_checkpointing=gradient_checkpointing)


def prepare_for_training(model, *, lora: LoraOptions | Mapping | None = None,
                         gradient_checkpointing: bool = False):
    """Make a loaded model trainable: activation checkpointing, and a LoRA adapter (QLoRA on a
    quantized base, which cannot be trained without one)."""
    lora = _as_options(lora, LoraOptions)
    quantized = bool(getattr(model, "is_quantized", False))
    if gradient_checkpointing:
        # transformers 5.x renamed it (the old name warns and goes in v6); 4.x has only the old.
        enable = getattr(model, "activation_checkpointing_enable", None)
        if enable is not None:
            enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    if lora is not None:
        return apply_lora(model, lora, quantized=quantized,
                          gradient_checkpointing=gradient_checkpointing)
    if quantized:
        raise AutotrainError(
            "quantization without LoRA cannot be trained; set lora (QLoRA) or drop quantization"
        )
    return model


def resize_embeddings(model, vocab_size: int) -> bool:
    """Grow the embeddings to ``vocab_size`` (new rows get the mean embedding). True if resized."""
    import torch

    current = model.get_input_embeddings().weight.shape[0]
    if vocab_size <= current:
        return False
    # The exact mean, not transformers' mean_resizing (a random draw around it): a policy and a
    # frozen copy of it (DPO's reference) must get the same new rows, in every run.
    model.resize_token_embeddings(vocab_size, mean_resizing=False)
    with torch.no_grad():
        for layer in (model.get_input_embeddings(), model.get_output_embeddings()):
            if layer is not None and layer.weight.shape[0] == vocab_size:
                layer.weight[current:] = layer.weight[:current].mean(0)
    return True


def _load_adapter_export(adapter_dir: str, *, dtype, lora_trainable: bool, head: str = "lm",
                         **options):
    """Rebuild base + adapter: the base comes from the reference recorded at export."""
    from peft import PeftModel
    from transformers import GenerationConfig

    base_ref = adapter_base_ref(adapter_dir)
    tokenizer = load_tokenizer(adapter_dir)
    base = load_model(base_ref, dtype=dtype, vocab_size=len(tokenizer), head=head, **options)
    if head == "lm" and (Path(adapter_dir) / "generation_config.json").exists():  # stop tokens
        base.generation_config = GenerationConfig.from_pretrained(adapter_dir)
    return PeftModel.from_pretrained(base, adapter_dir, is_trainable=lora_trainable)
