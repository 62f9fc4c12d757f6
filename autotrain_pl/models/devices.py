"""Accelerator and precision defaults per device.

bf16 matmul on these CPUs measured about 0.8 GFLOP/s against 105 GFLOP/s for fp32, and MPS lacks
several bf16 kernels, so mixed bf16 is the default only on CUDA GPUs that support it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from autotrain_pl.errors import AutotrainError

ACCELERATORS = ("auto", "cpu", "cuda", "gpu", "mps")


def select_accelerator(
    requested: str = "auto",
    *,
    cuda_available: Callable[[], bool] = torch.cuda.is_available,
    mps_available: Callable[[], bool] = torch.backends.mps.is_available,
) -> str:
    """Resolve ``auto`` to CUDA, then MPS, then CPU; check that an explicit choice exists."""
    if requested not in ACCELERATORS:
        raise AutotrainError(
            f"trainer.accelerator={requested!r} is not supported; use one of {', '.join(ACCELERATORS)}"
        )
    if requested == "auto":
        if cuda_available():
            return "cuda"
        return "mps" if mps_available() else "cpu"
    if requested in ("cuda", "gpu") and not cuda_available():
        raise AutotrainError(f"trainer.accelerator={requested!r} but no CUDA GPU is visible; use 'auto' or 'cpu'")
    if requested == "mps" and not mps_available():
        raise AutotrainError("trainer.accelerator='mps' but MPS is not available; use 'auto' or 'cpu'")
    return "cuda" if requested == "gpu" else requested


def default_precision(
    accelerator: str,
    *,
    bf16_supported: Callable[[], bool] = lambda: torch.cuda.is_bf16_supported(),
) -> str:
    """bf16-mixed on CUDA with bf16 support, 16-mixed on older CUDA GPUs, 32-true elsewhere."""
    if accelerator == "cuda":
        return "bf16-mixed" if bf16_supported() else "16-mixed"
    return "32-true"


def torch_dtype(name: str | torch.dtype | None) -> torch.dtype | None:
    """Map a config string (``bfloat16``/``bf16``/``float32``/``auto``...) to a torch dtype."""
    if name is None or isinstance(name, torch.dtype):
        return name
    aliases = {
        "auto": None, "float32": torch.float32, "fp32": torch.float32, "32": torch.float32,
        "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
        "float16": torch.float16, "fp16": torch.float16, "16": torch.float16,
    }
    if name not in aliases:
        raise AutotrainError(f"dtype={name!r} is not known; use float32, bfloat16, float16 or auto")
    return aliases[name]
