"""``native`` (the tokenizer's own chat template) and ``auto``."""

from __future__ import annotations

import warnings

import pytest

from autotrain_pl.errors import AutotrainError
from autotrain_pl.rendering import (
    ChatMLRenderer,
    Message,
    NativeRenderer,
    TrainOnWhat,
    add_missing_special_tokens,
    get_renderer,
    renderer_class,
)

# Moves the system prompt into the last user turn (as Mistral v0.3 does): not prefix-stable.
SYSTEM_IN_LAST_USER = (
    "{% set system = messages[0]['content'] if messages[0]['role'] == 'system' else '' %}"
    "{% for message in messages if message['role'] != 'system' %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' }}{% if loop.last and system %}"
    "{{ system + '\\n\\n' }}{% endif %}{{ message['content'] + '[/INST]' }}"
    "{% else %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}"
)
# Its generation prompt is not how it opens an assistant turn in the history.
THINKING_PROMPT = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content']"
    " + '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n<think>\\n' }}{% endif %}"
)


def dicts(messages):
    return [{"role": m.role, "content": m.content} for m in messages]


@pytest.fixture(params=["plain", "generation"])
def native(request, tokenizer, chatml_templates):
    plain, generation = chatml_templates
    tokenizer.chat_template = plain if request.param == "plain" else generation
    return get_renderer("native", tokenizer)


def test_prefix_property_and_prompt_tokens_equal_apply_chat_template(native, conversation):
    tok = native.tokenizer
    example = native.build_supervised_example(conversation)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # this template's boundaries are on special tokens
        for k in (2, 4):
            prompt = native.build_generation_prompt(conversation[:k])
            expected = tok.apply_chat_template(
                dicts(conversation[:k]), add_generation_prompt=True, return_dict=False
            )
            assert prompt == list(expected)
            assert example.input_ids[: len(prompt)] == prompt
    assert example.input_ids == list(
        tok.apply_chat_template(dicts(conversation), return_dict=False)
    )


def test_assistant_tokens_get_weight(native, conversation):
    tok = native.tokenizer
    example = native.build_supervised_example(conversation, TrainOnWhat.ALL_ASSISTANT_MESSAGES)
    trained = [i for i, w in zip(example.input_ids, example.loss_weights, strict=True) if w]
    text = tok.decode(trained, skip_special_tokens=False)
    assert text.startswith("It is 42.<|im_end|>")
    assert "Blue, like the sky.<|im_end|>" in text
    assert "<|im_start|>" not in text and "What is 12" not in text


def test_generation_markers_match_assistant_tokens_mask(tokenizer, chatml_templates, conversation):
    tokenizer.chat_template = chatml_templates[1]
    renderer = get_renderer("native", tokenizer)
    example = renderer.build_supervised_example(conversation, TrainOnWhat.ALL_ASSISTANT_MESSAGES)
    reference = tokenizer.apply_chat_template(
        dicts(conversation), return_dict=True, return_assistant_tokens_mask=True
    )
    assert example.input_ids == list(reference["input_ids"])
    assert [int(w > 0) for w in example.loss_weights] == list(reference["assistant_masks"])
    # The newline after an assistant's <|im_end|> lies outside {% generation %}: not trained.
    ends = [
        i
        for i, t in enumerate(example.input_ids)
        if t == tokenizer.convert_tokens_to_ids("<|im_end|>") and example.loss_weights[i]
    ]
    assert len(ends) == 2
    assert all(example.loss_weights[i + 1] == 0.0 for i in ends if i + 1 < len(example.input_ids))


def test_without_markers_the_turn_end_and_newline_are_trained(tokenizer, chatml_templates):
    tokenizer.chat_template = chatml_templates[0]
    renderer = get_renderer("native", tokenizer)
    example = renderer.build_supervised_example([Message("user", "Hi"), Message("assistant", "Yo")])
    trained = [i for i, w in zip(example.input_ids, example.loss_weights, strict=True) if w]
    assert tokenizer.decode(trained, skip_special_tokens=False) == "Yo<|im_end|>\n"


