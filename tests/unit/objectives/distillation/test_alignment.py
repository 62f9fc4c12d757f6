"""Teacher and student rows carry the same response tokens, whatever their prompt lengths."""

import pytest
import torch

from autotrain_pl.data import ChatDataModule, write_jsonl
from autotrain_pl.errors import AutotrainError
from autotrain_pl.models import load_tokenizer
from autotrain_pl.objectives.distillation import (
    DistillationCollator,
    DistillationEncoding,
    DistillationPrompts,
    apply_prompt,
    encode_pair,
)
from autotrain_pl.objectives.distillation.on_policy import response_tokens, with_responses
from autotrain_pl.rendering import Message, get_renderer
from autotrain_pl.training import select_trained_tokens

PROMPTS = DistillationPrompts(
    teacher_template="You are a meticulous tutor. Think about the digits first.\n\n{input}",
    teacher_system_prompt="Reply with the number only.",
)


@pytest.fixture(scope="module")
def renderer():
    return get_renderer("auto", load_tokenizer("builtin:tiny"))


def test_templates_and_system_prompts():
    prompt = [Message("system", "data system"), Message("user", "What is 2 + 3?")]
    teacher = apply_prompt(prompt, "Be exact. {input} Thanks.", "teacher system")
    assert teacher == [Message("system", "teacher system"),
                       Message("user", "Be exact. What is 2 + 3? Thanks.")]
    assert apply_prompt(prompt, "{input}", None) == prompt  # None keeps the data's system
    assert apply_prompt(prompt, "{input}", "") == prompt[1:]  # "" removes it
    assert apply_prompt(prompt[1:], "{input}", "sys")[0] == Message("system", "sys")


def test_selected_tokens_align_token_by_token(renderer):
    rows = [([Message("user", "What is 2 + 3?")], Message("assistant", "5")),
            ([Message("user", "What is 47 + 38?")], Message("assistant", "The sum is 85."))]
    features = []
    for prompt, reply in rows:
        row = encode_pair(prompt, reply, renderer, PROMPTS, max_length=256, policy="truncate")
        assert row["teacher_prompt_length"] > row["prompt_length"] + 10  # really different
        features.append(row)
    batch = DistillationCollator(renderer.tokenizer.pad_token_id)(features)
    student = select_trained_tokens(batch)
    teacher = select_trained_tokens(batch, "teacher_loss_weights", "teacher_input_ids",
                                    "teacher_attention_mask")
    assert torch.equal(student.labels, teacher.labels)
    assert torch.equal(student.rows, teacher.rows)
    assert torch.equal(student.weights, teacher.weights)
    assert not torch.equal(student.positions, teacher.positions)  # shifted by the prompt gap
    for index, (prompt, reply) in enumerate(rows):
        expected = renderer.render_completion(prompt, [reply]).input_ids
        assert student.labels[student.rows == index].tolist() == expected
        assert renderer.tokenizer.decode(expected).startswith(reply.content)


def test_truncation_keeps_both_sides_equal(renderer):
    prompt, reply = [Message("user", "Count.")], Message("assistant", "one two three four five")
    limit = len(renderer.build_generation_prompt(PROMPTS.teacher(prompt))) + 3
    row = encode_pair(prompt, reply, renderer, PROMPTS, max_length=limit, policy="truncate")
    assert max(len(row["input_ids"]), len(row["teacher_input_ids"])) == limit
    s = row["input_ids"][row["prompt_length"]:]
    t = row["teacher_input_ids"][row["teacher_prompt_length"]:]
    assert s == t and len(s) == 3
    dropped = encode_pair(prompt, reply, renderer, PROMPTS, max_length=limit, policy="drop")
    assert dropped == {"status": "dropped_overlong"}


def test_on_policy_batch_keeps_alignment(renderer):
    features = [encode_pair([Message("user", q)], None, renderer, PROMPTS, 256, "truncate",
                            allow_prompt_only=True) for q in ("Hi?", "What is 1 + 1?")]
    batch = DistillationCollator(renderer.tokenizer.pad_token_id)(features)
    assert not batch["has_response"].any()
    sampled = with_responses(batch, [[42, 43, 5], [7]], renderer.tokenizer.pad_token_id)
    assert response_tokens(sampled) == response_tokens(sampled, "teacher_") == [[42, 43, 5], [7]]
    assert sampled["on_policy"] and sampled["has_response"].all()


def test_chat_data_module_encodes_pairs_with_the_encoding(tmp_path):
    rows = [{"messages": [{"role": "user", "content": f"What is {i} + 1?"},
                          {"role": "assistant", "content": str(i + 1)}]} for i in range(6)]
    write_jsonl(rows, tmp_path / "d.jsonl")
    data = ChatDataModule(str(tmp_path / "d.jsonl"), tokenizer="builtin:tiny", batch_size=3)
    encoding = DistillationEncoding(PROMPTS)
    data.use_encoding(encoding)
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    assert batch["teacher_input_ids"].shape[1] > batch["input_ids"].shape[1]
    assert list(encoding.encoded) == [batch["cache_key"]]
    assert sorted(data.train_dataset["example_id"]) == list(range(6))
    data.use_encoding(DistillationEncoding(PROMPTS))  # an equal encoding keeps the data
    assert data.train_dataset is not None
    data.use_encoding(None)  # back to plain SFT rows
    data.setup("fit")
    assert "teacher_input_ids" not in next(iter(data.train_dataloader()))


def test_rows_without_reply_need_a_response_source(tmp_path):
    write_jsonl([{"messages": [{"role": "user", "content": "Hi"}]}], tmp_path / "p.jsonl")
    data = ChatDataModule(str(tmp_path / "p.jsonl"), tokenizer="builtin:tiny")
    data.use_encoding(DistillationEncoding(PROMPTS))
    with pytest.raises(AutotrainError, match="response_source"):
        data.setup("fit")


def test_packing_is_refused(tmp_path):
    write_jsonl([{"messages": [{"role": "user", "content": "Hi"},
                               {"role": "assistant", "content": "Yo"}]}], tmp_path / "p.jsonl")
    data = ChatDataModule(str(tmp_path / "p.jsonl"), tokenizer="builtin:tiny", packing=True)
    with pytest.raises(AutotrainError, match="packing=true does not work with Distillation"):
        data.use_encoding(DistillationEncoding(PROMPTS))
