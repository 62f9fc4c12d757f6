"""``response_source: auto`` (the default): the teacher writes the replies of prompts-only data;
data with replies trains on them; an explicit setting still wins. The choice is logged."""

import inspect
import logging

import pytest

from autotrain_pl.data import ChatDataModule, write_jsonl
from autotrain_pl.errors import AutotrainError
from autotrain_pl.objectives import DistillationModule
from autotrain_pl.objectives.distillation import (
    DistillationEncoding,
    DistillationSettings,
    Distiller,
)
from autotrain_pl.rendering import Message

TEMPLATE = "Answer briefly.\n\n{input}"
QUESTIONS = ["What is 2+3?", "Name a color.", "Say hi."]


class Teacher:
    """Stands in for the teacher's generation: records what it was asked."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, prompts, split, renderer):
        self.calls.append([p[-1].content for p in prompts])
        return [Message("assistant", f"teacher reply {i}") for i in range(len(prompts))]


def _data(tmp_path, with_replies: bool) -> ChatDataModule:
    rows = [{"messages": [{"role": "user", "content": q}] +
             ([{"role": "assistant", "content": "data reply"}] if with_replies else [])}
            for q in QUESTIONS]
    write_jsonl(rows, tmp_path / "rows.jsonl")
    return ChatDataModule(str(tmp_path / "rows.jsonl"), tokenizer="builtin:tiny")


def _replies(data: ChatDataModule) -> list[str]:
    tokenizer = data.tokenizer
    out = []
    for row in data.train_dataset:
        reply = [t for t, w in zip(row["input_ids"], row["loss_weights"], strict=True) if w]
        out.append(tokenizer.decode(reply, skip_special_tokens=True).strip())
    return out


def _encoding(source: str, teacher: Teacher) -> DistillationEncoding:
    """What ``Distiller.encoding`` builds for ``response_source`` (no teacher model loaded)."""
    distiller = Distiller.__new__(Distiller)
    distiller.settings = DistillationSettings(teacher_model="builtin:tiny", response_source=source,
                                              teacher_prompt_template=TEMPLATE)
    distiller._encoding = None
    return distiller.encoding(teacher)


def test_auto_is_the_default_and_replies_may_run_to_512_tokens():
    assert DistillationSettings(teacher_model="builtin:tiny").response_source == "auto"
    assert DistillationSettings(teacher_model="builtin:tiny").distill_max_teacher_length == 512
    defaults = inspect.signature(DistillationModule).parameters
    assert defaults["response_source"].default == "auto"
    assert defaults["distill_max_teacher_length"].default == 512


@pytest.mark.parametrize("with_replies, chosen", [(False, "teacher"), (True, "dataset")])
def test_auto_resolves_from_the_data_and_says_so(tmp_path, caplog, with_replies, chosen):
    teacher = Teacher()
    data = _data(tmp_path, with_replies)
    encoding = _encoding("auto", teacher)
    data.use_encoding(encoding)
    with caplog.at_level(logging.INFO, logger="autotrain_pl.objectives.distillation.data"):
        data.setup("fit")
    assert encoding.response_sources == {"train": chosen}
    expected = [f"teacher reply {i}" for i in range(3)] if chosen == "teacher" else \
        ["data reply"] * 3
    assert _replies(data) == expected
    assert teacher.calls == ([[TEMPLATE.format(input=q) for q in QUESTIONS]]
                             if chosen == "teacher" else [])
    assert any(f"(response_source={chosen})" in r.getMessage() for r in caplog.records)


def test_explicit_settings_win(tmp_path):
    teacher = Teacher()
    data = _data(tmp_path, with_replies=True)
    data.use_encoding(_encoding("teacher", teacher))  # replies in the data, teacher anyway
    data.setup("fit")
    assert _replies(data) == [f"teacher reply {i}" for i in range(3)] and len(teacher.calls) == 1
    data = _data(tmp_path, with_replies=False)
    data.use_encoding(_encoding("dataset", Teacher()))  # prompts only, dataset asked for
    with pytest.raises(AutotrainError, match="has no final assistant reply"):
        data.setup("fit")
