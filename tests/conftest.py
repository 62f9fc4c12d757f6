"""Test-wide settings and fixtures: nothing may reach a model hub, ``datasets`` caches stay in a
temporary folder, and one copy of the fixtures several test folders share."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import copy  # noqa: E402
from pathlib import Path  # noqa: E402

import datasets  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402

import autotrain_pl  # noqa: E402
from autotrain_pl.rendering.chatml import ChatMLRenderer  # noqa: E402

datasets.disable_progress_bars()

BUILTIN_TOKENIZER = Path(autotrain_pl.__file__).parent / "models" / "builtin_tokenizer"


@pytest.fixture(scope="session", autouse=True)
def _private_datasets_cache(tmp_path_factory):
    """Keep the files ``datasets`` caches for tmp sources out of the user's home cache."""
    original = datasets.config.HF_DATASETS_CACHE
    datasets.config.HF_DATASETS_CACHE = tmp_path_factory.mktemp("hf_datasets_cache")
    yield
    datasets.config.HF_DATASETS_CACHE = original


@pytest.fixture
def one_torch_thread():
    """Builtin-model matmuls are too small to split; on a busy CPU extra threads only spin.

    Folders whose tests run many tiny forwards request it from an autouse fixture.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def builtin_tokenizer():
    return transformers.AutoTokenizer.from_pretrained(str(BUILTIN_TOKENIZER))


@pytest.fixture(scope="session")
def tokenizer(builtin_tokenizer):
    """A session copy of the builtin tokenizer (folders that need another define their own)."""
    return copy.deepcopy(builtin_tokenizer)


@pytest.fixture(scope="session")
def renderer(tokenizer):
    return ChatMLRenderer(tokenizer)
