"""FrozenValueCache: per-example rows of frozen-model values on disk, without models."""

import pytest
import torch

from autotrain_pl.training import FrozenValueCache


def topk_cache(path, counts, k=4, rank=0):
    """The teacher-logit layout: k logits and k token ids per trained token."""
    return FrozenValueCache(path, counts, {"values": ("float32", k), "indices": ("int32", k)},
                            rank=rank)


def fake_batch(counts, k=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    rows = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))
    values = torch.randn(len(rows), k, generator=gen)
    indices = torch.randint(0, 100, (len(rows), k), generator=gen)
    return rows, values, indices


def test_store_lookup_and_reopen(tmp_path):
    counts = [3, 1, 2, 4]
    cache = topk_cache(tmp_path / "c", counts)
    ids = torch.tensor([2, 0])
    rows, values, indices = fake_batch([counts[2], counts[0]])
    assert cache.lookup(ids) is None  # nothing cached yet
    cache.store(ids, rows, {"values": values, "indices": indices})
    got = cache.lookup(ids)
    assert torch.equal(got["values"], values) and torch.equal(got["indices"].long(), indices)
    assert cache.lookup(torch.tensor([0, 1])) is None  # example 1 is missing
    cache.flush()
    again = topk_cache(tmp_path / "c", counts)
    assert again.filled.tolist() == [True, False, True, False]
    assert torch.equal(again.lookup(ids)["values"], values)
    assert again.disk_bytes == sum(counts) * 4 * (4 + 4)
    assert "MiB on disk" in again.describe()


def test_other_layout_starts_fresh_and_wrong_counts_fail(tmp_path):
    cache = topk_cache(tmp_path / "c", [2, 2])
    rows, values, indices = fake_batch([2])
    cache.store(torch.tensor([1]), rows, {"values": values, "indices": indices})
    cache.flush()
    assert not topk_cache(tmp_path / "c", [2, 2], k=8).filled.any()
    rows, values, indices = fake_batch([3])
    with pytest.raises(RuntimeError, match="3 rows in this batch but 2"):
        cache.store(torch.tensor([0]), rows, {"values": values, "indices": indices})


def test_one_row_per_example_holds_per_sequence_values(tmp_path):
    """The layout a DPO reference needs: chosen and rejected log-probabilities per example."""
    cache = FrozenValueCache(tmp_path / "ref", [1, 1, 1], {"chosen": ("float64", 1),
                                                           "rejected": ("float64", 1)})
    cache.store(torch.tensor([2, 0]), torch.tensor([0, 1]),
                {"chosen": torch.tensor([[-1.5], [-2.0]], dtype=torch.float64),
                 "rejected": torch.tensor([[-3.0], [-4.0]], dtype=torch.float64)})
    got = cache.lookup(torch.tensor([0, 2]))
    assert got["chosen"].flatten().tolist() == [-2.0, -1.5]
    assert got["rejected"].dtype == torch.float64 and not cache.complete
