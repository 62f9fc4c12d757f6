"""Accelerator and precision defaults, tested without a GPU or a Mac by injecting availability."""

import pytest
import torch

from autotrain_pl.errors import AutotrainError
from autotrain_pl.models import default_precision, select_accelerator, torch_dtype


def yes():
    return True


def no():
    return False


@pytest.mark.parametrize(
    ("cuda", "mps", "expected"),
    [(yes, yes, "cuda"), (yes, no, "cuda"), (no, yes, "mps"), (no, no, "cpu")],
)
def test_auto_prefers_cuda_then_mps_then_cpu(cuda, mps, expected):
    assert select_accelerator("auto", cuda_available=cuda, mps_available=mps) == expected


def test_explicit_choice_must_exist():
    assert select_accelerator("gpu", cuda_available=yes, mps_available=no) == "cuda"
    assert select_accelerator("mps", cuda_available=no, mps_available=yes) == "mps"
    with pytest.raises(AutotrainError, match="no CUDA GPU"):
        select_accelerator("cuda", cuda_available=no, mps_available=no)
    with pytest.raises(AutotrainError, match="MPS is not available"):
        select_accelerator("mps", cuda_available=no, mps_available=no)
    with pytest.raises(AutotrainError, match="accelerator='tpu'"):
        select_accelerator("tpu")


@pytest.mark.parametrize(
    ("accelerator", "bf16", "expected"),
    [("cuda", yes, "bf16-mixed"), ("cuda", no, "16-mixed"), ("mps", yes, "32-true"),
     ("cpu", yes, "32-true")],
)
def test_default_precision(accelerator, bf16, expected):
    assert default_precision(accelerator, bf16_supported=bf16) == expected


def test_dtype_names():
    assert torch_dtype("bf16") is torch.bfloat16
    assert torch_dtype("float32") is torch.float32
    assert torch_dtype(None) is None
    with pytest.raises(AutotrainError, match="dtype='int3'"):
        torch_dtype("int3")
