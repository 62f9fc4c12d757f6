"""Packing: bins respect max_length, positions restart, and packed logits equal unpacked ones."""

from __future__ import annotations

import random

import datasets
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from autotrain_pl.data import PackedCollator, block_causal_mask, pack_dataset, pack_lengths


def _samples(n=7, seed=0, low=3, high=20):
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        length = rng.randint(low, high)
        rows.append(
            {
                "input_ids": [rng.randint(5, 200) for _ in range(length)],
                "loss_weights": [1.0] * length,
            }
        )
    return rows


def test_pack_lengths_fills_bins_within_capacity():
    rng = random.Random(0)
    lengths = [rng.randint(1, 100) for _ in range(500)]
    bins = pack_lengths(lengths, 128)
    assert sorted(i for b in bins for i in b) == list(range(500))
    assert all(sum(lengths[i] for i in b) <= 128 for b in bins)
    assert sum(lengths) / (len(bins) * 128) > 0.95
    with pytest.raises(ValueError, match="more than max_length"):
        pack_lengths([5, 200], 128)


def test_packed_rows_restart_positions_and_zero_first_token_weights():
    packed = pack_dataset(datasets.Dataset.from_list(_samples()), max_length=40, seed=0)
    batch = PackedCollator(pad_token_id=0)([packed[i] for i in range(len(packed))])
    for row, seq_lens in enumerate(packed["seq_lens"]):
        starts = [sum(seq_lens[:k]) for k in range(len(seq_lens))]
        positions = batch["position_ids"][row].tolist()
        assert [positions[s] for s in starts] == [0] * len(starts)
        assert all(batch["loss_weights"][row, s] == 0 for s in starts)
        assert positions[: seq_lens[0]] == list(range(seq_lens[0]))
    length = batch["input_ids"].shape[1]
    assert batch["attention_mask"].shape == (len(packed), 1, length, length)


def test_block_causal_mask_structure():
    mask = block_causal_mask([[2, 3]], length=6)[0, 0]
    allowed = (mask == 0).int().tolist()
    assert allowed == [
        [1, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [0, 0, 1, 0, 0, 0],
        [0, 0, 1, 1, 0, 0],
        [0, 0, 1, 1, 1, 0],
        [0, 0, 0, 0, 0, 1],  # padding sees only itself: no empty softmax row
    ]


@pytest.fixture(scope="module")
def tiny_llama(tokenizer):
    torch.manual_seed(0)
    config = LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=len(tokenizer),
    )
    return LlamaForCausalLM(config).float().eval()


@pytest.mark.parametrize("attn_implementation", ["sdpa", "eager"])
def test_packed_logits_equal_each_sample_alone(tiny_llama, attn_implementation):
    tiny_llama.config._attn_implementation = attn_implementation
    samples = _samples(n=6, seed=1)
    packed = pack_dataset(datasets.Dataset.from_list(samples), max_length=40, seed=0)
    assert any(len(s) > 1 for s in packed["seq_lens"])
    batch = PackedCollator(pad_token_id=0, pad_to_multiple_of=8)(
        [packed[i] for i in range(len(packed))]
    )
    with torch.no_grad():
        logits = tiny_llama(**{k: v for k, v in batch.items() if k != "loss_weights"}).logits
        by_ids = {}
        for sample in samples:
            alone = tiny_llama(input_ids=torch.tensor([sample["input_ids"]])).logits[0]
            by_ids[tuple(sample["input_ids"])] = alone
    compared = 0
    for row, seq_lens in enumerate(packed["seq_lens"]):
        start = 0
        for n in seq_lens:
            ids = tuple(batch["input_ids"][row, start : start + n].tolist())
            torch.testing.assert_close(
                logits[row, start : start + n], by_ids[ids], atol=1e-4, rtol=0
            )
            start += n
            compared += 1
    assert compared == len(samples)


def test_padding_free_batch_for_flash_attention(tiny_llama):
    """One concatenated row, positions only; equal logits where transformers detects packing."""
    tiny_llama.config._attn_implementation = "sdpa"
    samples = _samples(n=3, seed=2)
    packed = pack_dataset(datasets.Dataset.from_list(samples), max_length=48, seed=0)
    batch = PackedCollator(pad_token_id=0, padding_free=True)(
        [packed[i] for i in range(len(packed))]
    )
    assert set(batch) == {"input_ids", "loss_weights", "position_ids"}
    assert batch["input_ids"].shape == (1, sum(len(s["input_ids"]) for s in samples))
    with torch.no_grad():
        logits = tiny_llama(
            **{k: v for k, v in batch.items() if k != "loss_weights"}, use_cache=False
        ).logits[0]
    start = 0
    for n in (n for lens in packed["seq_lens"] for n in lens):
        ids = batch["input_ids"][:, start : start + n]
        with torch.no_grad():
            alone = tiny_llama(input_ids=ids).logits[0]
        torch.testing.assert_close(logits[start : start + n], alone, atol=1e-4, rtol=0)
        start += n
