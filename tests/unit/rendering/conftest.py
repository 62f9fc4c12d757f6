"""Fixtures for the rendering tests: renderers for every chat format over private copies of the
builtin tokenizer (``builtin_tokenizer`` comes from ``tests/conftest.py``)."""

from __future__ import annotations

import copy

import pytest

from autotrain_pl.rendering import Message, get_renderer

# A ChatML template without {% generation %} markers (the common hub form) ...
CHATML_PLAIN = (
    "{% for message in messages %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# ... and one with them (as in SmolLM/TRL templates): only content and <|im_end|> are generated.
CHATML_GENERATION = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['role'] == 'assistant' %}"
    "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}"
    "{% else %}{{ message['content'] + '<|im_end|>' + '\\n' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# Named formats, plus the tokenizer's own template (with and without generation markers) and auto.
FORMATS = [
    "chatml",
    "alpaca",
    "llama2",
    "llama3",
    "mistral",
    "vicuna",
    "zephyr",
    "native",
    "native-generation",
    "auto",
]


@pytest.fixture
def tokenizer(builtin_tokenizer):
    """A private copy of the builtin tokenizer that a test may change."""
    return copy.deepcopy(builtin_tokenizer)


def pytest_generate_tests(metafunc):
    """Every test that takes ``fmt`` runs once per chat format."""
    if "fmt" in metafunc.fixturenames:
        metafunc.parametrize("fmt", FORMATS)


@pytest.fixture
def make_renderer(builtin_tokenizer):
    """``make_renderer(fmt, token_weights=None)``: a FORMATS entry on its own tokenizer copy."""

    def make(fmt: str, token_weights=None):
        tok = copy.deepcopy(builtin_tokenizer)
        if fmt == "native":
            tok.chat_template = CHATML_PLAIN
        elif fmt == "native-generation":
            tok.chat_template, fmt = CHATML_GENERATION, "native"
        return get_renderer(fmt, tok, token_weights=token_weights)

    return make


@pytest.fixture
def renderer(make_renderer, fmt):
    return make_renderer(fmt)


@pytest.fixture
def chatml_templates():
    """The two ChatML templates: ``(plain, with {% generation %} markers)``."""
    return CHATML_PLAIN, CHATML_GENERATION


@pytest.fixture
def conversation():
    """Multi-turn with a system prompt; every content is distinct so decoded weights can be told apart."""
    return [
        Message("system", "You answer tersely."),
        Message("user", "What is 12 plus 30?"),
        Message("assistant", "It is 42."),
        Message("user", "Name a colour."),
        Message("assistant", "Blue, like the sky."),
    ]
