"""Tokenization through dataset.map: weights, over-long policies and their counts."""

from __future__ import annotations

import json

import datasets
import pytest

from autotrain_pl.data import encode_dataset, split_prompt
from autotrain_pl.data.formats import ROW_FORMATS
from autotrain_pl.data.sources import LoadedSource, RowLocator
from autotrain_pl.errors import AutotrainError
from autotrain_pl.rendering.messages import Conversation, Message


def _source(rows) -> LoadedSource:
    return LoadedSource(datasets.Dataset.from_list(rows), RowLocator("mem"))


def _chat(answer_words: int, question_words: int = 2) -> dict:
    return {
        "messages": [
            {"role": "user", "content": " ".join(["ask"] * question_words)},
            {"role": "assistant", "content": " ".join(["yes"] * answer_words)},
        ]
    }


def test_sft_matches_renderer_with_position_zero_unweighted(renderer):
    row = _chat(3)
    encoded, stats = encode_dataset(_source([row]), ROW_FORMATS["messages"], renderer, mode="sft")
    ids, weights = renderer.build_supervised_example(
        [Message(**m) for m in row["messages"]], "last_assistant_message"
    )
    assert encoded[0]["input_ids"] == ids
    assert encoded[0]["loss_weights"] == [0.0, *weights[1:]]
    assert encoded[0]["length"] == len(ids)
    assert stats.samples == stats.rows_read == 1


def test_text_rows_train_on_bos_text_and_eos(renderer, tokenizer):
    encoded, _ = encode_dataset(
        _source([{"text": "hello world"}]), ROW_FORMATS["text"], renderer, mode="sft"
    )
    ids = encoded[0]["input_ids"]
    body = tokenizer.encode("hello world", add_special_tokens=False)
    assert ids == [tokenizer.bos_token_id, *body, tokenizer.eos_token_id]
    assert encoded[0]["loss_weights"] == [0.0] + [1.0] * (len(ids) - 1)


def test_truncate_counts_and_keeps_max_length(renderer):
    rows = [_chat(2), _chat(40), _chat(50)]
    encoded, stats = encode_dataset(
        _source(rows), ROW_FORMATS["messages"], renderer, mode="sft", max_length=30
    )
    assert len(encoded) == 3 and max(encoded["length"]) == 30
    assert stats.truncated_overlong == 2 and stats.dropped_overlong == 0
    assert all(
        len(i) == len(w) for i, w in zip(encoded["input_ids"], encoded["loss_weights"], strict=True)
    )


def test_drop_policy_counts(renderer):
    rows = [_chat(2), _chat(40), _chat(50)]
    encoded, stats = encode_dataset(
        _source(rows),
        ROW_FORMATS["messages"],
        renderer,
        mode="sft",
        max_length=30,
        overlong_policy="drop",
    )
    assert len(encoded) == 1 and stats.dropped_overlong == 2 and stats.samples == 1


def test_truncation_that_removes_all_trained_tokens_drops_the_sample(renderer, caplog):
    rows = [_chat(2), _chat(2, question_words=60)]  # the long prompt pushes the reply past 30
    with caplog.at_level("WARNING"):
        encoded, stats = encode_dataset(
            _source(rows), ROW_FORMATS["messages"], renderer, mode="sft", max_length=30
        )
    assert len(encoded) == 1 and stats.dropped_truncated_untrainable == 1
    assert stats.truncated_overlong == 0
    assert "cut away all of their trained tokens" in caplog.text


def test_preference_renders_prompt_once(renderer):
    row = {"prompt": "What is 2 + 2?", "chosen": "4", "rejected": "5"}
    encoded, _ = encode_dataset(
        _source([row]), ROW_FORMATS["preference"], renderer, mode="preference"
    )
    ex = encoded[0]
    prompt = [Message("user", row["prompt"])]
    full, _ = renderer.build_supervised_example([*prompt, Message("assistant", "4")])
    assert ex["prompt_ids"] == renderer.build_generation_prompt(prompt)
    assert ex["prompt_ids"] + ex["chosen_ids"] == full  # completion only, no prompt copy
    assert ex["length"] == len(ex["prompt_ids"]) + max(
        len(ex["chosen_ids"]), len(ex["rejected_ids"])
    )


def test_generation_prompts_drop_the_reply_and_keep_the_reference(renderer):
    rows = [
        {"messages": _chat(1)["messages"], "reference": "42"},
        {"messages": _chat(1)["messages"][:1], "reference": "7"},
    ]
    encoded, _ = encode_dataset(_source(rows), ROW_FORMATS["messages"], renderer, mode="generate")
    expected = renderer.build_generation_prompt([Message("user", "ask ask")])
    assert encoded[0]["input_ids"] == expected == encoded[1]["input_ids"]
    assert encoded["reference"] == ["42", "7"]


def test_split_prompt_uses_final_reply_without_reference_column():
    record = Conversation([Message("user", "Q"), Message("assistant", "A")])
    assert split_prompt(record) == ([Message("user", "Q")], "A")


def test_the_reply_to_a_question_includes_the_tool_calls_that_led_to_it():
    call = {"type": "function", "function": {"name": "f", "arguments": {}}}
    record = Conversation([Message("user", "Q1"), Message("assistant", "A1"), Message("user", "Q"),
                           Message("assistant", "", tool_calls=(call,)),
                           Message("tool", "42", name="f"), Message("assistant", "It is 42.")])
    assert split_prompt(record) == (record.messages[:3], "It is 42.")


TOOL = {"type": "function", "function": {"name": "f", "description": "F.",
                                         "parameters": {"type": "object", "properties": {}}}}


@pytest.mark.parametrize("tools", [[TOOL], json.dumps([TOOL])])
def test_a_tools_column_goes_to_the_chat_format(renderer, tools):
    chat = _chat(1)["messages"]
    rows = [{"messages": chat, "tools": tools}, {"messages": chat, "tools": None}]
    sft, _ = encode_dataset(_source(rows), ROW_FORMATS["messages"], renderer, mode="sft")
    assert sft[0]["input_ids"] == renderer.build_supervised_example(
        chat, tools=[TOOL]).input_ids
    assert sft[1]["input_ids"] == renderer.build_supervised_example(chat).input_ids
    generate, _ = encode_dataset(_source(rows), ROW_FORMATS["messages"], renderer,
                                 mode="generate")
    assert generate[0]["input_ids"] == renderer.build_generation_prompt(chat[:1], tools=[TOOL])
    assert json.loads(generate[0]["prompt_messages"]) == chat[:1]


@pytest.mark.parametrize("tools,message", [
    ("[{not json", "field 'tools': is not valid JSON"),
    ('{"type": "function"}', "field 'tools': must be a list of function schemas"),
])
def test_a_bad_tools_column_names_the_row_and_field(renderer, tools, message):
    rows = [{"messages": _chat(1)["messages"], "tools": tools}]
    with pytest.raises(AutotrainError, match=f"mem row 0, {message}"):
        encode_dataset(_source(rows), ROW_FORMATS["messages"], renderer, mode="sft")


@pytest.mark.parametrize("policy", ["truncate", "drop"])
def test_overlong_generation_prompt(renderer, policy):
    rows = [_chat(1, question_words=50), _chat(1)]
    encoded, stats = encode_dataset(
        _source(rows),
        ROW_FORMATS["messages"],
        renderer,
        mode="generate",
        max_length=20,
        overlong_policy=policy,
    )
    assert (len(encoded), stats.truncated_overlong, stats.dropped_overlong) == (
        (2, 1, 0) if policy == "truncate" else (1, 0, 1)
    )
    assert max(encoded["length"]) <= 20
