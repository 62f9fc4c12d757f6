"""Shared builders for objective tests."""

import pytest
import torch


def _aligned_batch(rows: int = 2, length: int = 9, prompt: int = 5, seed: int = 0) -> dict:
    ids = torch.randint(10, 4000, (rows, length), generator=torch.Generator().manual_seed(seed))
    weights = torch.zeros(rows, length)
    weights[:, prompt:] = 1.0
    mask = torch.ones_like(ids)
    return {"input_ids": ids, "attention_mask": mask, "loss_weights": weights,
            "teacher_input_ids": ids, "teacher_attention_mask": mask,
            "teacher_loss_weights": weights}


@pytest.fixture
def aligned_batch():
    """``aligned_batch(rows, length, prompt=k, seed=0)``: a distillation batch whose teacher and
    student rows are the same tokens, the first ``k`` untrained and the rest trained."""
    return _aligned_batch
