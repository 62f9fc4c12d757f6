"""A packed pair row (shared prefix once) gives each sequence's own rewards and gradients."""

import pytest
import torch
from transformers import LlamaConfig, LlamaForSequenceClassification

from autotrain_pl.models.reward import rewards_at, sequence_rewards
from autotrain_pl.training.final_layer import trimmed_last_layer
from autotrain_pl.training.shared_prefix import pack_pairs

SIZES = dict(vocab_size=97, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
             num_labels=1, pad_token_id=0)


def reward_model(attn: str = "sdpa"):
    torch.manual_seed(0)
    config = LlamaConfig(**SIZES)
    config._attn_implementation = attn
    return LlamaForSequenceClassification(config).train()


def halves(sequences: list[list[int]], width: int) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.zeros(len(sequences), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, seq in enumerate(sequences):
        ids[row, :len(seq)] = torch.tensor(seq)
        mask[row, :len(seq)] = 1
    return ids, mask


def preference_batch() -> dict:
    """Pairs with: a shared prompt, a longer rejected side, a shared first reply token, and
    identical sides (each keeps its own last token)."""
    prompt = [5, 6, 7, 8]
    chosen = [prompt + [10, 11], prompt[:2] + [12], prompt + [13, 14, 15], prompt + [20, 21]]
    rejected = [prompt + [30, 31, 32, 33], prompt[:2] + [40, 41], prompt + [13, 44],
                prompt + [20, 21]]
    width = 9
    chosen_ids, chosen_mask = halves(chosen, width)
    rejected_ids, rejected_mask = halves(rejected, width)
    return {"chosen_input_ids": chosen_ids, "chosen_attention_mask": chosen_mask,
            "rejected_input_ids": rejected_ids, "rejected_attention_mask": rejected_mask}


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_rewards_and_gradients_equal_separate_sequences(attn):
    batch = preference_batch()
    packed = pack_pairs(batch, attn)
    assert packed is not None
    assert packed.shared.tolist() == [4, 2, 5, 5]
    assert packed.input_ids.shape[1] < 2 * batch["chosen_input_ids"].shape[1]

    model = reward_model(attn)
    rewards = rewards_at(model, packed.model_inputs(), packed.read_rows, packed.read_positions,
                         trimmed_last_layer)
    rewards.square().sum().backward()
    packed_grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()

    ids = torch.cat([batch["chosen_input_ids"], batch["rejected_input_ids"]])
    mask = torch.cat([batch["chosen_attention_mask"], batch["rejected_attention_mask"]])
    expected = model(input_ids=ids, attention_mask=mask).logits[:, 0]
    expected.square().sum().backward()
    torch.testing.assert_close(rewards[0::2], expected[:4], rtol=0, atol=1e-5)
    torch.testing.assert_close(rewards[1::2], expected[4:], rtol=0, atol=1e-5)
    for name, param in model.named_parameters():
        torch.testing.assert_close(packed_grads[name], param.grad, rtol=1e-4, atol=1e-6,
                                   msg=name)


def test_sequence_rewards_read_the_last_real_token_with_either_padding():
    model = reward_model().eval()
    right_ids, right_mask = halves([[5, 6, 7], [8, 9, 10, 11, 12]], 6)
    left_ids = torch.zeros_like(right_ids)
    left_mask = torch.zeros_like(right_mask)
    left_ids[0, 3:], left_mask[0, 3:] = right_ids[0, :3], 1
    left_ids[1, 1:], left_mask[1, 1:] = right_ids[1, :5], 1
    with torch.no_grad():
        expected = model(input_ids=right_ids, attention_mask=right_mask).logits[:, 0]
        right = sequence_rewards(model, right_ids, right_mask, trimmed_last_layer)
        left = sequence_rewards(model, left_ids, left_mask)
    torch.testing.assert_close(right, expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(left, expected, rtol=0, atol=1e-5)


def test_packing_steps_aside_where_it_cannot_be_exact():
    batch = preference_batch()
    assert pack_pairs(batch, "flash_attention_2") is None
    left_padded = dict(batch, chosen_attention_mask=batch["chosen_attention_mask"].flip(1))
    assert pack_pairs(left_padded, "sdpa") is None
