"""Export a trained model as a plain Hugging Face directory that any tool can load.

The directory holds the weights (full, adapter only, or adapter merged into the base), the
tokenizer with a ``chat_template`` equivalent to the training renderer, and ``autotrain.json``
naming the renderer and the resolved run config, so completers and evaluators need no flags.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from autotrain_pl.errors import AutotrainError
from autotrain_pl.models.references import EXPORT_METADATA

EXPORT_MODES = ("full", "adapter", "merged")


def _is_peft(model) -> bool:
    from peft import PeftModel

    return isinstance(model, PeftModel)


def export_model(
    model,
    tokenizer,
    out_dir: str | Path,
    *,
    mode: str = "merged",
    renderer=None,
    base_model: str | None = None,
    run_config: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` and ``tokenizer`` to ``out_dir``; returns the directory.

    Args:
        mode: ``full`` saves all weights (for a LoRA model: the merged weights, same as
            ``merged``), ``adapter`` saves only the peft adapter, ``merged`` folds the adapter in.
        renderer: the training renderer; its name and chat template are saved with the tokenizer.
        base_model: the reference trained from, so an adapter export can rebuild its base.
        run_config: the resolved config of the run, for reproducibility.
    """
    if mode not in EXPORT_MODES:
        raise AutotrainError(f"export_mode={mode!r} is not known; use one of {', '.join(EXPORT_MODES)}")
    out = Path(out_dir)
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    if _is_peft(model) and mode == "adapter":
        model.save_pretrained(staging)
    elif _is_peft(model):
        _merged_copy(model).save_pretrained(staging)
    else:
        model.save_pretrained(staging)
    if renderer is not None:
        tokenizer.chat_template = renderer.chat_template()
    tokenizer.save_pretrained(staging)
    metadata = {
        "format_version": 1,
        "renderer": getattr(renderer, "name", None),
        "export_mode": mode if _is_peft(model) else "full",
        "base_model": base_model,
        "vocab_size": len(tokenizer),
        "run_config": run_config or {},
    }
    (staging / EXPORT_METADATA).write_text(json.dumps(metadata, indent=2, default=str))
    shutil.rmtree(out, ignore_errors=True)  # replace atomically-enough: the old export stays until now
    staging.rename(out)
    return out


def _merged_copy(peft_model):
    """Merge the adapter into a copy of the base, leaving the training model untouched.

    A quantized base cannot hold merged weights exactly, so it is merged into a full-precision
    copy of the base rebuilt from its reference.
    """
    import copy

    if getattr(peft_model.base_model.model, "is_quantized", False) or getattr(
        peft_model.config, "quantization_config", None
    ):
        return _merge_into_full_precision(peft_model)
    return copy.deepcopy(peft_model).merge_and_unload()


def _merge_into_full_precision(peft_model):
    import torch
    from peft import get_peft_model_state_dict, set_peft_model_state_dict

    from autotrain_pl.models.loading import load_model

    base_ref = getattr(peft_model, "autotrain_base_ref", None)
    if base_ref is None:
        raise AutotrainError(
            "merging a quantized model needs its base reference; use export_mode=adapter"
        )
    adapter_config = peft_model.peft_config["default"]
    vocab = peft_model.get_input_embeddings().weight.shape[0]
    full = load_model(base_ref, dtype="float32", vocab_size=vocab, lora={
        "r": adapter_config.r, "alpha": adapter_config.lora_alpha, "dropout": 0.0,
        "target_modules": sorted(adapter_config.target_modules),
    })
    with torch.no_grad():
        set_peft_model_state_dict(full, get_peft_model_state_dict(peft_model))
    return full.merge_and_unload()
