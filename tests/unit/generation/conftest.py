"""Fixtures for generation tests: the builtin tiny model and a way to script its outputs."""

from __future__ import annotations

import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from autotrain_pl.models import load_model, load_tokenizer  # noqa: E402
from autotrain_pl.rendering.chatml import ChatMLRenderer  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread_per_test(one_torch_thread):
    """Every test here runs on one torch thread (see ``tests/conftest.py``)."""


@pytest.fixture(scope="session")
def tokenizer():
    return load_tokenizer("builtin:tiny")


@pytest.fixture(scope="session")
def model():
    return load_model("builtin:tiny").eval()


@pytest.fixture
def renderer(tokenizer):
    return ChatMLRenderer(tokenizer)


class ForcedTokens:
    """Adds a large bias to the LM head so step k's argmax is ``script[k % len(script)]``.

    Step 0 is the prefill (it picks the first generated token). The random builtin model's
    own outputs are near uniform, so tests script the tokens whose handling they check.
    """

    def __init__(self, model, script: list[int], sleep_s: float = 0.0, bias: float = 1e4) -> None:
        self.model, self.script, self.sleep_s, self.bias = model, list(script), sleep_s, bias
        self.step = 0
        self.handle = None

    def __enter__(self) -> ForcedTokens:
        def hook(module, inputs, output):
            token = self.script[self.step % len(self.script)]
            self.step += 1
            if self.sleep_s:
                time.sleep(self.sleep_s)
            output = output.clone()
            output[..., token] += self.bias
            return output

        self.handle = self.model.lm_head.register_forward_hook(hook)
        return self

    def __exit__(self, *exc) -> None:
        self.handle.remove()


@pytest.fixture
def force_tokens(model):
    """``with force_tokens([ids...]):`` scripts the tiny model's greedy output."""
    return lambda script, **kw: ForcedTokens(model, script, **kw)


def teacher_forced_logprobs(model, prompt: list[int], tokens: list[int], temperature: float = 1.0):
    """Raw per-token logprobs of ``tokens`` after ``prompt`` from one forward pass."""
    ids = torch.tensor([prompt + tokens])
    with torch.no_grad():
        logits = model(ids).logits[0, len(prompt) - 1 : -1].float() / temperature
    return torch.log_softmax(logits, -1).gather(-1, torch.tensor(tokens)[:, None]).squeeze(-1)


@pytest.fixture
def teacher_forced():
    return teacher_forced_logprobs
