"""Length-grouped batch samplers: budget, coverage, determinism, epochs and DDP sharding."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from autotrain_pl.data import (
    LengthGroupedBatchSampler,
    TokenBudgetBatchSampler,
    padding_waste,
    shard_batches,
)
from autotrain_pl.data.collate import padded_length


def _lengths(n=500, seed=0):
    rng = random.Random(seed)
    return [int(min(1000, max(20, rng.lognormvariate(4.8, 0.9)))) for _ in range(n)]


def _flat(batches):
    return [i for b in batches for i in b]


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 64), min_size=1, max_size=120),
    budget=st.integers(64, 400),
    multiple=st.sampled_from([None, 8]),
    seed=st.integers(0, 5),
)
def test_budget_is_respected_and_every_sample_appears_once(lengths, budget, multiple, seed):
    sampler = TokenBudgetBatchSampler(lengths, budget, seed=seed, pad_to_multiple_of=multiple)
    batches = list(sampler)
    for batch in batches:
        longest = padded_length(max(lengths[i] for i in batch), multiple)
        assert len(batch) * longest <= budget
    assert sorted(_flat(batches)) == list(range(len(lengths)))
    assert len(sampler) == len(batches)


def test_token_budget_is_deterministic_and_reshuffles_per_epoch():
    lengths = _lengths()
    first = list(TokenBudgetBatchSampler(lengths, 4096, seed=1))
    assert first == list(TokenBudgetBatchSampler(lengths, 4096, seed=1))
    assert first != list(TokenBudgetBatchSampler(lengths, 4096, seed=2))
    sampler = TokenBudgetBatchSampler(lengths, 4096, seed=1)
    sampler.set_epoch(1)
    second = list(sampler)
    assert second != first and sorted(_flat(second)) == sorted(_flat(first))
    assert sampler.sampler is sampler  # Lightning calls set_epoch through ``.sampler``


def test_token_budget_keeps_padding_low():
    lengths = _lengths(2000)
    batches = list(TokenBudgetBatchSampler(lengths, 8192, seed=0))
    assert padding_waste(batches, lengths) < 0.05


def test_ddp_shards_are_disjoint_equal_and_complete():
    lengths = _lengths(301)
    for budget in (2048, 4096, 5000):
        shards = [
            list(TokenBudgetBatchSampler(lengths, budget, seed=3, num_replicas=2, rank=r))
            for r in range(2)
        ]
        assert len(shards[0]) == len(shards[1])
        a, b = set(_flat(shards[0])), set(_flat(shards[1]))
        assert not a & b and a | b == set(range(len(lengths)))
        for batch in shards[0] + shards[1]:
            assert len(batch) * max(lengths[i] for i in batch) <= budget


def test_shard_batches_splits_instead_of_duplicating():
    batches = [[0, 1, 2], [3], [4]]
    ranks = [shard_batches(batches, 2, r) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == 2
    assert sorted(_flat(ranks[0]) + _flat(ranks[1])) == [0, 1, 2, 3, 4]


def test_shard_batches_repeats_only_when_samples_are_fewer_than_ranks():
    ranks = [shard_batches([[0]], 2, r) for r in range(2)]
    assert ranks == [[[0]], [[0]]]


def test_length_grouped_batches():
    lengths = _lengths(1000)
    sampler = LengthGroupedBatchSampler(lengths, batch_size=8, seed=0)
    batches = list(sampler)
    assert all(len(b) <= 8 for b in batches)
    assert sorted(_flat(batches)) == list(range(1000))
    assert batches == list(LengthGroupedBatchSampler(lengths, batch_size=8, seed=0))
    sampler.set_epoch(1)
    assert list(sampler) != batches
    naive = [list(range(i, min(i + 8, 1000))) for i in range(0, 1000, 8)]
    assert padding_waste(batches, lengths) < padding_waste(naive, lengths) / 2
    shards = [
        list(LengthGroupedBatchSampler(lengths, 8, 0, num_replicas=2, rank=r)) for r in (0, 1)
    ]
    assert len(shards[0]) == len(shards[1])
    assert not set(_flat(shards[0])) & set(_flat(shards[1]))
