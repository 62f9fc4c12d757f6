"""Export a trained model as a plain Hugging Face directory that any tool can load.

The directory holds the weights (full, adapter only, or adapter merged into the base), the
tokenizer with the training renderer's ``chat_template``, and ``autotrain.json`` naming the
renderer and the resolved run config, so completers and evaluators need no flags.

An export stops where training taught it to, outside our code too. Serving stacks (transformers'
``generate``, vLLM, TGI) stop at ``generation_config.eos_token_id`` and the tokenizer's
``eos_token``, not at a chat format's end-of-turn token. So the export writes the format's
end-of-turn token(s) and the tokenizer's EOS as the ``eos_token_id`` list, with ``pad_token_id``,
and sets the tokenizer's ``eos_token`` as the family's official instruct models do (ChatML:
``<|im_end|>``, Llama 3: ``<|eot_id|>``). An adapter export carries the same files, but
transformers and vLLM read the *base* model's generation config when they load an adapter: pass
``generation_config=GenerationConfig.from_pretrained(export)``, or export ``merged`` for serving.

A reward model (``models.heads``) exports as a plain ``AutoModelForSequenceClassification``
directory: no generation config (it does not generate), ``pad_token_id`` in ``config.json`` (the
score is read at the last token that is not padding) and ``"head": "reward"`` in
``autotrain.json``.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

from autotrain_pl.errors import AutotrainError
from autotrain_pl.models.heads import CLASSIFIER_MODULES, head_of
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
    out = Path(out_dir).expanduser()
    check_replaceable(out)
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
        tokenizer = serving_tokenizer(tokenizer, renderer)
        write_stop_tokens(staging, model, tokenizer, renderer)
    tokenizer.save_pretrained(staging)
    metadata = {
        "format_version": 1,
        "renderer": getattr(renderer, "name", None),
        "export_mode": mode if _is_peft(model) else "full",
        "base_model": base_model,
        "head": head_of(model),
        "vocab_size": len(tokenizer),
        "run_config": run_config or {},
    }
    (staging / EXPORT_METADATA).write_text(json.dumps(metadata, indent=2, default=str))
    shutil.rmtree(out, ignore_errors=True)  # replace atomically-enough: the old export stays until now
    staging.rename(out)
    return out


def check_replaceable(out: Path) -> None:
    """An export replaces what is at ``out``: only an earlier export, or an empty folder.

    A mistyped path (``.``, the home folder, a data folder) must never be deleted to make room.
    """
    resolved = out.resolve()
    if not resolved.name or resolved == Path.home().resolve():
        raise AutotrainError(f"cannot export to {out}: give a folder of its own, e.g. runs/my-run/export")
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise AutotrainError(f"cannot export to {out}: it is a file or a link, not a folder; "
                             "give a new folder")
    if out.is_dir() and any(out.iterdir()) and not (out / EXPORT_METADATA).is_file():
        raise AutotrainError(
            f"cannot export to {out}: the folder holds files but no earlier export "
            f"({EXPORT_METADATA}), and an export replaces the whole folder; give a new or empty one"
        )


def serving_tokenizer(tokenizer, renderer):
    """A copy of ``tokenizer`` with the renderer's chat template and its family's ``eos_token``;
    the training tokenizer is left as it was."""
    exported = copy.deepcopy(tokenizer)
    exported.chat_template = renderer.chat_template()
    if renderer.instruct_eos_token is not None:
        renderer.token_id(renderer.instruct_eos_token)  # a clear error if the token is missing
        exported.eos_token = renderer.instruct_eos_token
    return exported


def stop_token_ids(tokenizer, renderer) -> list[int]:
    """The format's single-token stops first, then the tokenizer's EOS (each once)."""
    ids = [*renderer.stop_token_ids(), renderer.tokenizer.eos_token_id, tokenizer.eos_token_id]
    return list(dict.fromkeys(i for i in ids if i is not None))


def write_stop_tokens(directory: Path, model, tokenizer, renderer) -> None:
    """Record where a reply ends in ``generation_config.json`` (and ``config.json``, if any)."""
    from transformers import AutoConfig

    stops = stop_token_ids(tokenizer, renderer)
    base = model.get_base_model() if _is_peft(model) else model
    if getattr(base, "generation_config", None) is not None:  # a reward model has none
        generation = copy.deepcopy(base.generation_config)
        generation.eos_token_id = stops
        generation.pad_token_id = tokenizer.pad_token_id
        generation.bos_token_id = tokenizer.bos_token_id
        generation._from_model_config = False  # else generate() rebuilds it from config.json
        generation.save_pretrained(directory)
    if (directory / "config.json").exists():
        config = AutoConfig.from_pretrained(directory)
        config.eos_token_id = tokenizer.eos_token_id
        config.pad_token_id = tokenizer.pad_token_id
        config.save_pretrained(directory)


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
    saved = [m for m in adapter_config.modules_to_save or [] if m not in CLASSIFIER_MODULES]
    full = load_model(base_ref, dtype="float32", vocab_size=vocab, head=head_of(peft_model), lora={
        "r": adapter_config.r, "alpha": adapter_config.lora_alpha, "dropout": 0.0,
        "target_modules": sorted(adapter_config.target_modules),
        "modules_to_save": sorted(set(saved)),
    })
    with torch.no_grad():
        set_peft_model_state_dict(full, get_peft_model_state_dict(peft_model))
    return full.merge_and_unload()
