"""The rendering contract, checked for every chat format (``fmt`` is parametrized in conftest)."""

from __future__ import annotations

import pytest

from autotrain_pl.errors import AutotrainError
from autotrain_pl.rendering import Message, TrainOnWhat

# Formats that allow a system message only as the first message.
SYSTEM_FIRST_ONLY = {"llama2", "mistral", "vicuna"}
# Formats that cannot render a "tool" message.
NO_TOOL_ROLE = {"alpaca", "llama2", "mistral", "vicuna", "zephyr"}
STOP_TOKENS = {
    "chatml": ["<|im_end|>"],
    "auto": ["<|im_end|>"],  # the builtin tokenizer has no chat template: auto is chatml
    "llama3": ["<|eot_id|>", "</s>"],
    "native": ["<|im_end|>", "</s>"],
    "native-generation": ["<|im_end|>", "</s>"],
}


def text_where(renderer, example, keep) -> str:
    ids = [i for i, w in zip(example.input_ids, example.loss_weights, strict=True) if keep(w)]
    return renderer.tokenizer.decode(ids, skip_special_tokens=False)


def serving_tokens(renderer, messages, add_generation_prompt=False) -> list[int]:
    """What ``apply_chat_template`` returns with the renderer's own template (as an export has)."""
    return list(
        renderer.tokenizer.apply_chat_template(
            [m.to_dict() for m in messages],
            chat_template=renderer.chat_template(),
            add_generation_prompt=add_generation_prompt,
            return_dict=False,
        )
    )


def assistant_indices(messages):
    return [i for i, m in enumerate(messages) if m.role == "assistant"]


def first_stop(token_ids, stops):
    for position in range(len(token_ids)):
        for stop in stops:
            if token_ids[position : position + len(stop)] == stop:
                return position, stop
    return None, None


def test_prompts_are_serving_tokens_and_start_each_turns_example(renderer, conversation):
    """Every turn's prompt is what apply_chat_template gives; the example trained on that turn
    starts with it; the history before the last turn is tokenized as serving tokenizes it."""
    example = renderer.build_supervised_example(conversation)
    assert len(example.input_ids) == len(example.loss_weights)
    turns = assistant_indices(conversation)
    for k in turns:
        prompt = renderer.build_generation_prompt(conversation[:k])
        assert prompt == serving_tokens(renderer, conversation[:k], add_generation_prompt=True)
        turn_example = renderer.build_supervised_example(conversation[: k + 1])
        assert turn_example.input_ids[: len(prompt)] == prompt
        assert len(turn_example.input_ids) > len(prompt)
        if k != turns[-1]:
            history = serving_tokens(renderer, conversation[: k + 1])
            assert example.input_ids[: len(history)] == history


def test_train_on_changes_weights_only(renderer, conversation):
    reference = renderer.build_supervised_example(conversation)
    for mode in TrainOnWhat:
        example = renderer.build_supervised_example(conversation, mode.value)
        assert example.input_ids == reference.input_ids
        assert len(example.loss_weights) == len(example.input_ids)
        assert all(isinstance(w, float) and 0.0 <= w <= 1.0 for w in example.loss_weights)


def test_end_of_turn_token_carries_weight(renderer, conversation):
    stops = renderer.stop_sequences()
    turns = assistant_indices(conversation)
    for k in turns:
        start = len(renderer.build_generation_prompt(conversation[:k]))
        for mode in (TrainOnWhat.ALL_ASSISTANT_MESSAGES, TrainOnWhat.LAST_ASSISTANT_MESSAGE):
            example = renderer.build_supervised_example(conversation[: k + 1], mode)
            position, stop = first_stop(example.input_ids[start:], stops)
            assert position is not None, f"assistant turn {k} has no stop sequence"
            reply_and_stop = range(start, start + position + len(stop))
            assert all(example.loss_weights[i] == 1.0 for i in reply_and_stop)
    # In a whole conversation, an earlier turn's stop token is trained only with all turns.
    all_turns = renderer.build_supervised_example(conversation, TrainOnWhat.ALL_ASSISTANT_MESSAGES)
    last_turn = renderer.build_supervised_example(conversation, TrainOnWhat.LAST_ASSISTANT_MESSAGE)
    for k in turns[:-1]:
        history = serving_tokens(renderer, conversation[: k + 1])
        stop_at = max(i for i, t in enumerate(history) if [t] in stops)
        assert all_turns.loss_weights[stop_at] == 1.0
        assert last_turn.loss_weights[stop_at] == 0.0


