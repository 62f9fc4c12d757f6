"""Shared fixtures for the loss tests: small seeded tensors in the flat token layout."""

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def _make_batch(gen: torch.Generator, n: int = 7, vocab: int = 11, dtype=torch.float64):
    """Logits ``[n, vocab]``, labels ``[n]``, fractional weights ``[n]`` with some zeros."""
    logits = torch.randn(n, vocab, generator=gen, dtype=dtype) * 2
    labels = torch.randint(0, vocab, (n,), generator=gen)
    weights = torch.rand(n, generator=gen, dtype=dtype) + 0.1
    weights[1] = 0.0
    weights[-2] = 0.0
    return logits, labels, weights


@pytest.fixture
def make_batch():
    """The batch factory, as a fixture (test modules here are not an importable package)."""
    return _make_batch
