"""PPO's total loss (surrogate + value loss - entropy bonus) and explained variance by hand."""

import math

import pytest
import torch

from autotrain_pl.losses.ppo import explained_variance, per_token_kl, ppo_loss

F64 = torch.float64


def _inputs():
    logprobs = torch.tensor([-1.0, -0.5, -2.0, -0.1], dtype=F64, requires_grad=True)
    old_logprobs = torch.tensor([-1.5, -0.5, -1.0, -3.0], dtype=F64)
    advantages = torch.tensor([1.0, -2.0, -1.0, 4.0], dtype=F64)
    values = torch.tensor([0.5, 1.5, -0.2, 9.0], dtype=F64, requires_grad=True)
    old_values = torch.tensor([0.1, 1.4, -0.2, 0.0], dtype=F64)
    returns = torch.tensor([1.0, 1.0, 0.3, 0.0], dtype=F64)
    entropy = torch.tensor([2.0, 1.0, 3.0, 100.0], dtype=F64, requires_grad=True)
    mask = torch.tensor([1.0, 1.0, 0.5, 0.0], dtype=F64)  # the last token is not trained
    return logprobs, old_logprobs, advantages, values, old_values, returns, entropy, mask


def _by_hand(logprobs, old_logprobs, advantages, values, old_values, returns, entropy, mask,
             clip, clip_value, value_coef, entropy_coef):
    total = 0.0
    for i in range(3):
        ratio = math.exp(logprobs[i] - old_logprobs[i])
        clipped = min(max(ratio, 1 - clip), 1 + clip)
        policy = -min(ratio * advantages[i], clipped * advantages[i])
        moved = old_values[i] + min(max(values[i] - old_values[i], -clip_value), clip_value)
        value = 0.5 * max((values[i] - returns[i]) ** 2, (moved - returns[i]) ** 2)
        total += mask[i] * (policy + value_coef * value - entropy_coef * entropy[i])
    return total / sum(mask[:3])


def test_ppo_loss_is_surrogate_plus_value_loss_minus_entropy():
    inputs = _inputs()
    logprobs, old_logprobs, advantages, values, old_values, returns, entropy, mask = inputs
    loss, metrics = ppo_loss(logprobs, old_logprobs, advantages, values, old_values, returns,
                             mask, clip_range=0.2, clip_range_value=0.2, value_loss_coef=0.5,
                             entropy=entropy, entropy_coef=0.01)
    plain = [t.tolist() for t in inputs]
    assert loss.item() == pytest.approx(_by_hand(*plain, 0.2, 0.2, 0.5, 0.01))
    assert set(metrics) == {"policy_loss", "value_loss", "entropy", "clip_fraction",
                            "approx_kl", "value_clip_fraction"}
    assert metrics["entropy"].item() == pytest.approx((2.0 + 1.0 + 1.5) / 2.5)
    # ratios: e^0.5 (clipped, A > 0, weight 1), 1, e^-1 (clipped, A < 0, weight 0.5)
    assert metrics["clip_fraction"].item() == pytest.approx(1.5 / 2.5)
    loss.backward()
    assert entropy.grad.tolist() == pytest.approx([-0.01 / 2.5, -0.01 / 2.5, -0.005 / 2.5, 0.0])
    assert values.grad[3].item() == 0.0 and logprobs.grad[3].item() == 0.0


def test_ppo_loss_sums_with_normalizer_one_and_needs_no_entropy():
    logprobs, old_logprobs, advantages, values, old_values, returns, _, mask = _inputs()
    mean, _ = ppo_loss(logprobs, old_logprobs, advantages, values, old_values, returns, mask)
    summed, metrics = ppo_loss(logprobs, old_logprobs, advantages, values, old_values, returns,
                               mask, normalizer=1)
    assert summed.item() == pytest.approx(mean.item() * 2.5)
    assert "entropy" not in metrics
    assert metrics["policy_loss"].item() + metrics["value_loss"].item() == pytest.approx(
        summed.item())


def test_explained_variance_over_masked_tokens():
    returns = torch.tensor([[1.0, 2.0, 4.0, 100.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    assert explained_variance(returns, returns, mask).item() == pytest.approx(1.0)
    assert explained_variance(torch.zeros_like(returns), returns, mask).item() == pytest.approx(
        0.0, abs=1e-6)
    assert explained_variance(-returns, returns, mask).item() == pytest.approx(-3.0)
    assert math.isnan(explained_variance(returns, torch.ones_like(returns), mask).item())


def test_per_token_kl_estimators():
    logprobs = torch.tensor([-1.0, -2.0])
    ref = torch.tensor([-1.5, -1.0])
    assert per_token_kl(logprobs, ref).tolist() == pytest.approx([0.5, -1.0])
    delta = ref - logprobs
    assert per_token_kl(logprobs, ref, "k3").tolist() == pytest.approx(
        (delta.exp() - delta - 1).tolist())
