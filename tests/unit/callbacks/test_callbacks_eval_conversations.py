"""ChatDataModule.eval_conversations: the very rows the validation loss is measured on."""

import pytest

from autotrain_pl.data import ChatDataModule
from autotrain_pl.rendering import Conversation

DATA = "synthetic:arithmetic?n=120&n_valid=10&seed=0"


def _module(**kwargs) -> ChatDataModule:
    options = dict(tokenizer="builtin:tiny", chat_format="chatml", batch_size=4)
    options.update(kwargs)
    return ChatDataModule(DATA, **options)


def _rendered(module: ChatDataModule, conversations) -> list[list[int]]:
    return [list(module.renderer.build_supervised_example(c.messages, module.train_on).input_ids)
            for c in conversations]


def test_valid_path():
    module = _module(valid_path=DATA + "&split=valid")
    conversations = module.eval_conversations()
    assert len(conversations) == 10 and all(isinstance(c, Conversation) for c in conversations)
    assert conversations[0].metadata["reference"] == conversations[0].messages[-1].content
    assert module.eval_conversations("test") == []


@pytest.mark.parametrize("overlong_policy", ["truncate", "drop"])
def test_valid_fraction_matches_the_validation_dataset(overlong_policy):
    max_length = 1024
    if overlong_policy == "drop":  # drop the longest rows, so kept and read rows differ
        probe = _module(valid_fraction=0.5)
        probe.setup("fit")
        lengths = sorted([*probe.train_dataset["length"], *probe.val_dataset["length"]])
        max_length = lengths[-1] - 1
    module = _module(valid_fraction=0.2, overlong_policy=overlong_policy, max_length=max_length)
    module.setup("fit")
    conversations = module.eval_conversations()
    if overlong_policy == "drop":
        assert module.stats["train"].dropped_overlong > 0
    assert _rendered(module, conversations) == [list(x) for x in module.val_dataset["input_ids"]]


def test_unknown_stage():
    with pytest.raises(Exception, match="stage"):
        _module().eval_conversations("train")
