"""Optimizer and learning-rate schedule construction for every objective."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from autotrain_pl.errors import AutotrainError
from autotrain_pl.importing import import_object

SCHEDULES = ("constant", "linear", "cosine")
_BNB_OPTIMIZERS = {
    "adamw_8bit": "AdamW8bit",
    "paged_adamw_8bit": "PagedAdamW8bit",
    "paged_adamw_32bit": "PagedAdamW32bit",
}


def resolve_optimizer_class(name: str, accelerator: str) -> type[torch.optim.Optimizer]:
    """``adamw`` (default), a bitsandbytes name on CUDA, or any class by import path."""
    if name in ("adamw", "AdamW"):
        return torch.optim.AdamW
    if name in _BNB_OPTIMIZERS:
        if accelerator != "cuda":
            raise AutotrainError(
                f"optimizer={name!r} needs a CUDA GPU (bitsandbytes); use optimizer=adamw on "
                f"{accelerator}"
            )
        import bitsandbytes as bnb

        return getattr(bnb.optim, _BNB_OPTIMIZERS[name])
    cls = import_object(name, "optimizer") if "." in name else None
    if cls is None or not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        known = ", ".join(["adamw", *_BNB_OPTIMIZERS])
        raise AutotrainError(
            f"optimizer={name!r} is not known; use one of {known} or an import path such as "
            "torch.optim.SGD"
        )
    return cls


def parameter_groups(named_parameters: Iterable[tuple[str, torch.nn.Parameter]],
                     weight_decay: float) -> list[dict]:
    """Decay matrices only: biases and norm weights (1-D tensors) get no weight decay."""
    decay, no_decay = [], []
    for _, param in named_parameters:
        if not param.requires_grad:
            continue
        (decay if param.ndim >= 2 else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def warmup_steps_for(total_steps: int, warmup_steps: int, warmup_ratio: float) -> int:
    return warmup_steps if warmup_steps > 0 else int(math.ceil(total_steps * warmup_ratio))


def lr_lambda(schedule: str, warmup: int, total_steps: int):
    """Multiplier of the peak lr at each step: linear warmup, then constant/linear/cosine decay."""
    if schedule not in SCHEDULES:
        raise AutotrainError(f"lr_scheduler={schedule!r} is not known; use one of {', '.join(SCHEDULES)}")

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        if schedule == "linear":
            return max(0.0, 1.0 - progress)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor
