"""PPO rewards, GAE, whitening, value loss and KL controllers against hand computations.

TRL 1.16 (installed) no longer ships ``PPOTrainer`` or ``masked_whiten``; the TRL references
below are copies of TRL 0.x's ``trl.core.masked_whiten`` and of ``PPOTrainer``'s GAE loop.
"""

import math

import pytest
import torch

from autotrain_pl.errors import AutotrainError
from autotrain_pl.losses.ppo import (
    AdaptiveKLController,
    FixedKLController,
    build_kl_controller,
    check_ppo_settings,
    gae,
    kl_penalized_rewards,
    value_loss,
    whiten,
)

F64 = torch.float64


def _tensor(rows):
    return torch.tensor(rows, dtype=F64)


def _trl_masked_whiten(values, mask, shift_mean=True):
    """TRL 0.x ``trl.core.masked_whiten`` (with ``masked_mean`` / unbiased ``masked_var``)."""
    mean = (values * mask).sum() / mask.sum()
    variance = ((values - mean) ** 2 * mask).sum() / mask.sum()
    variance = variance * mask.sum() / (mask.sum() - 1)
    whitened = (values - mean) * torch.rsqrt(variance + 1e-8)
    if not shift_mean:
        whitened += mean
    return whitened


def _trl_gae(rewards, values, gamma, lam):
    """TRL 0.x ``PPOTrainer``'s loop; it needs rewards and values zeroed at padding."""
    lastgaelam = 0
    advantages_reversed = []
    gen_length = rewards.shape[1]
    for t in reversed(range(gen_length)):
        nextvalues = values[:, t + 1] if t < gen_length - 1 else 0.0
        delta = rewards[:, t] + gamma * nextvalues - values[:, t]
        lastgaelam = delta + gamma * lam * lastgaelam
        advantages_reversed.append(lastgaelam)
    advantages = torch.stack(advantages_reversed[::-1], axis=1)
    return advantages, advantages + values


def _naive_gae(rewards, values, mask, gamma, lam):
    """Per-row reference: compact the masked tokens, run textbook GAE, scatter back."""
    advantages = torch.zeros_like(values)
    for b in range(values.shape[0]):
        steps = [t for t in range(values.shape[1]) if mask[b, t]]
        running, next_value = 0.0, 0.0
        for i in reversed(range(len(steps))):
            t = steps[i]
            delta = rewards[b, t].item() + gamma * next_value - values[b, t].item()
            running = delta + gamma * lam * running
            advantages[b, t] = running
            next_value = values[b, t].item()
    return advantages


@pytest.fixture
def episode():
    """Row 0 is right-padded after 3 tokens; row 1 has a tool token at position 1."""
    rewards = _tensor([[0.0, 0.0, 1.0, 0.0], [0.2, 0.0, 0.0, 1.0]])
    values = _tensor([[0.5, 0.4, 0.3, 9.0], [0.1, 7.0, 0.2, 0.6]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 1, 1]])
    return rewards, values, mask


def test_gae_matches_hand_recursion(episode):
    rewards, values, mask = episode
    advantages, returns = gae(rewards, values, mask, gamma=0.9, lam=0.8)  # gamma * lam = 0.72
    # Row 0, backwards: t=2: 1 + 0.9*0 - 0.3 = 0.7; t=1: (0 + 0.9*0.3 - 0.4) + 0.72*0.7 = 0.374;
    # t=0: (0 + 0.9*0.4 - 0.5) + 0.72*0.374 = 0.12928; the padded value 9.0 is never read.
    # Row 1: t=3: 1 - 0.6 = 0.4; t=2: (0 + 0.9*0.6 - 0.2) + 0.72*0.4 = 0.628; t=1 is the tool
    # token (skipped, its value 7.0 never read); t=0: (0.2 + 0.9*0.2 - 0.1) + 0.72*0.628 = 0.73216.
    expected = _tensor([[0.12928, 0.374, 0.7, 0.0], [0.73216, 0.0, 0.628, 0.4]])
    assert torch.allclose(advantages, expected, atol=1e-12)
    expected_returns = _tensor([[0.62928, 0.774, 1.0, 0.0], [0.83216, 0.0, 0.828, 1.0]])
    assert torch.allclose(returns, expected_returns, atol=1e-12)


def test_gae_lambda_one_gamma_one_is_reward_to_go_minus_value(episode):
    rewards, values, mask = episode
    advantages, returns = gae(rewards, values, mask, gamma=1.0, lam=1.0)
    masked_rewards = rewards * mask
    reward_to_go = masked_rewards.flip(-1).cumsum(-1).flip(-1)
    assert torch.allclose(advantages, (reward_to_go - values) * mask, atol=1e-12)
    assert torch.allclose(returns, reward_to_go * mask, atol=1e-12)


def test_gae_lambda_zero_is_one_step_td_error(episode):
    rewards, values, mask = episode
    advantages, _ = gae(rewards, values, mask, gamma=0.9, lam=0.0)
    # Next values: row 0 -> 0.4, 0.3, end; row 1 -> 0.2 (skipping the tool token), 0.6, end.
    expected = _tensor(
        [
            [0.0 + 0.9 * 0.4 - 0.5, 0.0 + 0.9 * 0.3 - 0.4, 1.0 - 0.3, 0.0],
            [0.2 + 0.9 * 0.2 - 0.1, 0.0, 0.0 + 0.9 * 0.6 - 0.2, 1.0 - 0.6],
        ]
    )
    assert torch.allclose(advantages, expected, atol=1e-12)


def test_gae_credits_reward_on_tool_token_to_previous_policy_token(episode):
    rewards, values, mask = episode
    moved = rewards.clone()
    moved[1, 0], moved[1, 1] = 0.1, 0.1  # the same 0.2, half of it on the tool token
    moved[0, 3] = 5.0  # padding after the last policy token of row 0: credited to t=2
    on_policy_tokens = rewards.clone()
    on_policy_tokens[0, 2] += 5.0
    assert torch.allclose(gae(moved, values, mask)[0], gae(on_policy_tokens, values, mask)[0])


def test_gae_matches_trl_loop_on_right_padded_rows_and_naive_on_random_masks():
    gen = torch.Generator().manual_seed(0)
    rewards = torch.randn(5, 9, generator=gen, dtype=F64)
    values = torch.randn(5, 9, generator=gen, dtype=F64)
    lengths = torch.tensor([9, 1, 4, 7, 0])
    padded = (torch.arange(9) < lengths[:, None]).long()
    rewards = rewards * padded  # TRL's convention; ours would credit padding rewards to the end
    trl_adv, trl_returns = _trl_gae(rewards, values * padded, 0.97, 0.9)
    advantages, returns = gae(rewards, values, padded, gamma=0.97, lam=0.9)
    assert torch.allclose(advantages, trl_adv * padded, atol=1e-12)
    assert torch.allclose(returns, trl_returns * padded, atol=1e-12)

    holes = (torch.rand(5, 9, generator=gen) < 0.6).long()
    rewards_on_steps = rewards * holes
    advantages, _ = gae(rewards_on_steps, values, holes, gamma=0.97, lam=0.9)
    naive = _naive_gae(rewards_on_steps, values, holes, 0.97, 0.9)
    assert torch.allclose(advantages, naive, atol=1e-12)


def test_gae_is_detached_and_float32_for_half_inputs(episode):
    rewards, values, mask = episode
    values = values.to(torch.bfloat16).requires_grad_(True)
    advantages, returns = gae(rewards.to(torch.bfloat16), values, mask)
    assert advantages.dtype == returns.dtype == torch.float32
    assert not advantages.requires_grad and not returns.requires_grad


@pytest.mark.parametrize("shift_mean", [True, False])
def test_whiten_matches_trl_and_leaves_unmasked_entries(shift_mean):
    gen = torch.Generator().manual_seed(1)
    values = torch.randn(3, 6, generator=gen, dtype=F64) * 3 + 2
    mask = (torch.rand(3, 6, generator=gen) < 0.7).long()
    out = whiten(values, mask, shift_mean=shift_mean)
    selected = out[mask.bool()]
    assert torch.allclose(selected, _trl_masked_whiten(values, mask, shift_mean)[mask.bool()])
    assert torch.equal(out[~mask.bool()], values[~mask.bool()])
    assert selected.std().item() == pytest.approx(1.0, abs=1e-6)  # unbiased std, as TRL
    expected_mean = 0.0 if shift_mean else values[mask.bool()].mean().item()
    assert selected.mean().item() == pytest.approx(expected_mean, abs=1e-9)


