import json

import pytest

from autotrain_pl.errors import AutotrainError
from autotrain_pl.generation import ChatSession, MessageCompleter, SamplingConfig
from autotrain_pl.rendering.messages import Message

SAMPLING = SamplingConfig(max_new_tokens=8, temperature=0)


def encode(tokenizer, text):
    return tokenizer.encode(text, add_special_tokens=False)


@pytest.fixture
def completer(model, tokenizer, renderer):
    return MessageCompleter(model, tokenizer, renderer)


@pytest.fixture
def reply_ok(tokenizer, renderer, force_tokens):
    [im_end] = renderer.stop_token_ids()
    return lambda: force_tokens(encode(tokenizer, "ok") + [im_end])


def test_send_stream_reset_and_history(completer, reply_ok):
    session = ChatSession(completer, system_prompt="Be brief.", sampling=SAMPLING)
    with reply_ok():
        assert session.send("hello") == Message("assistant", "ok")
    with reply_ok():
        chunks = list(session.stream("again"))
    assert "".join(chunks) == "ok"
    assert [m.role for m in session.messages] == ["system", "user", "assistant", "user",
                                                  "assistant"]
    assert session.messages[3].content == "again" and session.messages[4].content == "ok"
    session.reset()
    assert session.messages == [Message("system", "Be brief.")]


def test_history_of_plain_dicts_continues_the_conversation(completer, reply_ok):
    history = [{"role": "user", "content": "first"}, {"role": "assistant", "content": "one"}]
    session = ChatSession(completer, system_prompt="Be brief.", sampling=SAMPLING,
                          history=history)
    assert session.messages[1:] == [Message("user", "first"), Message("assistant", "one")]
    with reply_ok():
        assert session.send("second") == Message("assistant", "ok")
    assert [m.content for m in session.messages] == ["Be brief.", "first", "one", "second", "ok"]
    with pytest.raises(AutotrainError, match="message 0"):
        ChatSession(completer, history=[{"content": "no role"}])


def test_save_load_round_trip(completer, reply_ok, tmp_path):
    session = ChatSession(completer, system_prompt="sys", max_context_tokens=500,
                          sampling=SAMPLING)
    with reply_ok():
        session.send("first")
    path = session.save(tmp_path / "chats" / "s.json")
    assert json.loads(path.read_text())["messages"][0] == {"role": "user", "content": "first"}
    restored = ChatSession(completer, sampling=SAMPLING)
    restored.load(path)
    assert restored.messages == session.messages
    assert restored.max_context_tokens == 500 and restored.system_prompt == "sys"


def test_load_rejects_bad_files(completer, tmp_path):
    session = ChatSession(completer)
    with pytest.raises(AutotrainError, match="does not exist"):
        session.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"messages": [{"role": "wizard", "content": "x"}]}')
    with pytest.raises(AutotrainError, match="message 0"):
        session.load(bad)


def test_context_budget_drops_oldest_turns_but_keeps_system(completer, reply_ok, monkeypatch):
    system = Message("system", "You are a helpful bot.")
    questions = ["first question here", "second question here", "third question here"]
    turns = [m for q in questions for m in (Message("user", q), Message("assistant", "ok"))]
    # Room for the system prompt and the last two turns, not for all three.
    budget = len(completer.build_prompt([system, *turns[2:5]])) + SAMPLING.max_new_tokens
    assert len(completer.build_prompt([system, *turns[:5]])) + SAMPLING.max_new_tokens > budget
    session = ChatSession(completer, system_prompt=system.content, max_context_tokens=budget,
                          sampling=SAMPLING)
    seen = []
    original = MessageCompleter.__call__

    def recording(self, messages, sampling=None, strict=False):
        seen.append(list(messages))
        return original(self, messages, sampling, strict)

    monkeypatch.setattr(MessageCompleter, "__call__", recording)
    for text in questions:
        with reply_ok():
            session.send(text)
    assert seen[-1] == [system, *turns[2:5]]  # oldest turn dropped, system prompt kept
    assert len(session.history) == 6  # the full history is kept and saved
    assert session.context_messages() == [system, *turns[4:6]]


def test_context_too_small_for_latest_message_is_a_clear_error(completer):
    session = ChatSession(completer, system_prompt="x", max_context_tokens=10, sampling=SAMPLING)
    with pytest.raises(AutotrainError, match="max_context_tokens=10"):
        session.send("a message far too long for such a small budget of tokens")
