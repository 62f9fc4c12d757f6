"""Which scale-out strategies combine with which model options, checked before anything loads.

Lightning's strategies do the scaling (DDP, FSDP; torchrun and SLURM launch them); this module
only refuses, in one line, the combinations that cannot work, instead of a deep error later:

- FSDP runs on CUDA only (Lightning's ``FSDPStrategy`` refuses other accelerators);
- QLoRA (bitsandbytes 4/8-bit weights) under FSDP: FSDP flattens and shards weights as float
  tensors, and the quantized storage of bitsandbytes is not one; use DDP for QLoRA;
- LoRA under FSDP needs ``use_orig_params: true``: a decoder layer then holds frozen and
  trained weights, which one flat parameter of FSDP's default cannot mix.

DDP combines with all of them.
"""

from __future__ import annotations

from typing import Any

from autotrain_pl.errors import AutotrainError

FSDP_ON_CPU_HINT = "on CPU or MPS use trainer.strategy: ddp (configs/ddp.yaml)"


def is_fsdp(strategy: Any) -> bool:
    """Whether a strategy (a name, a ``class_path`` config or an instance) is FSDP."""
    if strategy is None:
        return False
    if isinstance(strategy, str):
        return strategy.lower().startswith("fsdp")
    class_path = strategy.get("class_path") if hasattr(strategy, "get") else None
    name = class_path.rsplit(".", 1)[-1] if isinstance(class_path, str) else \
        type(strategy).__name__
    return "FSDP" in name


def check_strategy(strategy: Any, *, accelerator: str | None, lora: Any, quantization: Any,
                   use_orig_params: bool | None) -> None:
    """Refuse a strategy/model combination that cannot run (see the module docstring)."""
    if not is_fsdp(strategy):
        return
    if accelerator is not None and accelerator not in ("cuda", "gpu"):
        raise AutotrainError(f"trainer.strategy FSDP needs CUDA GPUs (the accelerator here is "
                             f"{accelerator}); {FSDP_ON_CPU_HINT}")
    if quantization:
        raise AutotrainError(
            "model.quantization (QLoRA) does not combine with FSDP: FSDP shards float weights, "
            "not bitsandbytes' quantized ones; use trainer.strategy: ddp for QLoRA, or LoRA "
            "without quantization under FSDP")
    if lora and not use_orig_params:
        raise AutotrainError(
            "LoRA under FSDP needs trainer.strategy.dict_kwargs.use_orig_params: true (a layer "
            "holds frozen and trained weights); see configs/fsdp.yaml")


def check_trainer_strategy(trainer: Any, module: Any) -> None:
    """``check_strategy`` for a live trainer and objective (the Python path)."""
    strategy = trainer.strategy
    hparams = getattr(module, "hparams", {})
    check_strategy(strategy, accelerator=None, lora=hparams.get("lora"),
                   quantization=hparams.get("quantization"),
                   use_orig_params=getattr(strategy, "kwargs", {}).get("use_orig_params"))