def test_whiten_degenerate_masks_give_no_nan():
    values = _tensor([[1.0, 2.0, 3.0]])
    assert torch.equal(whiten(values, torch.tensor([[0, 0, 0]])), values)
    assert torch.equal(whiten(values, torch.tensor([[0, 1, 0]])), _tensor([[1.0, 0.0, 3.0]]))


def test_value_loss_selects_branch_by_hand():
    old = _tensor([0.0, 0.0, 1.0, 1.0, 5.0])
    values = _tensor([0.5, 0.1, 0.5, 1.0, -3.0]).requires_grad_(True)
    returns = _tensor([1.0, -1.0, 0.0, 2.0, 0.0])
    mask = _tensor([1.0, 1.0, 1.0, 1.0, 0.0])
    loss, metrics = value_loss(values, old, returns, mask, clip_range_value=0.2, normalizer=1)
    # token: v, v_clip, (v - R)^2, (v_clip - R)^2 -> max
    # 0: 0.5, 0.2, 0.25, 0.64 -> clipped 0.64 (the clip keeps v from getting credit)
    # 1: 0.1, 0.1, 1.21, 1.21 -> equal, unclipped
    # 2: 0.5, 0.8, 0.25, 0.64 -> clipped 0.64
    # 3: 1.0, 1.0, 1.0, 1.0 -> equal, unclipped; 4 is masked out
    assert loss.item() == pytest.approx(0.5 * (0.64 + 1.21 + 0.64 + 1.0), rel=1e-12)
    assert metrics["value_clip_fraction"].item() == pytest.approx(0.5)
    loss.backward()
    # Clipped branch: gradient 0. Unclipped: v - R. Masked token 4: 0.
    assert torch.allclose(values.grad, _tensor([0.0, 1.1, 0.0, -1.0, 0.0]), atol=1e-12)


def test_value_loss_without_clip_and_default_normalizer():
    values = _tensor([0.5, 2.0, 9.0]).requires_grad_(True)
    returns = _tensor([1.0, 1.0, 0.0])
    mask = _tensor([1.0, 1.0, 0.0])
    loss, metrics = value_loss(values, values.detach() + 10, returns, mask, clip_range_value=None)
    assert loss.item() == pytest.approx(0.5 * (0.25 + 1.0) / 2)
    assert metrics["value_clip_fraction"].item() == 0.0


def test_explained_variance():
    returns = _tensor([[1.0, 2.0, 4.0, 100.0]])
    mask = _tensor([[1.0, 1.0, 1.0, 0.0]])
    perfect = returns.clone()
    perfect[0, 3] = -50.0  # unmasked error does not count
    _, metrics = value_loss(perfect, perfect, returns, mask)
    assert metrics["explained_variance"].item() == pytest.approx(1.0)
    constant = torch.full_like(returns, 7.0)
    _, metrics = value_loss(constant, constant, returns, mask)
    assert metrics["explained_variance"].item() == pytest.approx(0.0, abs=1e-12)
    _, metrics = value_loss(constant, constant, torch.ones_like(returns), mask)
    assert math.isnan(metrics["explained_variance"].item())


def test_kl_penalized_rewards_places_score_on_last_masked_token():
    logprobs = _tensor([[-1.0, -2.0, -0.5, -9.0], [-0.3, -0.7, -1.1, -0.2], [-1.0] * 4])
    ref = _tensor([[-1.5, -2.0, -0.2, -1.0], [-0.3, -0.2, -1.0, -0.4], [-2.0] * 4])
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 1, 1], [0, 0, 0, 0]])
    scores = _tensor([2.0, -1.0, 5.0])
    rewards = kl_penalized_rewards(scores, logprobs, ref, mask, 0.1)
    expected = _tensor(
        [
            [-0.1 * 0.5, 0.0, -0.1 * -0.3 + 2.0, 0.0],
            [0.0, 0.0, -0.1 * -0.1, -0.1 * 0.2 - 1.0],
            [0.0, 0.0, 0.0, 0.0],  # no policy token: the score has nowhere to go
        ]
    )
    assert torch.allclose(rewards, expected, atol=1e-12)
    step_rewards = torch.zeros_like(logprobs)
    step_rewards[1, 0] = 0.5
    with_steps = kl_penalized_rewards(scores, logprobs, ref, mask, 0.1, step_rewards=step_rewards)
    assert torch.allclose(with_steps, expected + step_rewards, atol=1e-12)


