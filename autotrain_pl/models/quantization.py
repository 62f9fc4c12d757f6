"""4-bit and 8-bit loading through bitsandbytes (the base of QLoRA).

bitsandbytes 0.50 runs 4-bit forward and backward on CPU as well as CUDA, so QLoRA is tested on
the CPU runners.
"""

from __future__ import annotations

from dataclasses import dataclass

from autotrain_pl.errors import AutotrainError
from autotrain_pl.models.devices import torch_dtype


@dataclass
class QuantizationOptions:
    """Args:
    bits: 4 or 8.
    quant_type: ``nf4`` or ``fp4`` (4-bit only).
    double_quant: quantize the quantization constants too (saves ~0.4 bit/param).
    compute_dtype: dtype of the dequantized matmuls; float32 on CPU, bfloat16 on CUDA.
    """

    bits: int = 4
    quant_type: str = "nf4"
    double_quant: bool = True
    compute_dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.bits not in (4, 8):
            raise AutotrainError(f"quantization.bits={self.bits} is not supported; use 4 or 8")
        if self.quant_type not in ("nf4", "fp4"):
            raise AutotrainError(f"quantization.quant_type={self.quant_type!r}; use nf4 or fp4")

    def to_bnb_config(self):
        from transformers import BitsAndBytesConfig

        if self.bits == 8:
            return BitsAndBytesConfig(load_in_8bit=True)
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type=self.quant_type,
            bnb_4bit_use_double_quant=self.double_quant,
            bnb_4bit_compute_dtype=torch_dtype(self.compute_dtype),
        )
