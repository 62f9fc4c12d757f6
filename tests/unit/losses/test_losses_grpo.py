"""GRPO losses and advantages: behaviour, hand computations (TRL parity: test_losses_trl_grpo)."""

import math

import pytest
import torch

from autotrain_pl.errors import AutotrainError
from autotrain_pl.losses import importance_sampling_loss
from autotrain_pl.losses.grpo import (
    GRPO_LOSS_TYPES,
    check_grpo_settings,
    group_advantages,
    grpo_loss,
    mask_truncated,
    zero_std_groups,
)

B, T, MAX_LEN = 6, 5, 8
LENGTHS = torch.tensor([5, 2, 0, 3, 1, 4])
# Settings each loss type needs to be valid (cispo: a ratio cap >= 1; luspo: sequence level).
VALID = {"cispo": {"epsilon_high": 5.0}, "luspo": {"importance_sampling_level": "sequence"}}


def _settings(loss_type: str, **extra) -> dict:
    return {"loss_type": loss_type, "max_completion_length": MAX_LEN,
            **VALID.get(loss_type, {}), **extra}


@pytest.fixture
def batch():
    gen = torch.Generator().manual_seed(4)
    mask = (torch.arange(T) < LENGTHS.unsqueeze(1)).to(torch.float64)
    logprobs = -torch.rand(B, T, generator=gen, dtype=torch.float64) * 2
    return {
        "logprobs": logprobs,
        "old": logprobs + torch.randn(B, T, generator=gen, dtype=torch.float64) * 0.3,
        "ref": logprobs + torch.randn(B, T, generator=gen, dtype=torch.float64) * 0.3,
        "advantages": torch.randn(B, generator=gen, dtype=torch.float64),
        "mask": mask,
    }


def _loss_and_grad(logprobs, *args, **kwargs):
    leaf = logprobs.clone().requires_grad_(True)
    loss_sum, units, metrics = grpo_loss(leaf, *args, **kwargs)
    (grad,) = torch.autograd.grad(loss_sum / units, leaf)
    return loss_sum / units, grad, metrics


def _reinforce_weights(loss_type: str, mask):
    """Per-token weights under which each type's on-policy gradient is plain REINFORCE."""
    lengths = mask.sum(-1, keepdim=True)
    if loss_type in ("grpo", "sapo"):
        return mask / (lengths.clamp(min=1) * B)  # mean over tokens, then over sequences
    if loss_type == "dr_grpo":
        return mask / (B * MAX_LEN)
    if loss_type == "luspo":  # the sequence mean log-ratio times the length: each token once
        return mask / B
    return mask / mask.sum()  # dapo, bnpo, cispo, vespo: mean over all tokens


@pytest.mark.parametrize("loss_type", GRPO_LOSS_TYPES)
def test_on_policy_gradient_is_the_policy_gradient(batch, loss_type):
    logprobs, advantages, mask = batch["logprobs"], batch["advantages"], batch["mask"]
    loss, grad, _ = _loss_and_grad(logprobs, logprobs.clone(), advantages, mask,
                                   **_settings(loss_type))
    weights = _reinforce_weights(loss_type, mask)
    leaf = logprobs.clone().requires_grad_(True)
    expanded = advantages.unsqueeze(1).expand(B, T)
    reinforce = importance_sampling_loss(leaf.reshape(-1), None, expanded.reshape(-1),
                                         weights.reshape(-1), normalizer=1)
    (expected,) = torch.autograd.grad(reinforce, leaf)
    torch.testing.assert_close(grad, expected, rtol=1e-12, atol=1e-15)
    if loss_type in ("grpo", "dr_grpo", "dapo", "bnpo", "luspo"):  # r = 1: the surrogate is -A
        assert loss.item() == pytest.approx(reinforce.item(), rel=1e-12)


@pytest.mark.parametrize("level", ["token", "sequence"])
@pytest.mark.parametrize("bias_correction", [True, False])
@pytest.mark.parametrize("loss_type", ["grpo", "dapo", "cispo"])
def test_kl_term_is_zero_when_the_policy_is_the_reference(batch, loss_type, level,
                                                          bias_correction):
    args = (batch["logprobs"], batch["old"], batch["advantages"], batch["mask"])
    settings = _settings(loss_type, importance_sampling_level=level)
    without, grad_without, _ = _loss_and_grad(*args, **settings)
    with_kl, grad_with, metrics = _loss_and_grad(
        *args, beta=0.5, ref_logprobs=batch["logprobs"].clone(),
        use_bias_correction_kl=bias_correction, **settings)
    assert with_kl.item() == pytest.approx(without.item(), abs=1e-15)
    torch.testing.assert_close(grad_with, grad_without, rtol=0, atol=1e-15)
    assert metrics["kl"].item() == 0.0
    _, _, away = _loss_and_grad(*args, beta=0.5, ref_logprobs=batch["ref"], **settings)
    assert away["kl"].item() > 0


_VALID_LEVELS = [(t, level) for t in GRPO_LOSS_TYPES for level in ("token", "sequence")
                 if (t, level) not in (("luspo", "token"), ("vespo", "sequence"))]


@pytest.mark.parametrize(("loss_type", "level"), _VALID_LEVELS)
def test_masked_positions_get_no_gradient_whatever_they_hold(batch, loss_type, level):
    padding = batch["mask"] == 0
    garbage = {name: batch[name].masked_fill(padding, value)
               for name, value in (("logprobs", -math.inf), ("old", math.nan), ("ref", 1e4))}
    settings = _settings(loss_type, importance_sampling_level=level, beta=0.1)
    dirty = _loss_and_grad(garbage["logprobs"], garbage["old"], batch["advantages"],
                           batch["mask"], ref_logprobs=garbage["ref"], **settings)
    clean = _loss_and_grad(batch["logprobs"], batch["old"], batch["advantages"], batch["mask"],
                           ref_logprobs=batch["ref"], **settings)
    assert torch.isfinite(dirty[0]) and torch.isfinite(dirty[1]).all()
    assert (dirty[1][padding] == 0).all() and (dirty[1][~padding] != 0).any()
    assert dirty[0].item() == clean[0].item()
    assert torch.equal(dirty[1], clean[1])
    for name, value in dirty[2].items():
        assert value.item() == clean[2][name].item(), name


def test_units_per_loss_type(batch):
    args = (batch["logprobs"], batch["old"], batch["advantages"], batch["mask"])
    tokens = LENGTHS.sum().item()
    expected = {"grpo": B, "sapo": B, "luspo": B, "dr_grpo": B * MAX_LEN, "dapo": tokens,
                "bnpo": tokens, "cispo": tokens, "vespo": tokens}
    for loss_type in GRPO_LOSS_TYPES:
        _, units, _ = grpo_loss(*args, **_settings(loss_type))
        assert units.item() == expected[loss_type], loss_type
        assert not units.requires_grad


def test_sequence_level_ratio_moves_a_sequence_as_one(batch):
    """GSPO: the loss depends on each sequence's mean log-ratio, so its tokens share a gradient."""
    _, grad, _ = _loss_and_grad(batch["logprobs"], batch["old"], batch["advantages"],
                                batch["mask"], loss_type="grpo",
                                importance_sampling_level="sequence")
    for row, length in enumerate(LENGTHS.tolist()):
        values = grad[row, :length]
        assert torch.allclose(values, values[:1].expand_as(values))
    assert (grad[batch["mask"] == 0] == 0).all() and (grad != 0).any()


def test_clip_metrics_match_a_hand_count():
    logprobs = torch.log(torch.tensor([[0.5, 1.5, 1.0], [1.3, 0.7, 1.0]], dtype=torch.float64))
    advantages = torch.tensor([-1.0, 1.0], dtype=torch.float64)
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]], dtype=torch.float64)
    old = torch.zeros_like(logprobs)
    _, _, metrics = grpo_loss(logprobs, old, advantages, mask)  # ratios are exp(logprobs)
    assert metrics["clip_ratio/low_mean"].item() == pytest.approx(1 / 5)  # 0.5 with A < 0
    assert metrics["clip_ratio/high_mean"].item() == pytest.approx(1 / 5)  # 1.3 with A > 0
    assert metrics["clip_ratio/region_mean"].item() == pytest.approx(2 / 5)
    _, _, capped = grpo_loss(logprobs, old, advantages, mask, loss_type="cispo", epsilon_high=1.2)
    assert capped["cispo_clip_ratio"].item() == pytest.approx(1 / 5)  # 1.3 with A > 0


def test_all_equal_groups_get_zero_advantages_and_are_reported():
    # eight float32 rewards of 0.3: their float32 std is 3e-8, not 0, from rounding alone
    rewards = torch.tensor([1.0] * 8 + [0.0, 1.0] * 4 + [0.3] * 8 + [0.0, 0.5, 2.0, 1.5] * 2)
    assert zero_std_groups(rewards, 8).tolist() == [True, False, True, False]
    spread = rewards[24:].double()
    for scale in ("group", "batch", "none"):
        advantages = group_advantages(rewards, 8, scale)
        assert advantages.dtype == torch.float32
        assert (advantages[:8] == 0).all() and (advantages[16:24] == 0).all()
        centred = spread - spread.mean()
        divisor = {"group": spread.std().item() + 1e-4,
                   "batch": rewards.double().std().item() + 1e-4, "none": 1.0}[scale]
        torch.testing.assert_close(advantages[24:].double(), centred / divisor, rtol=1e-6,
                                   atol=1e-7)
    half = group_advantages(rewards, 8)[8:16].double()  # 0/1 group: +-0.5 / (std + 1e-4)
    expected = 0.5 / (math.sqrt(8 * 0.25 / 7) + 1e-4)
    torch.testing.assert_close(half.abs(), torch.full((8,), expected, dtype=torch.float64))


