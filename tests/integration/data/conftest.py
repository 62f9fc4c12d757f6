"""Fixtures for the data tests: the builtin tokenizer, a ChatML renderer, a private datasets cache."""

from __future__ import annotations

import os
from pathlib import Path

import datasets
import pytest
import transformers

import autotrain_pl
from autotrain_pl.rendering.chatml import ChatMLRenderer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
datasets.disable_progress_bars()

BUILTIN_TOKENIZER = Path(autotrain_pl.__file__).parent / "models" / "builtin_tokenizer"


@pytest.fixture(scope="session", autouse=True)
def _private_datasets_cache(tmp_path_factory):
    """Keep the files ``datasets`` caches for tmp sources out of the user's home cache."""
    original = datasets.config.HF_DATASETS_CACHE
    datasets.config.HF_DATASETS_CACHE = tmp_path_factory.mktemp("hf_datasets_cache")
    yield
    datasets.config.HF_DATASETS_CACHE = original


@pytest.fixture(scope="session")
def tokenizer():
    return transformers.AutoTokenizer.from_pretrained(str(BUILTIN_TOKENIZER))


@pytest.fixture(scope="session")
def renderer(tokenizer):
    return ChatMLRenderer(tokenizer)
