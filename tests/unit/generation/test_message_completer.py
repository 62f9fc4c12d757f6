import pytest

from autotrain_pl.errors import AutotrainError
from autotrain_pl.generation import MessageCompleter, SamplingConfig
from autotrain_pl.rendering.messages import Message

GREEDY = SamplingConfig(max_new_tokens=12, temperature=0)
CHAT = [Message("system", "Be brief."), Message("user", "Say hi")]


def encode(tokenizer, text):
    return tokenizer.encode(text, add_special_tokens=False)


@pytest.fixture
def completer(model, tokenizer, renderer):
    return MessageCompleter(model, tokenizer, renderer)


def test_reply_is_rendered_and_parsed(tokenizer, renderer, completer, force_tokens):
    [im_end] = renderer.stop_token_ids()
    with force_tokens(encode(tokenizer, "Hi there") + [im_end]):
        reply = completer(CHAT, GREEDY, strict=True)
    assert reply == Message("assistant", "Hi there")


def test_prompt_is_the_renderers_generation_prompt(renderer, completer):
    dicts = [{"role": m.role, "content": m.content} for m in CHAT]
    assert completer.build_prompt(dicts) == renderer.build_generation_prompt(CHAT)


def test_model_eos_also_ends_the_turn(tokenizer, completer, force_tokens):
    with force_tokens(encode(tokenizer, "Bye") + [tokenizer.eos_token_id]):
        reply = completer(CHAT, GREEDY, strict=True)
    assert reply.content == "Bye"


def test_strict_rejects_a_reply_cut_off_by_length(tokenizer, completer, force_tokens):
    with force_tokens(encode(tokenizer, "0123456789")):
        with pytest.raises(AutotrainError, match="max_new_tokens"):
            completer(CHAT, SamplingConfig(max_new_tokens=4, temperature=0), strict=True)
    with force_tokens(encode(tokenizer, "0123456789")):
        reply = completer(CHAT, SamplingConfig(max_new_tokens=4, temperature=0))
    assert reply.content == "0123"


def test_stop_string_ends_the_reply(tokenizer, completer, force_tokens):
    with force_tokens(encode(tokenizer, "yes. no.")):
        reply = completer(CHAT, SamplingConfig(max_new_tokens=12, temperature=0, stop=["."]),
                          strict=True)
    assert reply.content == "yes"


def test_batch_form_and_several_samples(tokenizer, renderer, completer, force_tokens):
    [im_end] = renderer.stop_token_ids()
    with force_tokens(encode(tokenizer, "ok") + [im_end]):
        replies = completer.batch_complete([CHAT, [Message("user", "again")]], GREEDY)
    assert [r.content for r in replies] == ["ok", "ok"]
    samples = completer.batch_complete([CHAT], SamplingConfig(max_new_tokens=3,
                                                              num_return_sequences=3, seed=1))
    assert len(samples) == 3 and all(r.role == "assistant" for r in samples)
    with pytest.raises(AutotrainError, match="batch_complete"):
        completer(CHAT, SamplingConfig(max_new_tokens=3, num_return_sequences=2))


def test_malformed_messages_raise(completer):
    with pytest.raises(AutotrainError, match="role"):
        completer([{"content": "no role"}], GREEDY)
    with pytest.raises(AutotrainError, match="list"):
        completer("just a string", GREEDY)
