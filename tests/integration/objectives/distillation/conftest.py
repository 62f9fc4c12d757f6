"""Fixtures of the distillation integration tests.

The builtin models are tiny, so one intra-op thread is fastest (and keeps timings stable when
other processes share the CPU). ``wrap_teacher`` trains, once per session, a builtin teacher that
wraps its answers as ``<<answer>>`` when the system instruction asks for it and answers plainly
otherwise; it ends its replies properly, so teacher generation works in every test.
"""

import lightning as L
import pytest
import torch
from distill_testing import INSTRUCTION, WrapTeacher, quiet_trainer, wrap_rate

from autotrain_pl.data import ChatDataModule, arithmetic_splits, write_jsonl
from autotrain_pl.objectives import SFTModule


@pytest.fixture(autouse=True)
def _one_thread_per_test(one_torch_thread):
    """Every test here runs on one torch thread (see ``tests/conftest.py``)."""


@pytest.fixture(scope="session")
def wrap_teacher(tmp_path_factory) -> WrapTeacher:
    root = tmp_path_factory.mktemp("wrap_teacher")
    train, held_out = arithmetic_splits(80, 20, seed=0, digits=1)
    rows = []
    for row in train:
        question, answer = row["messages"][0]["content"], row["reference"]
        rows.append({"messages": [{"role": "user", "content": question},
                                  {"role": "assistant", "content": answer}]})
        rows.append({"messages": [{"role": "system", "content": INSTRUCTION},
                                  {"role": "user", "content": question},
                                  {"role": "assistant", "content": f"<<{answer}>>"}]})
    write_jsonl(rows, root / "teacher.jsonl")
    write_jsonl(train, root / "answers.jsonl")
    write_jsonl([{"messages": row["messages"][:1]} for row in train], root / "prompts.jsonl")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        L.seed_everything(0)
        teacher = SFTModule("builtin:tiny", learning_rate=3e-3, lr_scheduler="constant")
        data = ChatDataModule(str(root / "teacher.jsonl"), tokenizer="builtin:tiny", batch_size=16)
        quiet_trainer(root, 80).fit(teacher, data)
        questions = [row["messages"][0]["content"] for row in held_out]
        rate_with = wrap_rate(teacher.model, data.tokenizer, questions, INSTRUCTION)
        rate_without = wrap_rate(teacher.model, data.tokenizer, questions)
    finally:
        torch.set_num_threads(threads)
    return WrapTeacher(root / "export", root / "prompts.jsonl", root / "answers.jsonl", questions,
                       rate_with, rate_without)
