"""Importance sampling, PPO clip and KL-to-reference losses against hand computations."""

import math

import pytest
import torch

from autotrain_pl.errors import AutotrainError
from autotrain_pl.losses import (
    importance_sampling_loss,
    per_token_ppo_clip_loss,
    ppo_clip_loss,
    ref_kl_penalty,
)


@pytest.fixture
def rollout():
    logprobs = torch.tensor([-1.0, -0.5, -2.0, -0.1, -3.0, -1.2], dtype=torch.float64)
    old = torch.tensor([-1.5, -0.4, -1.0, -0.1, -2.5, -1.25], dtype=torch.float64)
    advantages = torch.tensor([1.0, -2.0, 0.5, 1.0, -1.0, 0.0], dtype=torch.float64)
    weights = torch.tensor([1.0, 0.5, 1.0, 0.0, 2.0, 1.0], dtype=torch.float64)
    return logprobs, old, advantages, weights


def test_importance_sampling_matches_hand_and_gradient(rollout):
    logprobs, old, advantages, weights = rollout
    logprobs = logprobs.clone().requires_grad_(True)
    loss = importance_sampling_loss(logprobs, old, advantages, weights, normalizer=4.0)
    ratios = [math.exp(a - b) for a, b in zip(logprobs.tolist(), old.tolist(), strict=True)]
    triples = zip(weights.tolist(), ratios, advantages.tolist(), strict=True)
    hand = sum(-w * r * a for w, r, a in triples)
    assert loss.item() == pytest.approx(hand / 4.0, rel=1e-12)
    loss.backward()
    expected = -torch.tensor(ratios, dtype=torch.float64) * advantages * weights / 4.0
    assert torch.allclose(logprobs.grad, expected, atol=1e-12)


def test_on_policy_importance_sampling_is_reinforce(rollout):
    logprobs, _, advantages, weights = rollout
    logprobs = logprobs.clone().requires_grad_(True)
    loss = importance_sampling_loss(logprobs, None, advantages, weights)
    assert loss.item() == pytest.approx(-(advantages * weights).sum().item() / weights.sum().item())
    loss.backward()
    assert torch.allclose(logprobs.grad, -advantages * weights / weights.sum())


def _hand_ppo(logp, old, adv, low, high):
    ratio = math.exp(logp - old)
    return -min(ratio * adv, min(max(ratio, 1 - low), 1 + high) * adv), ratio


@pytest.mark.parametrize("clip_eps_high", [None, 0.28])
def test_ppo_matches_hand(rollout, clip_eps_high):
    logprobs, old, advantages, weights = rollout
    high = 0.2 if clip_eps_high is None else clip_eps_high
    total, clipped, kl = 0.0, 0.0, 0.0
    columns = (logprobs.tolist(), old.tolist(), advantages.tolist(), weights.tolist())
    for lp, o, a, w in zip(*columns, strict=True):
        per_token, ratio = _hand_ppo(lp, o, a, 0.2, high)
        total += w * per_token
        clipped += w * float((ratio < 0.8 and a < 0) or (ratio > 1 + high and a > 0))
        kl += w * ((ratio - 1) - math.log(ratio))
    loss, metrics = ppo_clip_loss(
        logprobs, old, advantages, weights, clip_eps=0.2, clip_eps_high=clip_eps_high, normalizer=3
    )
    assert loss.item() == pytest.approx(total / 3, rel=1e-12)
    assert metrics["clip_fraction"].item() == pytest.approx(clipped / weights.sum().item())
    assert metrics["approx_kl"].item() == pytest.approx(kl / weights.sum().item())
    assert clipped > 0  # the fixture does exercise the clip


def test_ppo_scalar_advantage_broadcasts(rollout):
    logprobs, old, _, _ = rollout
    per_token = per_token_ppo_clip_loss(logprobs, old, 0.5)
    expected = per_token_ppo_clip_loss(logprobs, old, torch.full_like(logprobs, 0.5))
    assert torch.allclose(per_token, expected)
    with pytest.raises(AutotrainError, match="clip_eps"):
        per_token_ppo_clip_loss(logprobs, old, 0.5, clip_eps=1.5)


def test_ref_kl_matches_hand(rollout):
    logprobs, old, _, weights = rollout
    hand = sum(
        w * (math.exp(r - lp) - (r - lp) - 1)
        for lp, r, w in zip(logprobs.tolist(), old.tolist(), weights.tolist(), strict=True)
    )
    assert ref_kl_penalty(logprobs, old, weights).item() == pytest.approx(
        hand / weights.sum().item(), rel=1e-12
    )