@pytest.mark.parametrize("kl_estimator", ["k1", "k3"])
def test_kl_term_vanishes_when_policy_is_reference(kl_estimator):
    gen = torch.Generator().manual_seed(2)
    logprobs = -torch.rand(2, 5, generator=gen, dtype=F64).requires_grad_(True)
    mask = torch.tensor([[1, 1, 1, 1, 1], [0, 1, 1, 0, 0]])
    scores = _tensor([0.0, 0.0])
    rewards = kl_penalized_rewards(
        scores, logprobs, logprobs.detach(), mask, 0.3, kl_estimator=kl_estimator
    )
    assert torch.equal(rewards, torch.zeros_like(rewards)) and not rewards.requires_grad


def test_k3_estimator_is_per_token_ref_kl():
    logprobs, ref = _tensor([[-1.0, -2.0]]), _tensor([[-1.5, -1.0]])
    rewards = kl_penalized_rewards(
        _tensor([0.0]), logprobs, ref, torch.ones(1, 2), 2.0, kl_estimator="k3"
    )
    k3 = [math.exp(r - lp) - (r - lp) - 1 for lp, r in [(-1.0, -1.5), (-2.0, -1.0)]]
    assert torch.allclose(rewards, -2.0 * _tensor([k3]), atol=1e-12)


def test_adaptive_kl_controller_moves_towards_target():
    controller = AdaptiveKLController(0.1, target=6.0, horizon=10_000)
    controller.update(9.0, n_steps=100)  # error 0.5 clipped to 0.2
    assert controller.value == pytest.approx(0.1 * (1 + 0.2 * 100 / 10_000))
    above = controller.value
    controller.update(torch.tensor(5.4), n_steps=100)  # error -0.1
    assert controller.value == pytest.approx(above * (1 - 0.1 * 100 / 10_000))
    controller.update(6.0, n_steps=100)
    assert controller.value == pytest.approx(above * (1 - 0.1 * 100 / 10_000))


def test_fixed_controller_and_builder():
    fixed = FixedKLController(0.05)
    fixed.update(100.0, n_steps=64)
    assert fixed.value == 0.05
    assert isinstance(build_kl_controller(0.1, None, 10_000), FixedKLController)
    adaptive = build_kl_controller(0.1, 6.0, 10_000)
    assert isinstance(adaptive, AdaptiveKLController) and adaptive.value == 0.1


_GOOD = dict(
    gamma=0.99,
    lam=0.95,
    clip_range=0.2,
    clip_range_value=0.2,
    value_loss_coef=1.0,
    kl_coef=0.1,
    target_kl=None,
    kl_horizon=10_000,
    kl_estimator="k1",
)


@pytest.mark.parametrize(
    ("field", "value", "flag"),
    [
        ("gamma", 1.5, "model.rl_gamma"),
        ("lam", -0.1, "model.rl_gae_lambda"),
        ("clip_range", 1.0, "model.rl_clip_range"),
        ("clip_range", 0.0, "model.rl_clip_range"),
        ("clip_range_value", 0.0, "model.rl_clip_range_value"),
        ("value_loss_coef", "1", "model.rl_value_loss_coef"),
        ("kl_coef", -0.1, "model.rl_kl_coef"),
        ("target_kl", 0.0, "model.rl_target_kl"),
        ("kl_horizon", 0, "model.rl_kl_horizon"),
        ("kl_estimator", "k2", "model.rl_kl_estimator"),
    ],
)
def test_check_ppo_settings_names_the_field(field, value, flag):
    check_ppo_settings(**_GOOD)
    check_ppo_settings(**{**_GOOD, "clip_range_value": None, "target_kl": 6.0, "gamma": 1})
    with pytest.raises(AutotrainError, match=flag.replace(".", r"\.")) as info:
        check_ppo_settings(**{**_GOOD, field: value})
    assert "\n" not in str(info.value)
