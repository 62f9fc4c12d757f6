"""Row formats: auto-detection, override, ambiguity, column mapping, conversion to records."""

from __future__ import annotations

import json

import pytest

from autotrain_pl.data import TextDocument, detect_row_format, load_conversations, write_jsonl
from autotrain_pl.errors import AutotrainError
from autotrain_pl.rendering.messages import Conversation, Message, Preference

FORMAT_ROWS = {
    "messages": {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
        ],
        "reference": "Hello",
    },
    "prompt_completion": {"prompt": "Hi", "completion": "Hello", "answer": "Hello"},
    "text": {"text": "Once upon a time."},
    "alpaca": {"instruction": "Translate", "input": "Hallo", "output": "Hello"},
    "sharegpt": {
        "conversations": [
            {"from": "system", "value": "Be brief."},
            {"from": "human", "value": "Hi"},
            {"from": "gpt", "value": "Hello"},
        ]
    },
    "preference": {"prompt": "Hi", "chosen": "Hello", "rejected": "Go away"},
}


@pytest.mark.parametrize("name", list(FORMAT_ROWS))
def test_each_format_is_detected_and_converted(tmp_path, name):
    path = write_jsonl([FORMAT_ROWS[name]] * 2, tmp_path / f"{name}.jsonl")
    assert detect_row_format(list(FORMAT_ROWS[name]), "x").name == name
    record = load_conversations(str(path))[0]
    if name == "text":
        assert record == TextDocument("Once upon a time.", {})
    elif name == "preference":
        assert record == Preference(
            [Message("user", "Hi")],
            [Message("assistant", "Hello")],
            [Message("assistant", "Go away")],
            {},
        )
    else:
        assert isinstance(record, Conversation)
        assert record.messages[-1] == Message("assistant", "Hello")
        assert record.messages[-2].role == "user"


def test_extra_columns_become_metadata(tmp_path):
    path = write_jsonl([FORMAT_ROWS["messages"]], tmp_path / "m.jsonl")
    assert load_conversations(str(path))[0].metadata == {"reference": "Hello"}
    path = write_jsonl([FORMAT_ROWS["prompt_completion"]], tmp_path / "pc.jsonl")
    assert load_conversations(str(path))[0].metadata == {"answer": "Hello"}


def test_alpaca_joins_input_and_sharegpt_maps_roles(tmp_path):
    alpaca = load_conversations(str(write_jsonl([FORMAT_ROWS["alpaca"]], tmp_path / "a.jsonl")))
    assert alpaca[0].messages[0] == Message("user", "Translate\n\nHallo")
    share = load_conversations(str(write_jsonl([FORMAT_ROWS["sharegpt"]], tmp_path / "s.jsonl")))
    assert [m.role for m in share[0].messages] == ["system", "user", "assistant"]


def test_prompt_completion_accepts_message_lists(tmp_path):
    row = {
        "prompt": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}],
        "completion": [{"role": "assistant", "content": "A"}],
    }
    record = load_conversations(str(write_jsonl([row], tmp_path / "pc.jsonl")))[0]
    assert [m.role for m in record.messages] == ["system", "user", "assistant"]


def test_preference_without_prompt_column_takes_the_shared_prefix(tmp_path):
    user = {"role": "user", "content": "Q"}
    row = {
        "chosen": [user, {"role": "assistant", "content": "good"}],
        "rejected": [user, {"role": "assistant", "content": "bad"}],
    }
    record = load_conversations(str(write_jsonl([row], tmp_path / "p.jsonl")))[0]
    assert record.prompt == [Message("user", "Q")]
    assert record.chosen == [Message("assistant", "good")]


def test_override_row_format_and_its_missing_columns():
    columns = ["messages", "text"]
    assert detect_row_format(columns, "x", row_format="text").name == "text"
    with pytest.raises(AutotrainError, match="row_format='alpaca' needs column.*found: messages"):
        detect_row_format(columns, "data.jsonl", row_format="alpaca")
    with pytest.raises(AutotrainError, match="row_format='nope' is unknown"):
        detect_row_format(columns, "x", row_format="nope")


def test_ambiguous_columns_name_the_candidates():
    with pytest.raises(AutotrainError) as err:
        detect_row_format(["messages", "text", "id"], "data.jsonl")
    message = str(err.value)
    assert "data.jsonl" in message and "messages, text, id" in message
    assert "(messages, text)" in message and "row_format" in message


def test_unknown_columns_list_found_and_expected(tmp_path):
    path = write_jsonl([{"question": "Q", "response": "A"}], tmp_path / "qa.jsonl")
    with pytest.raises(AutotrainError) as err:
        load_conversations(str(path))
    message = str(err.value)
    assert str(path) in message and "found: question, response" in message
    assert "prompt+completion" in message and "column_mapping" in message


def test_column_mapping_renames_before_detection(tmp_path):
    path = write_jsonl([{"question": "Q", "response": "A"}], tmp_path / "qa.jsonl")
    mapping = {"question": "prompt", "response": "completion"}
    record = load_conversations(str(path), column_mapping=mapping)[0]
    assert record.messages == [Message("user", "Q"), Message("assistant", "A")]
    with pytest.raises(AutotrainError, match="renames 'missing', but there is no such column"):
        load_conversations(str(path), column_mapping={"missing": "prompt"})


def test_column_mapping_skips_sources_already_in_the_target_schema(tmp_path):
    path = write_jsonl([{"prompt": "Q", "completion": "A"}], tmp_path / "valid.jsonl")
    mapping = {"question": "prompt", "response": "completion"}
    assert len(load_conversations(str(path), column_mapping=mapping)) == 1


@pytest.mark.parametrize(
    ("spelling", "mapping", "row_format"),
    [
        ({}, "column_mapping", "row_format"),  # Python: the keyword arguments
        ("data.init_args.", "data.init_args.column_mapping", "data.init_args.row_format"),  # fit
        ("--", "--column_mapping", "--row_format"),  # aitrain eval
    ],
    ids=["python", "fit", "eval"],
)
def test_unknown_columns_hint_names_the_options_as_typed(tmp_path, spelling, mapping, row_format):
    from autotrain_pl.data.validation import data_option_spelling, spell_options

    path = write_jsonl([{"question": "Q", "answer": "A"}], tmp_path / "qa.jsonl")
    spelled = data_option_spelling(spelling) if isinstance(spelling, str) else spelling
    with spell_options(spelled), pytest.raises(AutotrainError) as err:
        load_conversations(str(path))
    message = str(err.value)
    assert f"rename columns with {mapping} (e.g. {mapping}=" in message
    assert message.endswith(f"or set {row_format}")
    # The example mapping in the hint is one the reader accepts for these columns.
    example = message.split(f"{mapping}=", 1)[1].split(") or set")[0].strip("'")
    record = load_conversations(str(path), column_mapping=json.loads(example))[0]
    assert record.messages == [Message("user", "Q"), Message("assistant", "A")]