def test_headers_are_scaffolding(native, conversation):
    example = native.build_supervised_example(conversation, TrainOnWhat.ALL_MESSAGES)
    start = native.tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert all(
        w == 0.0 for t, w in zip(example.input_ids, example.loss_weights, strict=True) if t == start
    )
    everything = native.build_supervised_example(conversation, TrainOnWhat.ALL_TOKENS)
    assert set(everything.loss_weights) == {1.0}


def test_stop_sequences_and_template(native):
    tok = native.tokenizer
    assert native.stop_sequences() == [
        [tok.convert_tokens_to_ids("<|im_end|>")],
        [tok.eos_token_id],
    ]
    assert native.chat_template() == tok.chat_template


def test_template_that_rewrites_history_is_rejected(tokenizer):
    tokenizer.chat_template = SYSTEM_IN_LAST_USER
    renderer = get_renderer("native", tokenizer)
    messages = [
        Message("system", "S"),
        Message("user", "a"),
        Message("assistant", "b"),
        Message("user", "c"),
        Message("assistant", "d"),
    ]
    with pytest.raises(AutotrainError, match="cannot be rendered message by message"):
        renderer.build_supervised_example(messages)


def test_generation_prompt_must_open_assistant_turns(tokenizer):
    tokenizer.chat_template = THINKING_PROMPT
    renderer = get_renderer("native", tokenizer)
    with pytest.raises(AutotrainError, match="not with its generation prompt"):
        renderer.build_supervised_example([Message("user", "a"), Message("assistant", "b")])


def test_template_errors_are_autotrain_errors(tokenizer):
    tokenizer.chat_template = "{{ raise_exception('roles must alternate') }}"
    with pytest.raises(AutotrainError, match="roles must alternate"):
        get_renderer("native", tokenizer).build_generation_prompt([Message("user", "a")])


def test_native_needs_a_template(tokenizer):
    with pytest.raises(AutotrainError, match="needs a tokenizer with a chat_template"):
        get_renderer("native", tokenizer)


def test_auto_picks_native_or_chatml(tokenizer, chatml_templates):
    assert type(get_renderer("auto", tokenizer)) is ChatMLRenderer
    assert renderer_class("auto").resolve(tokenizer) is ChatMLRenderer
    tokenizer.chat_template = chatml_templates[0]
    assert type(get_renderer("auto", tokenizer, token_weights={"user": 0.5})) is NativeRenderer
    assert get_renderer("auto", tokenizer).token_weights == {}
    assert add_missing_special_tokens(tokenizer, "auto") == []


def test_render_completion_drops_the_prompt(native, conversation):
    rendered = native.render_completion(conversation[:-1], conversation[-1:], weight=1.0)
    text = native.tokenizer.decode(rendered.input_ids, skip_special_tokens=False)
    assert text == "Blue, like the sky.<|im_end|>\n"
    parts = native.render_message(len(conversation) - 1, conversation)
    assert parts.header == "<|im_start|>assistant\n"
    assert native.assistant_header(conversation[:-1]) == parts.header


def test_boundary_merges_give_the_serving_tokens(tokenizer, conversation):
    """Vicuna's turns meet at spaces ("... USER: hi ASSISTANT:"), where BPE merges across them:
    prompts are still apply_chat_template's tokens, and the trained turn starts with them."""
    tokenizer.chat_template = get_renderer("vicuna", tokenizer).chat_template()
    renderer = get_renderer("native", tokenizer)
    example = renderer.build_supervised_example(conversation)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prompt = renderer.build_generation_prompt(conversation[:4])
    assert prompt == list(
        tokenizer.apply_chat_template(
            dicts(conversation[:4]), add_generation_prompt=True, return_dict=False
        )
    )
    assert example.input_ids[: len(prompt)] == prompt
    text = tokenizer.decode(example.input_ids, skip_special_tokens=False)
    assert text == tokenizer.apply_chat_template(dicts(conversation), tokenize=False)
    separately = get_renderer("vicuna", tokenizer).encode(" " + conversation[3].content)
    assert prompt[-len(separately) - 3 :] != separately, "the merge this test is about happened"
