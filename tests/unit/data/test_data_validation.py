"""Bad inputs: each error is one line naming the file, the line or row, and the field."""

from __future__ import annotations

import json

import pytest

from autotrain_pl.data import encode_dataset, load_conversations, read_source, write_jsonl
from autotrain_pl.data.reading import source_format
from autotrain_pl.errors import AutotrainError

GOOD = {"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]}


def _error(path, **kwargs) -> str:
    with pytest.raises(AutotrainError) as err:
        load_conversations(str(path), **kwargs)
    message = str(err.value)
    assert "\n" not in message
    return message


def _with_bad_row(tmp_path, bad, name="data.jsonl"):
    return write_jsonl([GOOD, GOOD, bad, GOOD], tmp_path / name)


def test_malformed_json(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + '{"messages": [\n')
    assert f"{path} line 2: malformed JSON" in _error(path)


def test_unknown_role(tmp_path):
    bad = {"messages": [{"role": "bot", "content": "Q"}, {"role": "assistant", "content": "A"}]}
    message = _error(_with_bad_row(tmp_path, bad))
    assert "data.jsonl line 3, field 'messages[0].role': unknown role 'bot'" in message
    assert "user" in message


def test_empty_assistant_turn(tmp_path):
    bad = {"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": " "}]}
    message = _error(_with_bad_row(tmp_path, bad))
    assert "line 3, field 'messages[1].content': empty assistant message" in message


def test_non_string_content(tmp_path):
    bad = {"messages": [{"role": "user", "content": ["Q"]}, {"role": "assistant", "content": "A"}]}
    message = _error(_with_bad_row(tmp_path, bad))
    assert "line 3, field 'messages[0].content': content must be a string, got list" in message


def test_null_completion_in_csv_row(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("prompt,completion\nQ,A\nQ2,\n")
    message = _error(path)
    assert f"{path} row 1 (line 3), field 'completion.content': empty assistant" in message


def test_sharegpt_unknown_speaker(tmp_path):
    bad = {"conversations": [{"from": "robot", "value": "x"}]}
    rows = [
        {"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}]},
        bad,
    ]
    message = _error(write_jsonl(rows, tmp_path / "s.jsonl"))
    assert "s.jsonl line 2, field 'conversations[0].from': unknown speaker 'robot'" in message


def test_missing_value_in_one_row(tmp_path):
    rows = [{"prompt": "Q", "completion": "A"}, {"prompt": "Q"}]
    message = _error(write_jsonl(rows, tmp_path / "pc.jsonl"))
    assert "pc.jsonl line 2, field 'completion'" in message


def test_no_assistant_message_is_rejected_for_training(tmp_path, renderer):
    bad = {"messages": [{"role": "user", "content": "Q"}]}
    source = read_source(str(_with_bad_row(tmp_path, bad)))
    with pytest.raises(AutotrainError, match=r"line 3, field 'messages': has no assistant"):
        encode_dataset(source, source_format(source), renderer, mode="sft")


def test_renderer_errors_are_located(tmp_path, renderer):
    class NoSystem(type(renderer)):
        supported_roles = ("user", "assistant")

    bad = {"messages": [{"role": "system", "content": "S"}, *GOOD["messages"]]}
    source = read_source(str(_with_bad_row(tmp_path, bad)))
    with pytest.raises(AutotrainError, match=r"data.jsonl line 3: message 0 has role 'system'"):
        encode_dataset(source, source_format(source), NoSystem(renderer.tokenizer), mode="sft")


def test_empty_after_filtering(tmp_path, renderer):
    source = read_source(str(write_jsonl([GOOD] * 3, tmp_path / "d.jsonl")))
    with pytest.raises(AutotrainError) as err:
        encode_dataset(
            source,
            source_format(source),
            renderer,
            mode="sft",
            max_length=4,
            overlong_policy="drop",
        )
    message = str(err.value)
    assert "d.jsonl: no samples left after filtering" in message
    assert "dropped_overlong 3" in message and "max_length" in message
