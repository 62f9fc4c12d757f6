"""Fixtures of the ``aitrain llm`` fits: tiny data folders laid out as the guide's ``./data``
(train and valid files), a reward model, and the flags that keep a fit to two short steps."""

import csv
import json
from pathlib import Path

import pytest
from llm_fit_helpers import STUDENT


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Builtin-model matmuls are too small to split over threads."""


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def sums(n: int, offset: int = 0) -> list[tuple[str, str]]:
    return [(f"What is {i} + {i + 1}?", str(2 * i + 1)) for i in range(offset, offset + n)]


@pytest.fixture(scope="session")
def chat_data(tmp_path_factory) -> Path:
    """``train.jsonl`` and ``valid.jsonl`` of chat messages."""
    root = tmp_path_factory.mktemp("chat_data")
    for name, offset in (("train", 0), ("valid", 50)):
        write_jsonl(root / f"{name}.jsonl", [
            {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
            for q, a in sums(8, offset)])
    return root


@pytest.fixture(scope="session")
def text_data(tmp_path_factory) -> Path:
    """The SFT guide's layout: ``train.csv`` with a ``text`` column."""
    root = tmp_path_factory.mktemp("text_data")
    with (root / "train.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text"])
        writer.writerows([f"Question: {q} Answer: {a}"] for q, a in sums(8))
    return root


@pytest.fixture(scope="session")
def pair_data(tmp_path_factory) -> Path:
    """Preference pairs under the guide's DPO column names (prompt, text, rejected)."""
    root = tmp_path_factory.mktemp("pair_data")
    write_jsonl(root / "train.jsonl", [{"prompt": q, "text": a, "rejected": str(int(a) + 3)}
                                       for q, a in sums(8)])
    return root


@pytest.fixture(scope="session")
def prompt_data(tmp_path_factory) -> Path:
    """Questions for PPO; the reply is the reference answer (``aitrain fit`` checks the first
    rows as SFT rows before the model loads, so prompt-only rows do not pass there yet)."""
    root = tmp_path_factory.mktemp("prompt_data")
    write_jsonl(root / "train.jsonl", [
        {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
        for q, a in sums(8)])
    return root


@pytest.fixture(scope="session")
def reward_model(tmp_path_factory) -> Path:
    """A one-label sequence classifier on the builtin tokenizer (an untrained score head)."""
    import torch

    from autotrain_pl.models import load_model, load_tokenizer

    path = tmp_path_factory.mktemp("reward_model")
    torch.manual_seed(0)
    load_model(STUDENT, head="reward").save_pretrained(path)
    load_tokenizer(STUDENT).save_pretrained(path)
    return path
