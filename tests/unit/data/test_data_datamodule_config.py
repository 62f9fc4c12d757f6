"""ChatDataModule rejects bad configs in __init__, before any data or model is loaded."""

from __future__ import annotations

import pytest

from autotrain_pl.data import ChatDataModule
from autotrain_pl.errors import AutotrainError
from autotrain_pl.models import load_tokenizer
from autotrain_pl.rendering.chatml import ChatMLRenderer

DATA = "synthetic:arithmetic?n=20"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"data_path": "missing/train.jsonl"}, "data_path='missing/train.jsonl' does not exist"),
        ({"valid_path": "./nope.csv"}, "valid_path='./nope.csv' does not exist"),
        ({"chat_format": "no-such-format"}, "chat_format='no-such-format' is not known"),
        ({"batch_size": 0}, "batch_size=0 must be a positive integer"),
        ({"eval_batch_size": -2}, "eval_batch_size=-2"),
        ({"valid_fraction": 1.0}, r"valid_fraction=1.0 must lie in \[0, 1\)"),
        ({"valid_fraction": -0.1}, "valid_fraction=-0.1"),
        ({"overlong_policy": "squash"}, "overlong_policy='squash' is unknown"),
        ({"train_on": "everything"}, "train_on='everything' is not known"),
        ({"row_format": "csv"}, "row_format='csv' is unknown"),
        ({"valid_fraction": 0.1, "valid_path": DATA}, "choose one source of validation"),
        ({"max_tokens_per_batch": 512, "group_by_length": True}, "set only one"),
        ({"max_tokens_per_batch": 100, "max_length": 512}, "below max_length=512"),
        ({"padding_free": True}, "padding_free=true needs packing=true"),
        ({"data_path": "synthetic:arithmetic?n=x"}, "n='x' must be a int"),
        ({"num_workers": -1}, "num_workers=-1"),
        ({"data_path": None, "valid_split": "validation"}, "valid_split / valid_fraction need"),
    ],
)
def test_bad_config_fails_in_init(kwargs, match):
    kwargs = {"data_path": DATA, **kwargs}
    with pytest.raises(AutotrainError, match=match):
        ChatDataModule(**kwargs)


def test_missing_tokenizer_is_a_clear_error():
    dm = ChatDataModule(DATA)
    with pytest.raises(AutotrainError, match="has no tokenizer"):
        _ = dm.tokenizer


def test_kind_is_detected_without_a_tokenizer():
    assert ChatDataModule(DATA).kind == "sft"
    assert ChatDataModule("synthetic:preference?n=4").kind == "preference"


SAMPLE = "<|im_start|>user\nWhat is 12 + 34?<|im_end|>\n"


def test_tokenizer_reference_resolves_through_load_tokenizer():
    reference = load_tokenizer("builtin:tiny")
    dm = ChatDataModule(DATA, tokenizer="builtin:tiny", chat_format="chatml")
    tokenizer = dm.tokenizer
    assert type(tokenizer) is type(reference)
    assert tokenizer.get_vocab() == reference.get_vocab()
    assert tokenizer.encode(SAMPLE, add_special_tokens=False) == reference.encode(
        SAMPLE, add_special_tokens=False)
    assert dm.renderer.tokenizer is tokenizer


def test_chat_format_special_tokens_are_single_tokens():
    dm = ChatDataModule(DATA, tokenizer="builtin:tiny", chat_format="chatml")
    ids = []
    for token in ChatMLRenderer.required_special_tokens():
        token_id = dm.tokenizer.convert_tokens_to_ids(token)
        assert token_id != dm.tokenizer.unk_token_id
        assert dm.tokenizer.encode(token, add_special_tokens=False) == [token_id]
        assert dm.renderer.token_id(token) == token_id
        ids.append(token_id)
    assert len(set(ids)) == len(ids)
    # Inside text the markers stay whole: the sample starts and ends with them.
    encoded = dm.tokenizer.encode(SAMPLE, add_special_tokens=False)
    start, end = (dm.tokenizer.convert_tokens_to_ids(t) for t in ("<|im_start|>", "<|im_end|>"))
    assert encoded[0] == start and encoded[-2] == end and encoded.count(end) == 1


def test_a_tokenizer_object_is_used_as_is():
    mine = load_tokenizer("builtin:tiny")
    dm = ChatDataModule(DATA, tokenizer=mine, chat_format="chatml")
    assert dm.tokenizer is mine and dm.renderer.tokenizer is mine
    other = load_tokenizer("builtin:tiny")
    dm.tokenizer = other  # handing one over later replaces the tokenizer and its renderer
    assert dm.tokenizer is other and dm.renderer.tokenizer is other
