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


# -- the "no samples left" hint says what would help under the policy in use ----------------------


def _chat(question_words: int, answer_words: int) -> dict:
    return {"messages": [
        {"role": "user", "content": " ".join(["ask"] * question_words)},
        {"role": "assistant", "content": " ".join(["yes"] * answer_words)},
    ]}  # fmt: skip


def _encode(tmp_path, renderer, rows, **options):
    source = read_source(str(write_jsonl(rows, tmp_path / "d.jsonl")))
    return encode_dataset(source, source_format(source), renderer, mode="sft", **options)


def _empty_error(tmp_path, renderer, rows, **options) -> str:
    with pytest.raises(AutotrainError) as err:
        _encode(tmp_path, renderer, rows, **options)
    message = str(err.value)
    assert "no samples left after filtering" in message and "\n" not in message
    return message


def _prompt_length(renderer, row) -> int:
    from autotrain_pl.rendering import Message

    prompt = [Message(**m) for m in row["messages"][:-1]]
    return len(renderer.build_generation_prompt(prompt))


def test_truncate_that_cuts_every_trained_token_asks_for_a_longer_max_length(tmp_path, renderer):
    rows = [_chat(30, 2)] * 3  # a long question: cutting at max_length leaves only prompt
    max_length = _prompt_length(renderer, rows[0]) - 2
    message = _empty_error(tmp_path, renderer, rows, max_length=max_length,
                           overlong_policy="truncate")
    assert f"raise max_length (now {max_length})" in message
    assert "overlong_policy" not in message  # truncate is already the policy
    # The hint helps: a max_length that holds the prompt and reply keeps every row.
    _, stats = _encode(tmp_path, renderer, rows, max_length=max_length * 4)
    assert stats.samples == 3


def test_drop_suggests_truncate_only_when_truncating_keeps_trained_tokens(tmp_path, renderer):
    long_replies = [_chat(2, 40)] * 3  # the reply starts early: a cut keeps part of it
    max_length = _prompt_length(renderer, long_replies[0]) + 4
    message = _empty_error(tmp_path, renderer, long_replies, max_length=max_length,
                           overlong_policy="drop")
    assert f"raise max_length (now {max_length})" in message
    assert "overlong_policy=truncate to keep 3 of them" in message
    _, stats = _encode(tmp_path, renderer, long_replies, max_length=max_length,
                       overlong_policy="truncate")
    assert stats.samples == 3  # following the hint works

    long_prompts = [_chat(40, 2)] * 3  # the cut falls inside the prompt: truncate cannot help
    max_length = _prompt_length(renderer, long_prompts[0]) - 2
    message = _empty_error(tmp_path, renderer, long_prompts, max_length=max_length,
                           overlong_policy="drop")
    assert "raise max_length" in message and "overlong_policy" not in message
    _empty_error(tmp_path, renderer, long_prompts, max_length=max_length,
                 overlong_policy="truncate")  # indeed: truncation keeps nothing either


def test_hints_name_options_as_the_running_command_types_them(tmp_path, renderer):
    from autotrain_pl.data.validation import DATA_OPTIONS, data_option_spelling, spell_options

    rows = [_chat(2, 40)] * 2
    max_length = _prompt_length(renderer, rows[0]) + 4
    fit = data_option_spelling("data.init_args.")
    assert set(fit) == set(DATA_OPTIONS)
    with spell_options(fit):
        message = _empty_error(tmp_path, renderer, rows, max_length=max_length,
                               overlong_policy="drop")
    assert "raise data.init_args.max_length" in message
    assert "set data.init_args.overlong_policy=truncate" in message
    # A command without the option (aitrain eval has no --overlong_policy) gets no hint about it.
    with spell_options({"max_length": "--max_length", "overlong_policy": ""}):
        message = _empty_error(tmp_path, renderer, rows, max_length=max_length,
                               overlong_policy="drop")
    assert "raise --max_length" in message and "overlong_policy" not in message
    # Outside the context the Python keywords are back.
    assert "raise max_length" in _empty_error(tmp_path, renderer, rows, max_length=max_length,
                                              overlong_policy="drop")


def test_option_setting_quotes_mappings_for_a_shell():
    import shlex

    from autotrain_pl.data.validation import option_setting, spell_options

    mapping = {"question": "prompt", "it's": "x"}
    assert option_setting("column_mapping", mapping) == f"column_mapping={json.dumps(mapping)}"
    with spell_options({"column_mapping": "--column_mapping", "row_format": "--row_format"}):
        typed = option_setting("column_mapping", mapping)
        assert option_setting("row_format", "messages") == "--row_format=messages"
    flag, value = shlex.split(typed)[0].split("=", 1)
    assert flag == "--column_mapping" and json.loads(value) == mapping  # what the shell passes
