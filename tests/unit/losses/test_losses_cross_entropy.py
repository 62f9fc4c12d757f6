"""Weighted cross-entropy, focal and entropy losses: hand references, torch parity, reduction."""

import math

import pytest
import torch
import torch.nn.functional as F

from autotrain_pl.errors import AutotrainError
from autotrain_pl.losses import (
    entropy_loss,
    focal_loss,
    per_token_cross_entropy,
    weighted_cross_entropy,
)


def _hand_nll(row: list[float], label: int) -> float:
    return math.log(sum(math.exp(x) for x in row)) - row[label]


def test_weighted_ce_matches_hand(gen, make_batch):
    logits, labels, weights = make_batch(gen)
    total = sum(
        weights[i].item() * _hand_nll(logits[i].tolist(), int(labels[i]))
        for i in range(len(labels))
    )
    assert weighted_cross_entropy(logits, labels, weights, normalizer=3.5).item() == pytest.approx(
        total / 3.5, rel=1e-12
    )
    default = weighted_cross_entropy(logits, labels, weights)
    assert default.item() == pytest.approx(total / weights.sum().item(), rel=1e-12)


def test_label_smoothing_matches_torch(gen, make_batch):
    logits, labels, _ = make_batch(gen)
    labels[2] = -100
    for eps in (0.0, 0.1, 0.7):
        ours = per_token_cross_entropy(logits, labels, label_smoothing=eps)
        theirs = F.cross_entropy(logits, labels, reduction="none", label_smoothing=eps)
        assert torch.allclose(ours, theirs, atol=1e-12)
    ones = torch.ones(len(labels), dtype=torch.float64)
    ones[2] = 0.0
    mean = weighted_cross_entropy(logits, labels, ones, label_smoothing=0.1)
    assert mean.item() == pytest.approx(
        F.cross_entropy(logits, labels, label_smoothing=0.1).item(), rel=1e-12
    )
    with pytest.raises(AutotrainError, match="label_smoothing"):
        per_token_cross_entropy(logits, labels, label_smoothing=1.5)


def test_ce_gradient_is_softmax_minus_onehot(gen, make_batch):
    logits, labels, weights = make_batch(gen)
    logits.requires_grad_(True)
    weighted_cross_entropy(logits, labels, weights, normalizer=4.0).backward()
    expected = (
        (torch.softmax(logits.detach(), -1) - F.one_hot(labels, logits.shape[-1]))
        * weights[:, None]
    ) / 4.0
    assert torch.allclose(logits.grad, expected, atol=1e-12)


def test_gradient_accumulation_with_uneven_split_is_exact(gen, make_batch):
    logits, labels, weights = make_batch(gen, n=9)
    logits.requires_grad_(True)
    whole = weighted_cross_entropy(logits, labels, weights)
    (whole_grad,) = torch.autograd.grad(whole, logits)
    normalizer = weights.sum()
    parts = [slice(0, 2), slice(2, 9)]
    split = sum(
        weighted_cross_entropy(logits[s], labels[s], weights[s], normalizer=normalizer)
        for s in parts
    )
    (split_grad,) = torch.autograd.grad(split, logits)
    assert split.item() == pytest.approx(whole.item(), rel=1e-12)
    assert torch.allclose(split_grad, whole_grad, atol=1e-12)


def test_zero_weight_positions_are_inert(gen, make_batch):
    logits, labels, weights = make_batch(gen)
    logits[1, labels[1]] = float("-inf")  # infinite loss, but zero weight
    logits.requires_grad_(True)
    loss = weighted_cross_entropy(logits, labels, weights)
    keep = weights != 0
    reference = weighted_cross_entropy(logits[keep], labels[keep], weights[keep])
    assert loss.item() == pytest.approx(reference.item(), rel=1e-12)
    loss.backward()
    assert torch.isfinite(logits.grad).all()


def test_all_zero_weights_give_zero_not_nan(gen, make_batch):
    logits, labels, _ = make_batch(gen)
    assert weighted_cross_entropy(logits, labels, torch.zeros(len(labels))).item() == 0.0


def test_bf16_logits_compute_in_float32(gen, make_batch):
    logits, labels, weights = make_batch(gen, dtype=torch.float32)
    ours = weighted_cross_entropy(logits.bfloat16(), labels, weights)
    reference = weighted_cross_entropy(logits.bfloat16().float(), labels, weights)
    assert ours.dtype == torch.float32
    assert ours.item() == pytest.approx(reference.item(), rel=1e-6)


def test_focal_matches_hand_and_reduces_to_ce(gen, make_batch):
    logits, labels, weights = make_batch(gen)
    total = 0.0
    for i in range(len(labels)):
        nll = _hand_nll(logits[i].tolist(), int(labels[i]))
        total += weights[i].item() * (1 - math.exp(-nll)) ** 2.0 * nll
    assert focal_loss(logits, labels, weights, gamma=2.0, normalizer=2.0).item() == pytest.approx(
        total / 2.0, rel=1e-10
    )
    ce = weighted_cross_entropy(logits, labels, weights)
    assert focal_loss(logits, labels, weights, gamma=0.0).item() == pytest.approx(ce.item())
    with pytest.raises(AutotrainError, match="gamma"):
        focal_loss(logits, labels, weights, gamma=-1.0)


def test_entropy_loss_matches_hand(gen, make_batch):
    logits, _, weights = make_batch(gen)
    total = 0.0
    for i in range(logits.shape[0]):
        z = sum(math.exp(x) for x in logits[i].tolist())
        h = -sum((math.exp(x) / z) * (x - math.log(z)) for x in logits[i].tolist())
        total += weights[i].item() * h
    assert entropy_loss(logits, weights, normalizer=5).item() == pytest.approx(total / 5, rel=1e-12)


def test_negative_normalizer_is_rejected(gen, make_batch):
    logits, labels, weights = make_batch(gen)
    with pytest.raises(AutotrainError, match="normalizer"):
        weighted_cross_entropy(logits, labels, weights, normalizer=-1.0)
