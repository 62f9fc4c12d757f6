"""Conversions of the guide's flag values into ours (``fp16`` -> ``16-mixed``, ``int4`` -> 4-bit
quantization, ...). Each raises ``ValueError`` with the reason; the caller names the flag."""

from __future__ import annotations

import re
from typing import Any

from autotrain_pl.llm.spec import optional_text

PRECISIONS = {"fp16": "16-mixed", "bf16": "bf16-mixed", "fp32": "32-true", "no": "32-true",
              "none": "32-true"}
SCHEDULERS = {"linear": "linear", "cosine": "cosine", "constant": "constant",
              "constant_with_warmup": "constant"}
#: The guide's (Hugging Face ``TrainingArguments``) optimizer names -> ours.
OPTIMIZERS = {"adamw_torch": "adamw", "adamw_hf": "adamw", "adamw_torch_fused": "adamw",
              "adamw": "adamw", "adamw_8bit": "adamw_8bit", "adamw_bnb_8bit": "adamw_8bit",
              "paged_adamw_8bit": "paged_adamw_8bit", "paged_adamw_32bit": "paged_adamw_32bit",
              "sgd": "torch.optim.SGD", "adam": "torch.optim.Adam"}
QUANTIZATIONS = {"int4": 4, "int8": 8}
#: The guide's metric names -> our registered metric names (others pass through).
METRIC_NAMES = {"bert_score": "bertscore", "bertscore": "bertscore", "exact-match": "exact_match",
                "em": "exact_match"}
#: A dotted import path (``pkg.module.name``) or the ``pkg.module:name`` form.
IMPORT_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*([.:][A-Za-z_]\w*)$")


def precision(value: str) -> str | None:
    key = value.strip().lower()
    if key not in PRECISIONS:
        raise ValueError(f"use one of {', '.join(PRECISIONS)}")
    return PRECISIONS[key]


def scheduler(value: str) -> str:
    key = value.strip().lower()
    if key not in SCHEDULERS:
        raise ValueError(f"not supported; our schedules (after the warmup) are "
                         f"{', '.join(SCHEDULERS)}")
    return SCHEDULERS[key]


def optimizer(value: str) -> str:
    key = value.strip()
    if key.lower() in OPTIMIZERS:
        return OPTIMIZERS[key.lower()]
    if "." in key and IMPORT_PATH.match(key):
        return key
    raise ValueError(f"not supported; use one of {', '.join(OPTIMIZERS)} or an import path "
                     "such as torch.optim.RMSprop")


def quantization(value: str) -> dict[str, int] | None:
    if optional_text(value) is None:
        return None
    key = value.strip().lower()
    if key not in QUANTIZATIONS:
        raise ValueError("use int4, int8 or none")
    return {"bits": QUANTIZATIONS[key]}


def target_modules(value: str) -> str | list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise ValueError("name the modules, e.g. q_proj,v_proj, or all-linear")
    return "all-linear" if names == ["all-linear"] else names


def chat_format(value: str) -> str | None:
    """The guide's ``tokenizer`` (the model's own template) is our ``native``; ``None`` leaves
    ours (``auto``)."""
    name = optional_text(value)
    if name is None:
        return None
    name = name.strip()
    return "native" if name.lower() == "tokenizer" else name


def metric_list(value: str | list[Any]) -> list[str]:
    """``perplexity,bleu,rouge`` (or a JSON list) -> our metric names, in order, once each."""
    items = value if isinstance(value, list) else str(value).split(",")
    names: list[str] = []
    for item in items:
        name = str(item).strip().strip("\"'[]").strip()
        if not name:
            continue
        name = METRIC_NAMES.get(name.lower(), name if name.startswith("rouge") else name.lower())
        if name not in names:
            names.append(name)
    if not names:
        raise ValueError("name at least one metric, e.g. perplexity,bleu,rouge")
    return names


def strategy(value: str) -> str | None:
    key = value.strip().lower()
    if key in ("", "none", "null"):
        return None
    if key in ("ddp", "ddp_spawn"):
        return key
    raise ValueError("not supported: multi-device training here is DDP (ddp); DeepSpeed and "
                     "FSDP are not wired in")


def import_path(value: str) -> str:
    """``pkg.module:function`` or ``pkg.module.function`` as our dotted path; a string of code
    is refused, because user code comes in by import path and is never ``eval``-ed."""
    text = value.strip()
    if not IMPORT_PATH.match(text) or ("." not in text and ":" not in text):
        raise ValueError("takes an import path such as my_pkg.losses:my_loss; we import user "
                         "code by path and never eval strings of Python")
    return text.replace(":", ".")
