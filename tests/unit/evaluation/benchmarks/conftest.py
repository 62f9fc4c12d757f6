"""Shared fixtures: the builtin tiny model and the benchmark fixture files."""

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402

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
def _one_thread_per_test(one_torch_thread):
    """Every test here runs on one torch thread (see ``tests/conftest.py``)."""
