"""The teacher-logit cache and the generation cache, without models."""

import json

import pytest
import torch

from autotrain_pl.objectives.distillation import TeacherLogitCache
from autotrain_pl.objectives.distillation.teacher_cache import load_generations, save_generations


def fake_batch(counts, k=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    rows = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))
    values = torch.randn(len(rows), k, generator=gen)
    indices = torch.randint(0, 100, (len(rows), k), generator=gen)
    return rows, values, indices


def test_store_lookup_and_reopen(tmp_path):
    counts = [3, 1, 2, 4]
    cache = TeacherLogitCache(tmp_path / "c", counts, top_k=4)
    ids = torch.tensor([2, 0])
    rows, values, indices = fake_batch([counts[2], counts[0]])
    assert cache.lookup(ids) is None  # nothing cached yet
    cache.store(ids, rows, values, indices)
    got_values, got_indices = cache.lookup(ids)
    assert torch.equal(got_values, values) and torch.equal(got_indices, indices)
    assert cache.lookup(torch.tensor([0, 1])) is None  # example 1 is missing
    cache.flush()
    again = TeacherLogitCache(tmp_path / "c", counts, top_k=4, rank=0)
    assert again.filled.tolist() == [True, False, True, False]
    assert torch.equal(again.lookup(ids)[0], values)
    assert again.disk_bytes == sum(counts) * 4 * (4 + 4)
    assert "MiB on disk" in again.describe()


def test_other_layout_starts_fresh_and_wrong_counts_fail(tmp_path):
    cache = TeacherLogitCache(tmp_path / "c", [2, 2], top_k=4)
    rows, values, indices = fake_batch([2])
    cache.store(torch.tensor([1]), rows, values, indices)
    cache.flush()
    assert not TeacherLogitCache(tmp_path / "c", [2, 2], top_k=8).filled.any()
    rows, values, indices = fake_batch([3])
    with pytest.raises(RuntimeError, match="trained tokens"):
        cache.store(torch.tensor([0]), rows, values, indices)


def test_generation_file_is_reused_only_for_its_fingerprint(tmp_path):
    path = tmp_path / "gen.jsonl"
    rows = [{"content": "<<5>>", "stop_reason": "eos"}, {"content": None, "stop_reason": "length"}]
    save_generations(path, {"fingerprint": "abc", "count": 2}, rows)
    assert json.loads(path.read_text().splitlines()[0])["fingerprint"] == "abc"
    assert load_generations(path, "abc", 2) == rows
    assert load_generations(path, "other", 2) is None
    assert load_generations(path, "abc", 3) is None
    assert load_generations(tmp_path / "missing.jsonl", "abc", 2) is None
