"""Reward heads: loading, the quiet head swap, export refusal as an LM, scorer rendering."""

import json
import logging

import pytest
import torch

from autotrain_pl.errors import AutotrainError
from autotrain_pl.models import RewardScorer, chat_tokenizer, export_model, head_of, load_model
from autotrain_pl.models.heads import _NewHeadReport
from autotrain_pl.models.reward import check_pad_token, conversation_ids, sequence_rewards
from autotrain_pl.rendering import Message
from autotrain_pl.training.final_layer import trimmed_last_layer


def test_reward_head_loads_any_causal_base_quietly(caplog):
    with caplog.at_level(logging.WARNING, logger="transformers.modeling_utils"):
        model = load_model("builtin:small", head="reward")  # untied lm_head: dropped, quietly
    assert type(model).__name__ == "LlamaForSequenceClassification"
    assert model.config.num_labels == 1 and model.score.out_features == 1
    assert head_of(model) == "reward" and head_of(load_model("builtin:tiny")) == "lm"
    assert "LOAD REPORT" not in caplog.text
    with pytest.raises(AutotrainError, match="head='value'"):
        load_model("builtin:tiny", head="value")


def test_only_the_expected_head_swap_is_silenced():
    def record(text: str) -> logging.LogRecord:
        return logging.LogRecord("transformers.modeling_utils", logging.WARNING, "", 0, text,
                                 None, None)

    report = ("LlamaForSequenceClassification LOAD REPORT from: x\nKey | Status | \n"
              "-----+-----+-\n{rows}\nNotes:\n- MISSING:\tthose params were newly initialized")
    quiet = _NewHeadReport()
    expected = report.format(rows="score.weight   | MISSING    | \nlm_head.weight | UNEXPECTED | ")
    other = report.format(rows="score.weight | MISSING | \nmodel.norm.weight | MISSING | ")
    assert not quiet.filter(record(expected))
    assert quiet.filter(record(other))
    assert quiet.filter(record("an unrelated warning"))


def test_a_reward_export_is_not_loaded_as_a_language_model(tmp_path):
    tokenizer, renderer = chat_tokenizer("builtin:tiny", "chatml")
    model = load_model("builtin:tiny", head="reward")
    export = export_model(model, tokenizer, tmp_path / "export", renderer=renderer,
                          base_model="builtin:tiny")
    assert json.loads((export / "autotrain.json").read_text())["head"] == "reward"
    assert not (export / "generation_config.json").exists()
    with pytest.raises(AutotrainError, match="reward model"):
        load_model(str(export))
    reloaded = load_model(str(export), head="reward")
    torch.testing.assert_close(reloaded.score.weight, model.score.weight)


def test_scorer_renders_prompt_then_reply_as_preference_training_does():
    tokenizer, renderer = chat_tokenizer("builtin:tiny", "chatml")
    prompt = [Message("system", "Be brief."), Message("user", "What is 2 + 2?")]
    reply = [Message("assistant", "4")]
    expected = renderer.build_generation_prompt(prompt) + \
        renderer.render_completion(prompt, reply).input_ids
    assert conversation_ids(renderer, [*prompt, *reply]) == expected
    dicts = [m.to_dict() for m in [*prompt, *reply]]
    assert conversation_ids(renderer, dicts) == expected
    with pytest.raises(AutotrainError, match="assistant reply"):
        conversation_ids(renderer, prompt)
    with pytest.raises(AutotrainError, match="not a reward model"):
        RewardScorer(load_model("builtin:tiny"), tokenizer, renderer)


def test_a_pad_token_that_ends_every_reply_is_refused():
    tokenizer, renderer = chat_tokenizer("builtin:tiny", "chatml")
    check_pad_token(tokenizer.pad_token_id, renderer)
    last = renderer.render_completion([Message("user", "1")], [Message("assistant", "2")])
    with pytest.raises(AutotrainError, match="distinct pad token"):
        check_pad_token(last.input_ids[-1], renderer)


def test_sequence_rewards_read_the_last_real_token_with_either_padding():
    from transformers import LlamaConfig, LlamaForSequenceClassification

    torch.manual_seed(0)
    model = LlamaForSequenceClassification(LlamaConfig(
        vocab_size=97, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, num_labels=1, pad_token_id=0)).eval()
    right_ids = torch.tensor([[5, 6, 7, 0, 0, 0], [8, 9, 10, 11, 12, 0]])
    right_mask = (right_ids != 0).long()
    left_ids = torch.tensor([[0, 0, 0, 5, 6, 7], [0, 8, 9, 10, 11, 12]])
    left_mask = (left_ids != 0).long()
    with torch.no_grad():
        expected = model(input_ids=right_ids, attention_mask=right_mask).logits[:, 0]
        right = sequence_rewards(model, right_ids, right_mask, trimmed_last_layer)
        left = sequence_rewards(model, left_ids, left_mask)
    torch.testing.assert_close(right, expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(left, expected, rtol=0, atol=1e-5)
