import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread_per_test(one_torch_thread):
    """Every test here runs on one torch thread (see ``tests/conftest.py``)."""
