"""``chat_format: llama`` (the original autotrain's name) is the Llama-2 ``[INST]`` format."""

import logging

from autotrain_pl.data import ChatDataModule
from autotrain_pl.rendering import Llama2Renderer, Message, TrainOnWhat, get_renderer
from autotrain_pl.rendering import registry as registry_module
from autotrain_pl.rendering.registry import renderer_class

CHAT = [Message("system", "Be brief."), Message("user", "What is 2+3?"),
        Message("assistant", "5"), Message("user", "And 4+4?"), Message("assistant", "8")]


def test_llama_renders_the_same_tokens_as_llama2(tokenizer):
    llama, llama2 = get_renderer("llama", tokenizer), get_renderer("llama2", tokenizer)
    assert type(llama) is Llama2Renderer and llama.name == "llama2"  # the export records llama2
    for train_on in TrainOnWhat:
        if train_on is not TrainOnWhat.CUSTOMIZED:
            assert llama.build_supervised_example(CHAT, train_on) == \
                llama2.build_supervised_example(CHAT, train_on)
    assert llama.build_generation_prompt(CHAT[:2]) == llama2.build_generation_prompt(CHAT[:2])
    text = tokenizer.decode(llama.build_generation_prompt(CHAT[:2]))
    assert "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nWhat is 2+3? [/INST]" in text
    assert llama.chat_template() == llama2.chat_template()


def test_the_alias_is_accepted_by_the_data_module_and_logged_once(caplog, monkeypatch):
    monkeypatch.setattr(registry_module, "_REPORTED_ALIASES", set())
    with caplog.at_level(logging.INFO, logger="autotrain_pl.rendering.registry"):
        ChatDataModule("synthetic:arithmetic?n=4", tokenizer="builtin:tiny", chat_format="llama")
        renderer_class("LLAMA")
    lines = [r.getMessage() for r in caplog.records if "alias" in r.getMessage()]
    assert len(lines) == 1 and "chat_format=llama is an alias of llama2" in lines[0]
    assert "Llama-2" in lines[0]
