"""The Bradley-Terry reward-model loss against hand computations (TRL parity: test_losses_trl)."""

import math

import pytest
import torch

from autotrain_pl.losses import bradley_terry_loss


def _logsigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x))


def test_bradley_terry_matches_hand():
    chosen = torch.tensor([1.0, 0.2, -0.5], dtype=torch.float64)
    rejected = torch.tensor([0.0, 0.4, -1.5], dtype=torch.float64)
    margin = torch.tensor([0.5, 0.0, 2.0], dtype=torch.float64)
    c_list, r_list, m_list = chosen.tolist(), rejected.tolist(), margin.tolist()
    hand = [-_logsigmoid(c - r - m) for c, r, m in zip(c_list, r_list, m_list, strict=True)]
    loss = bradley_terry_loss(chosen, rejected, margin=margin)
    assert loss.item() == pytest.approx(sum(hand) / 3, rel=1e-12)
    no_margin = [-_logsigmoid(c - r) for c, r in zip(c_list, r_list, strict=True)]
    assert bradley_terry_loss(chosen, rejected, normalizer=6).item() == pytest.approx(
        sum(no_margin) / 6, rel=1e-12
    )
    centred = bradley_terry_loss(chosen, rejected, center_rewards_coefficient=0.01)
    penalty = 0.01 * sum((c + r) ** 2 for c, r in zip(c_list, r_list, strict=True)) / 3
    assert centred.item() == pytest.approx(sum(no_margin) / 3 + penalty, rel=1e-12)
