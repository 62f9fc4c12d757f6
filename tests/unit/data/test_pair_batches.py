"""Pair batches: both layouts locate every sequence's last token, and a packed row gives each
sequence its own rewards and gradients, as the sequences run alone."""

import pytest
import torch
from transformers import LlamaConfig, LlamaForSequenceClassification

from autotrain_pl.data.pair_batches import PairCollator
from autotrain_pl.models.reward import rewards_at
from autotrain_pl.training.final_layer import trimmed_last_layer

PAD = 0
SIZES = dict(vocab_size=97, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
             num_labels=1, pad_token_id=PAD)


def features() -> list[dict]:
    """Pairs with a longer rejected side, a shared first reply token, identical sides and a
    one-token prompt."""
    def pair(prompt, chosen, rejected):
        return {"prompt_ids": prompt, "chosen_ids": chosen, "chosen_weights": [1.0] * len(chosen),
                "rejected_ids": rejected, "rejected_weights": [1.0] * len(rejected)}
    return [pair([5, 6, 7, 8], [10, 11], [30, 31, 32, 33]),
            pair([5, 6, 7, 8], [13, 14, 15], [13, 44]),
            pair([5, 6, 7, 8], [20, 21], [20, 21]),
            pair([9], [40, 41, 42], [43])]


def separate(feature_list: list[dict]) -> list[list[int]]:
    """Every ``prompt + completion`` sequence: all chosen, then all rejected."""
    return [f["prompt_ids"] + f[f"{side}_ids"] for side in ("chosen", "rejected")
            for f in feature_list]


@pytest.mark.parametrize("layout", ["packed", "concatenated"])
def test_ends_locate_the_last_token_of_each_sequence(layout):
    pairs = features()
    batch = PairCollator(PAD, layout)(pairs)
    rows, positions = batch["end_rows"], batch["end_positions"]
    assert torch.equal(rows, rows.sort().values)  # sorted by row, as the trimmed layer needs
    sequences = separate(pairs)
    for row, position, pair, side in zip(rows.tolist(), positions.tolist(),
                                         batch["end_pairs"].tolist(), batch["end_sides"].tolist(),
                                         strict=True):
        expected = sequences[side * len(pairs) + pair]
        assert batch["input_ids"][row, position] == expected[-1]
        if layout == "packed":
            assert batch["position_ids"][row, position] == len(expected) - 1
    assert sorted(zip(batch["end_sides"].tolist(), batch["end_pairs"].tolist(), strict=True)) == \
        [(side, pair) for side in (0, 1) for pair in range(len(pairs))]


def reward_model(attn: str):
    torch.manual_seed(0)
    config = LlamaConfig(**SIZES)
    config._attn_implementation = attn
    return LlamaForSequenceClassification(config).train()


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_rewards_and_gradients_equal_separate_sequences(attn):
    pairs = features()
    batch = PairCollator(PAD, "packed")(pairs)
    model = reward_model(attn)
    inputs = {key: batch[key] for key in ("input_ids", "attention_mask", "position_ids")}
    rewards = rewards_at(model, inputs, batch["end_rows"], batch["end_positions"],
                         trimmed_last_layer)
    rewards.square().sum().backward()
    packed_grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()

    sequences = separate(pairs)
    width = max(len(s) for s in sequences)
    ids = torch.tensor([s + [PAD] * (width - len(s)) for s in sequences])
    mask = (ids != PAD).long()
    expected = model(input_ids=ids, attention_mask=mask).logits[:, 0]
    expected.square().sum().backward()
    order = batch["end_sides"] * len(pairs) + batch["end_pairs"]
    torch.testing.assert_close(rewards, expected[order], rtol=0, atol=1e-5)
    for name, param in model.named_parameters():
        torch.testing.assert_close(packed_grads[name], param.grad, rtol=1e-4, atol=1e-6,
                                   msg=name)
