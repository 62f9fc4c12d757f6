"""Property test: any conversation renders to ids and weights of equal length, prefix-consistently,
and decodes to its chat template's text."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autotrain_pl.rendering import Message, TrainOnWhat

# Unicode-ish text: letters, digits, whitespace and newlines, accents, CJK, emoji, and any
# character outside the surrogates.
TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(list("abcXYZ 0123456789\n\t.,?!'\"<>|[]/#:é中😀🎉👋🏽")),
        st.characters(exclude_categories=("Cs",)),
    ),
    max_size=24,
)


@st.composite
def conversations(draw):
    messages = []
    if draw(st.booleans()):
        messages.append(Message("system", draw(TEXT)))
    for _ in range(draw(st.integers(1, 3))):
        messages.append(Message("user", draw(TEXT)))
        weight = draw(st.none() | st.sampled_from([0.0, 0.25, 1.0]))
        messages.append(Message("assistant", draw(TEXT), weight=weight))
    return messages


@settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(messages=conversations(), train_on=st.sampled_from(list(TrainOnWhat)))
def test_random_conversations(renderer, messages, train_on):
    example = renderer.build_supervised_example(messages, train_on)
    assert len(example.input_ids) == len(example.loss_weights)
    assert all(0.0 <= w <= 1.0 for w in example.loss_weights)
    prompt = renderer.build_generation_prompt(messages[:-1])  # the last message is the reply
    assert example.input_ids[: len(prompt)] == prompt
    completion = renderer.render_completion(messages[:-1], messages[-1:])
    assert prompt + completion.input_ids == example.input_ids
    assert len(completion.input_ids) == len(completion.loss_weights)


@settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(messages=conversations())
def test_random_conversations_decode_to_the_chat_template_text(renderer, messages):
    tok = renderer.tokenizer
    dicts = [{"role": m.role, "content": m.content} for m in messages]
    example = renderer.build_supervised_example(messages)
    expected = tok.apply_chat_template(
        dicts, chat_template=renderer.chat_template(), tokenize=False
    )
    assert tok.decode(example.input_ids, skip_special_tokens=False) == expected
    prompt = renderer.build_generation_prompt(messages[:-1])
    expected_prompt = tok.apply_chat_template(
        dicts[:-1],
        chat_template=renderer.chat_template(),
        tokenize=False,
        add_generation_prompt=True,
    )
    assert tok.decode(prompt, skip_special_tokens=False) == expected_prompt
