"""Selecting chat formats by name or import path, and adding missing special tokens."""

from __future__ import annotations

import pytest
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

import autotrain_pl.rendering as rendering
from autotrain_pl.errors import AutotrainError
from autotrain_pl.rendering import (
    ChatMLRenderer,
    Llama3Renderer,
    Message,
    Renderer,
    add_missing_special_tokens,
    available_formats,
    get_renderer,
    register_renderer,
    renderer_class,
)
from autotrain_pl.rendering.registry import CHAT_FORMATS

BUILTIN = ["alpaca", "auto", "chatml", "llama2", "llama3", "mistral", "native", "vicuna", "zephyr"]


class ShoutRenderer(ChatMLRenderer):
    """A user's format, reachable by import path."""

    name = "shout"


def test_available_formats():
    assert set(BUILTIN) <= set(available_formats())
    assert available_formats() == sorted(available_formats())


def test_by_name(tokenizer):
    renderer = get_renderer("chatml", tokenizer, token_weights={"user": 0.1})
    assert isinstance(renderer, ChatMLRenderer) and renderer.token_weights == {"user": 0.1}
    assert type(get_renderer(" Llama3 ", tokenizer)) is Llama3Renderer
    for name in BUILTIN:
        cls = renderer_class(name)
        assert issubclass(cls, Renderer) and cls.name == name


def test_by_import_path(tokenizer):
    assert renderer_class("autotrain_pl.rendering.chatml.ChatMLRenderer") is ChatMLRenderer
    path = f"{__name__}.ShoutRenderer"
    renderer = get_renderer(path, tokenizer)
    assert type(renderer) is ShoutRenderer
    assert renderer.build_generation_prompt([Message("user", "hi")])


def test_unknown_name_lists_known_formats():
    with pytest.raises(AutotrainError) as err:
        renderer_class("chatmll")
    message = str(err.value)
    assert "\n" not in message and "chatml" in message
    for name in BUILTIN:
        assert name in message


@pytest.mark.parametrize(
    ("path", "match"),
    [
        ("no_such_pkg.mod.Renderer", "cannot import module"),
        ("autotrain_pl.rendering.chatml.Missing", "has no attribute"),
        ("autotrain_pl.rendering.messages.Message", "not a Renderer subclass"),
        ("", "non-empty"),
    ],
)
def test_bad_import_paths(path, match):
    with pytest.raises(AutotrainError, match=match):
        renderer_class(path)


def test_register_renderer():
    @register_renderer("test-shout")
    class Shout(ChatMLRenderer):
        name = ""

    try:
        assert renderer_class("test-shout") is Shout and Shout.name == "test-shout"
        assert "test-shout" in available_formats()
        with pytest.raises(AutotrainError, match="already registered"):
            register_renderer("test-shout")(ShoutRenderer)
        with pytest.raises(AutotrainError, match="contain no dot"):
            register_renderer("a.b")
    finally:
        CHAT_FORMATS.unregister("test-shout")
    assert "test-shout" not in available_formats()


def test_every_renderer_class_is_exported():
    for name in BUILTIN:
        cls = renderer_class(name)
        assert getattr(rendering, cls.__name__) is cls
        assert cls.__name__ in rendering.__all__


def test_required_special_tokens_are_class_level():
    assert ChatMLRenderer.required_special_tokens() == ("<|im_start|>", "<|im_end|>")
    assert Llama3Renderer.required_special_tokens() == Llama3Renderer.special_tokens
    assert renderer_class("zephyr").required_special_tokens() == ()


@pytest.fixture
def small_tokenizer():
    """A tiny GPT-2-style byte-level BPE tokenizer with BOS/EOS but no chat tokens."""
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(["hello there, how are you? I am fine."] * 20, trainer=trainer)
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>"
    )


def test_add_missing_special_tokens_adds_once(small_tokenizer):
    before = len(small_tokenizer)
    with pytest.raises(AutotrainError, match="lacks"):
        get_renderer("chatml", small_tokenizer).build_generation_prompt([Message("user", "hi")])
    assert add_missing_special_tokens(small_tokenizer, ChatMLRenderer) == [
        "<|im_start|>",
        "<|im_end|>",
    ]
    assert len(small_tokenizer) == before + 2  # the caller resizes embeddings to len(tokenizer)
    assert add_missing_special_tokens(small_tokenizer, ChatMLRenderer) == []
    assert add_missing_special_tokens(small_tokenizer, "chatml") == []
    im_start = small_tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert small_tokenizer.encode("<|im_start|>", add_special_tokens=False) == [im_start]
    assert "<|im_start|>" in small_tokenizer.all_special_tokens
    # llama3 needs four more; those already present are not added again.
    assert add_missing_special_tokens(small_tokenizer, "llama3") == list(
        Llama3Renderer.special_tokens
    )
    assert len(small_tokenizer) == before + 6

    renderer = get_renderer("chatml", small_tokenizer)
    conversation = [Message("user", "hello"), Message("assistant", "fine")]
    example = renderer.build_supervised_example(conversation)
    assert small_tokenizer.decode(example.input_ids) == (
        "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\nfine<|im_end|>\n"
    )
    start = len(renderer.build_generation_prompt(conversation[:1]))
    assert renderer.parse_response(example.input_ids[start:]).content == "fine"


def test_builtin_tokenizer_has_every_special_token(tokenizer):
    size = len(tokenizer)
    for name in BUILTIN:
        assert add_missing_special_tokens(tokenizer, name) == []
    assert len(tokenizer) == size
