import time

import pytest

from autotrain_pl.errors import AutotrainError
from autotrain_pl.generation import (
    MessageCompleter,
    SamplingConfig,
    TokenCompleter,
    stream_messages,
    stream_tokens,
)
from autotrain_pl.generation.streaming import StopStringHoldback
from autotrain_pl.rendering.messages import Message


def encode(tokenizer, text):
    return tokenizer.encode(text, add_special_tokens=False)


@pytest.fixture
def completer(model, tokenizer, renderer):
    return TokenCompleter(model, tokenizer, renderer)


def test_first_chunk_arrives_before_generation_ends(model, tokenizer, completer, force_tokens,
                                                    monkeypatch):
    finished_at = {}
    original = model.generate

    def timed_generate(*args, **kwargs):
        out = original(*args, **kwargs)
        finished_at["t"] = time.perf_counter()
        return out

    monkeypatch.setattr(model, "generate", timed_generate)
    sampling = SamplingConfig(max_new_tokens=40, temperature=0)
    chunks, first_at = [], None
    with force_tokens(encode(tokenizer, " one two three four"), sleep_s=0.01):
        stream = stream_tokens(completer, encode(tokenizer, "count"), sampling)
        while True:
            try:
                chunk = next(stream)
            except StopIteration as done:
                completion = done.value
                break
            if first_at is None:
                first_at = time.perf_counter()
                assert "t" not in finished_at  # generate is still running
            chunks.append(chunk)
    assert first_at < finished_at["t"]
    assert len(chunks) > 3
    assert "".join(chunks) == completion.text
    assert completion.text.startswith(" one two three four one")
    assert completion.stop_reason == "length"


def test_stream_drops_the_end_token_and_stop_strings(tokenizer, renderer, completer,
                                                     force_tokens):
    [im_end] = renderer.stop_token_ids()
    with force_tokens(encode(tokenizer, " alpha beta") + [im_end]):
        chunks = list(completer.stream_tokens(encode(tokenizer, "x"),
                                              SamplingConfig(max_new_tokens=20, temperature=0)))
    assert "".join(chunks) == " alpha beta"
    sampling = SamplingConfig(max_new_tokens=30, temperature=0, stop=["ta g"])
    with force_tokens(encode(tokenizer, " alpha beta gamma delta")):
        stream = stream_tokens(completer, encode(tokenizer, "x"), sampling)
        chunks = []
        try:
            while True:
                chunks.append(next(stream))
        except StopIteration as done:
            completion = done.value
    assert "".join(chunks) == " alpha be" == completion.text
    assert completion.stop_reason == "stop"


def test_closing_the_stream_stops_generation(tokenizer, completer, force_tokens):
    with force_tokens(encode(tokenizer, " a b c"), sleep_s=0.005) as forced:
        stream = stream_tokens(completer, encode(tokenizer, "x"),
                               SamplingConfig(max_new_tokens=500, temperature=0))
        next(stream)
        stream.close()
    assert forced.step < 100


def test_stream_messages_returns_the_parsed_reply(model, tokenizer, renderer, force_tokens):
    completer = MessageCompleter(model, tokenizer, renderer)
    [im_end] = renderer.stop_token_ids()
    with force_tokens(encode(tokenizer, "Hello you") + [im_end]):
        stream = stream_messages(completer, [Message("user", "hi")],
                                 SamplingConfig(max_new_tokens=10, temperature=0))
        chunks = []
        try:
            while True:
                chunks.append(next(stream))
        except StopIteration as done:
            reply = done.value
    assert "".join(chunks) == "Hello you"
    assert reply == Message("assistant", "Hello you")


def test_streaming_several_sequences_is_refused_at_the_call(tokenizer, completer):
    with pytest.raises(AutotrainError, match="one sequence"):
        completer.stream_tokens(encode(tokenizer, "x"), SamplingConfig(num_return_sequences=2))
    with pytest.raises(AutotrainError, match="one sequence"):
        stream_tokens(completer, encode(tokenizer, "x"), SamplingConfig(num_beams=2))


def test_holdback_never_shows_part_of_a_stop_string():
    holdback = StopStringHoldback(["STOP"])
    shown = holdback.feed("abc S") + holdback.feed("T") + holdback.feed("x ST")
    assert "".join(shown) == "abc STx "
    assert holdback.feed("OP tail") == [] and holdback.flush() == ""
    assert holdback.feed("more") == []
    plain = StopStringHoldback([])
    assert plain.feed("a") == ["a"] and plain.flush() == ""