def test_group_advantages_shapes_and_singletons():
    assert group_advantages(torch.tensor([3.0, 1.0]), 1).tolist() == [0.0, 0.0]
    assert group_advantages(torch.tensor([2.0], dtype=torch.float64), 1, "batch").tolist() == [0.0]
    with pytest.raises(ValueError, match="groups of 4"):
        group_advantages(torch.zeros(6), 4)
    with pytest.raises(ValueError, match=r"\[B\]"):
        zero_std_groups(torch.zeros(2, 4), 4)
    with pytest.raises(AutotrainError, match="model.scale_rewards='std'"):
        group_advantages(torch.zeros(4), 2, "std")


def test_mask_truncated_zeroes_whole_rows_and_keeps_dtype():
    mask = torch.tensor([[1, 1, 0], [1, 1, 1], [1, 0, 0]])
    truncated = torch.tensor([False, True, False])
    assert mask_truncated(mask, truncated).tolist() == [[1, 1, 0], [0, 0, 0], [1, 0, 0]]
    assert mask_truncated(mask.float(), truncated).dtype == torch.float32
    with pytest.raises(ValueError, match="truncated shape"):
        mask_truncated(mask, torch.tensor([True]))


def test_dtypes_and_input_errors(batch):
    args = (batch["logprobs"].to(torch.bfloat16), None, batch["advantages"], batch["mask"])
    loss_sum, units, _ = grpo_loss(*args)
    assert loss_sum.dtype == units.dtype == torch.float32
    with pytest.raises(ValueError, match="ref_logprobs"):
        grpo_loss(*args, beta=0.1)
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        grpo_loss(batch["logprobs"], None, batch["advantages"], batch["mask"][:, :2])


def test_check_grpo_settings_returns_the_upper_epsilon():
    assert check_grpo_settings() == 0.2
    assert check_grpo_settings(epsilon_low=0.1, epsilon_high=0.28) == 0.28
    assert check_grpo_settings(loss_type="cispo", epsilon_high=5.0) == 5.0


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"loss_type": "dapoo"}, "model.loss_type='dapoo' is not a GRPO loss type; did you mean "
                                 "'dapo'"),
        ({"loss_type": "ppo"}, "use one of grpo, dr_grpo, dapo, bnpo, cispo, sapo, luspo, vespo"),
        ({"importance_sampling_level": "sequense"}, "did you mean 'sequence'"),
        ({"scale_rewards": True}, "model.scale_rewards=True is not a reward scaling"),
        ({"epsilon_low": 1.0}, r"model.epsilon=1.0 must lie in \[0, 1\)"),
        ({"epsilon_low": -0.1}, r"model.epsilon=-0.1 must lie in \[0, 1\)"),
        ({"epsilon_low": True}, "model.epsilon=True must be a finite number"),
        ({"epsilon_high": -0.5}, "model.epsilon_high=-0.5 must be >= 0"),
        ({"loss_type": "cispo"}, "model.epsilon_high=None is cispo's cap.*model.epsilon=0.2"),
        ({"loss_type": "cispo", "epsilon_high": 0.28}, "must be >= 1 .ScaleRL uses 5.0"),
        ({"loss_type": "luspo"}, "'luspo' needs model.importance_sampling_level='sequence'"),
        ({"loss_type": "vespo", "importance_sampling_level": "sequence"},
         "has no effect with model.loss_type='vespo'"),
        ({"beta": -0.1}, "model.beta=-0.1 must be >= 0"),
        ({"loss_type": "sapo", "delta": 4.0}, "model.delta=4.0 has no effect with model.loss_type"),
        ({"delta": 1.2}, r"model.delta=1.2 must be > 1 \+ model.epsilon_high \(1.2\)"),
        ({"sapo_temperature_neg": 0.0}, "model.sapo_temperature_neg=0.0 must be > 0"),
        ({"vespo_k_pos": -1.0}, "model.vespo_k_pos=-1.0 must be >= 0"),
        ({"vespo_lambda_neg": 0.0}, "model.vespo_lambda_neg=0.0 must be > 0"),
        ({"loss_type": "dr_grpo"}, "max_completion_length=None must be a positive integer"),
        ({"loss_type": "dr_grpo", "max_completion_length": 0}, "max_completion_length=0"),
    ],
)
def test_check_grpo_settings_refuses_in_one_line(settings, message):
    with pytest.raises(AutotrainError, match=message) as error:
        check_grpo_settings(**settings)
    assert "\n" not in str(error.value)