def test_stop_sequences(fmt, renderer):
    tok = renderer.tokenizer
    expected = [[tok.convert_tokens_to_ids(t)] for t in STOP_TOKENS.get(fmt, ["</s>"])]
    assert renderer.stop_sequences() == expected
    assert renderer.stop_token_ids() == [s[0] for s in expected]


def test_parse_response_round_trips(renderer, conversation):
    for k in assistant_indices(conversation):
        start = len(renderer.build_generation_prompt(conversation[:k]))
        reply = renderer.build_supervised_example(conversation[: k + 1]).input_ids[start:]
        assert renderer.parse_response(reply) == Message("assistant", conversation[k].content)
        assert renderer.parse_response(reply, strict=True).content == conversation[k].content
    # A reply cut off before its stop sequence is not a complete message under strict=True.
    content_only = renderer.encode(" " + conversation[-1].content)
    assert renderer.parse_response(content_only).content == conversation[-1].content
    with pytest.raises(AutotrainError, match="no stop sequence"):
        renderer.parse_response(content_only, strict=True)


def test_system_message(fmt, renderer, conversation):
    with_system = renderer.build_supervised_example(conversation)
    without = renderer.build_supervised_example(conversation[1:])
    decoded = renderer.tokenizer.decode(with_system.input_ids, skip_special_tokens=False)
    assert "You answer tersely." in decoded
    assert "You answer tersely." not in renderer.tokenizer.decode(without.input_ids)
    late_system = [*conversation[:3], Message("system", "Now be verbose."), *conversation[3:]]
    if fmt in SYSTEM_FIRST_ONLY:
        with pytest.raises(AutotrainError, match="system message only as the first"):
            renderer.build_supervised_example(late_system)
    else:
        example = renderer.build_supervised_example(late_system)
        assert "Now be verbose." in renderer.tokenizer.decode(example.input_ids)


def test_unsupported_role_is_a_clear_error(fmt, renderer, conversation):
    with_tool = [*conversation[:3], Message("tool", "42"), *conversation[3:]]
    if fmt in NO_TOOL_ROLE:
        with pytest.raises(AutotrainError, match="role 'tool'"):
            renderer.build_supervised_example(with_tool)
    else:
        renderer.build_supervised_example(with_tool)


def test_train_on_modes(renderer, conversation):
    def trained(mode):
        return text_where(renderer, renderer.build_supervised_example(conversation, mode), bool)

    last = trained(TrainOnWhat.LAST_ASSISTANT_MESSAGE)
    assert "Blue, like the sky." in last and "It is 42." not in last
    assert "Name a colour." not in last

    assistants = trained(TrainOnWhat.ALL_ASSISTANT_MESSAGES)
    assert "Blue, like the sky." in assistants and "It is 42." in assistants
    assert "What is 12 plus 30?" not in assistants and "You answer tersely." not in assistants

    messages = trained(TrainOnWhat.ALL_MESSAGES)
    for message in conversation:
        assert message.content in messages

    all_messages = renderer.build_supervised_example(conversation, TrainOnWhat.ALL_MESSAGES)
    assert 0.0 in all_messages.loss_weights, "ALL_MESSAGES must leave the scaffolding untrained"
    all_tokens = renderer.build_supervised_example(conversation, TrainOnWhat.ALL_TOKENS)
    assert set(all_tokens.loss_weights) == {1.0}, "ALL_TOKENS trains headers and BOS too"

    order = [
        TrainOnWhat.LAST_ASSISTANT_MESSAGE,
        TrainOnWhat.ALL_ASSISTANT_MESSAGES,
        TrainOnWhat.ALL_MESSAGES,
        TrainOnWhat.ALL_TOKENS,
    ]
    weights = [renderer.build_supervised_example(conversation, m).loss_weights for m in order]
    for fewer, more in zip(weights, weights[1:], strict=False):
        assert all(a <= b for a, b in zip(fewer, more, strict=True))


def test_customized_uses_message_weights(renderer, conversation):
    weighted = [
        conversation[0],
        Message("user", conversation[1].content, weight=0.3),
        Message("assistant", conversation[2].content, weight=1.0),
        *conversation[3:],
    ]
    example = renderer.build_supervised_example(weighted, TrainOnWhat.CUSTOMIZED)
    assert set(example.loss_weights) == {0.0, 0.3, 1.0}
    assert "What is 12 plus 30?" in text_where(renderer, example, lambda w: w == 0.3)
    trained = text_where(renderer, example, lambda w: w == 1.0)
    assert "It is 42." in trained and "Blue, like the sky." not in trained


