"""``create_chat_session(ref).chat(text)``: the guide's one-call chat, on ``ChatSession``."""

from autotrain_pl import ChatSession, SamplingConfig, create_chat_session


def test_chat_returns_the_reply_and_keeps_the_history():
    session = create_chat_session("builtin:tiny", system_prompt="Be brief.",
                                  sampling=SamplingConfig(max_new_tokens=8, temperature=1.0,
                                                          seed=0))
    assert isinstance(session, ChatSession)
    assert session.max_context_tokens == session.completer.model.config.max_position_embeddings
    first = session.chat("Hello!")
    assert isinstance(first, str) and first.strip()
    second = session.chat("And again?")
    assert [(m.role, m.content) for m in session.messages] == [
        ("system", "Be brief."), ("user", "Hello!"), ("assistant", first),
        ("user", "And again?"), ("assistant", second)]
    # The second prompt held the first turn: the reply answers the whole chat so far.
    assert session.completer(session.messages[:4], session.sampling).content == second
