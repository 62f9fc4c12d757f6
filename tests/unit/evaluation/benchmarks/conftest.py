"""Shared fixtures: the builtin tiny model and the benchmark fixture files."""

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

FIXTURES = Path(__file__).parents[3] / "fixtures" / "benchmarks"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def tiny():
    """(model, tokenizer) of builtin:tiny in eval mode."""
    from autotrain_pl.models import load_model, load_tokenizer

    tokenizer = load_tokenizer("builtin:tiny")
    model = load_model("builtin:tiny").eval()
    return model, tokenizer


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny matmuls gain nothing from threads; a busy CPU only makes them slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
