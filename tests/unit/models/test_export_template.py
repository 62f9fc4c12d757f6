"""An export's tokenizer gives serving the tokens training used, and records where replies end.

For every built-in chat format, on random multi-turn histories (system prompts, odd whitespace,
blank lines, non-ASCII), ``apply_chat_template(history, add_generation_prompt=True)`` on the
*exported* tokenizer equals ``build_generation_prompt(history)`` token for token.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer, GenerationConfig

from autotrain_pl.models import export_model, load_model, load_tokenizer
from autotrain_pl.rendering import add_missing_special_tokens, get_renderer

FORMATS = ["chatml", "alpaca", "llama2", "llama3", "vicuna", "zephyr", "mistral"]
# The end-of-turn token serving must stop at, and the eos_token the family's instruct models use.
END_OF_TURN = {"chatml": "<|im_end|>", "llama3": "<|eot_id|>"}

# Pieces that tokenizers merge across template boundaries: runs of spaces and newlines, role words.
TEXT = st.lists(
    st.one_of(
        st.sampled_from(["ASSISTANT", "USER", "  ", "\n\n", " \n", "\t", "Hi", "1 2"]),
        st.text(alphabet=st.one_of(st.sampled_from(list("ab Z09 \n.,?!:#*-é中😀👋🏽")),
                                   st.characters(exclude_categories=("Cs",))), max_size=8),
    ),
    max_size=4,
).map("".join)


@st.composite
def histories(draw):
    """A history that ends with a user message, as a prompt for the next reply does."""
    messages = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(TEXT)})
    for turn in range(draw(st.integers(1, 3))):
        if turn:
            messages.append({"role": "assistant", "content": draw(TEXT)})
        messages.append({"role": "user", "content": draw(TEXT)})
    return messages


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Per format: the training renderer and the tokenizer loaded back from its export."""
    out = {}
    for fmt in FORMATS:
        tokenizer = load_tokenizer("builtin:tiny")
        add_missing_special_tokens(tokenizer, fmt)
        renderer = get_renderer(fmt, tokenizer)
        model = load_model("builtin:tiny", vocab_size=len(tokenizer))
        path = export_model(model, tokenizer, tmp_path_factory.mktemp(fmt) / "export",
                            renderer=renderer, base_model="builtin:tiny")
        out[fmt] = (renderer, path, AutoTokenizer.from_pretrained(path))
    return out


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories())
def test_exported_template_gives_the_prompt_tokens(fmt, exported, history):
    renderer, _, served = exported[fmt]
    prompt = renderer.build_generation_prompt(history)
    assert list(served.apply_chat_template(
        history, add_generation_prompt=True, return_dict=False
    )) == prompt
    reply = [*history, {"role": "assistant", "content": "Sure."}]
    assert renderer.build_supervised_example(reply).input_ids[: len(prompt)] == prompt


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_records_where_replies_end(fmt, exported):
    renderer, path, served = exported[fmt]
    training_tokenizer = renderer.tokenizer
    end_of_turn = END_OF_TURN.get(fmt, training_tokenizer.eos_token)
    end_id = training_tokenizer.convert_tokens_to_ids(end_of_turn)
    generation = GenerationConfig.from_pretrained(path)
    assert generation.eos_token_id[0] == end_id
    assert training_tokenizer.eos_token_id in generation.eos_token_id
    assert generation.pad_token_id == training_tokenizer.pad_token_id
    assert served.eos_token == end_of_turn
    assert json.loads((path / "config.json").read_text())["eos_token_id"] == end_id
    assert training_tokenizer.eos_token == "</s>", "exporting left the training tokenizer alone"
    assert [[i] for i in renderer.stop_token_ids()] == renderer.stop_sequences()
    assert set(renderer.stop_token_ids()) <= set(generation.eos_token_id)