def test_fractional_token_weights_and_message_override(fmt, make_renderer, conversation):
    renderer = make_renderer(fmt, token_weights={"system": 0.0, "user": 0.1, "assistant": 1.0})
    example = renderer.build_supervised_example(conversation)
    users = text_where(renderer, example, lambda w: w == 0.1)
    assert "What is 12 plus 30?" in users and "Name a colour." in users
    assistants = text_where(renderer, example, lambda w: w == 1.0)
    assert "It is 42." in assistants and "Blue, like the sky." in assistants
    assert "You answer tersely." not in text_where(renderer, example, bool)

    overridden = [
        *conversation[:2],
        Message("assistant", "It is 42.", weight=0.5),
        *conversation[3:],
    ]
    example = renderer.build_supervised_example(overridden)
    assert "It is 42." in text_where(renderer, example, lambda w: w == 0.5)
    assert "It is 42." not in text_where(renderer, example, lambda w: w == 1.0)
    assert "Blue, like the sky." in text_where(renderer, example, lambda w: w == 1.0)


def test_render_completion_follows_the_generation_prompt(renderer, conversation):
    prompt, completion = conversation[:-1], conversation[-1:]
    full = renderer.build_supervised_example(conversation)
    generation_prompt = renderer.build_generation_prompt(prompt)
    rendered = renderer.render_completion(prompt, completion, weight=0.7)
    assert generation_prompt + rendered.input_ids == full.input_ids
    assert set(rendered.loss_weights) <= {0.0, 0.7} and 0.7 in rendered.loss_weights
    position, stop = first_stop(rendered.input_ids, renderer.stop_sequences())
    assert rendered.loss_weights[position : position + len(stop)] == [0.7] * len(stop)


def test_conversation_without_assistant_trains_nothing(renderer, conversation):
    example = renderer.build_supervised_example(conversation[:2])
    assert set(example.loss_weights) == {0.0}


def test_unknown_train_on_is_a_clear_error(renderer, conversation):
    with pytest.raises(AutotrainError, match="train_on='everything' is not known"):
        renderer.build_supervised_example(conversation, "everything")


@pytest.mark.parametrize("name", ["llama2", "mistral"])
def test_inst_formats_need_alternating_roles(make_renderer, name):
    renderer = make_renderer(name)
    with pytest.raises(AutotrainError, match="must alternate"):
        renderer.build_supervised_example([Message("user", "a"), Message("user", "b")])
    with pytest.raises(AutotrainError, match="must alternate"):
        renderer.build_supervised_example([Message("assistant", "a")])
    with pytest.raises(AutotrainError, match="after a user message"):
        renderer.build_generation_prompt([Message("user", "a"), Message("assistant", "b")])
    with pytest.raises(AutotrainError, match="needs a user message after the system"):
        renderer.build_generation_prompt([Message("system", "s")])


def test_plain_dicts_render_like_messages(renderer, conversation):
    dicts = [m.to_dict() for m in conversation]
    assert renderer.build_supervised_example(dicts) == renderer.build_supervised_example(
        conversation
    )
    assert renderer.build_generation_prompt(dicts[:-1]) == renderer.build_generation_prompt(
        conversation[:-1]
    )
    assert renderer.render_completion(dicts[:-1], dicts[-1:]) == renderer.render_completion(
        conversation[:-1], conversation[-1:]
    )
    with pytest.raises(AutotrainError, match="message 1 is .*'role' and 'content'"):
        renderer.build_generation_prompt([dicts[1], {"text": "hi"}])
    with pytest.raises(AutotrainError, match="must be a list of messages"):
        renderer.build_generation_prompt(dicts[1])


class WithoutOffsets:
    """A tokenizer that cannot report offsets, as Python ("slow") tokenizers cannot."""

    is_fast = False

    def __init__(self, tokenizer):
        self._tokenizer = tokenizer

    def __getattr__(self, name):
        return getattr(self._tokenizer, name)


def test_tokenizer_without_offsets_renders_piece_by_piece(make_renderer, conversation):
    fast = make_renderer("vicuna")
    slow = type(fast)(WithoutOffsets(fast.tokenizer))
    with pytest.warns(UserWarning, match="tokenized piece by piece"):
        example = slow.build_supervised_example(conversation)
    assert fast.tokenizer.decode(example.input_ids) == fast.tokenizer.decode(
        fast.build_supervised_example(conversation).input_ids
    )
    assert example.input_ids != fast.build_supervised_example(conversation).input_ids, (
        "vicuna's ' ASSISTANT' merges only when the text is tokenized as a whole"
    )
    trained = text_where(slow, example, bool)
    assert trained.strip() == conversation[-1].content + "</s>"
