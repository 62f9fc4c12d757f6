"""Parity with TRL 1.16's ``GRPOTrainer`` on identical inputs, by calling TRL's own code.

Each case builds a real ``GRPOTrainer`` (builtin tiny model, one-row dataset: milliseconds) with
the case's ``GRPOConfig`` and runs:

- ``_compute_loss`` with ``_get_per_token_logps_and_entropies`` replaced by a function returning
  our per-token log-probs (a leaf tensor), so TRL's real loss code, its normalization and its
  logged ``_metrics`` run on the values we give ``grpo_loss``. Loss, gradient w.r.t. the
  log-probs and metrics must agree;
- ``_generate_and_score_completions`` with a ``rollout_func`` returning fixed token ids and a
  reward function returning fixed rewards, so TRL's own reward normalization (the advantages) and
  ``mask_truncated_completions`` run; the end-to-end case feeds that batch to ``_compute_loss``.

The stubs depend on TRL internals; if a TRL upgrade breaks them, read the new source and adapt.
"""

import os

import pytest
import torch

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
trl = pytest.importorskip("trl")

from datasets import Dataset  # noqa: E402

from autotrain_pl.losses.grpo import (  # noqa: E402
    GRPO_LOSS_TYPES,
    group_advantages,
    grpo_loss,
    mask_truncated,
    zero_std_groups,
)
from autotrain_pl.models import load_model, load_tokenizer  # noqa: E402

B, T, G, PROMPT = 8, 7, 4, 2
MAX_COMPLETION_LENGTH = 10  # > T, so dr_grpo's constant is not just the padded width
_TRL_METRICS = (
    "clip_ratio/low_mean",
    "clip_ratio/high_mean",
    "clip_ratio/region_mean",
    "cispo_clip_ratio",
    "vespo/phi_seq_mean",
    "kl",
)


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("builtin:tiny")


def _trainer(tokenizer, tmp_path, *, batch_size=B, reward_func=None, rollout_func=None, **config):
    from trl import GRPOConfig, GRPOTrainer

    args = GRPOConfig(output_dir=str(tmp_path / "trl"), report_to="none", use_cpu=True,
                      bf16=False, per_device_train_batch_size=batch_size, num_generations=G,
                      max_completion_length=MAX_COMPLETION_LENGTH, **config)

    def constant_reward(completions, **_kwargs):
        return [0.0] * len(completions)

    trainer = GRPOTrainer(model=load_model("builtin:tiny"),
                          reward_funcs=reward_func or constant_reward, args=args,
                          train_dataset=Dataset.from_list([{"prompt": "a"}]),
                          processing_class=tokenizer, rollout_func=rollout_func)
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = 1  # set by Trainer's loop, which we skip
    return trainer


def _batch(seed: int = 5):
    """Log-probs of policy, sampler and reference, a ragged mask (one empty row), advantages."""
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([7, 3, 5, 0, 2, 7, 4, 1])
    mask = (torch.arange(T) < lengths.unsqueeze(1)).long()
    logprobs = -torch.rand(B, T, generator=gen, dtype=torch.float64) * 3
    return {
        "logprobs": logprobs,
        "old": logprobs + torch.randn(B, T, generator=gen, dtype=torch.float64) * 0.4,
        "ref": logprobs + torch.randn(B, T, generator=gen, dtype=torch.float64) * 0.3,
        "advantages": torch.randn(B, generator=gen, dtype=torch.float64),
        "mask": mask,
        "entropies": torch.rand(B, T, generator=gen, dtype=torch.float64),
    }


def _trl_compute_loss(trainer, inputs, logprobs, entropies):
    """TRL's ``_compute_loss`` on ``inputs`` with our log-probs: ``(loss, grad, metrics)``."""
    leaf = logprobs.clone().requires_grad_(True)
    trainer._get_per_token_logps_and_entropies = lambda *_args, **_kwargs: (leaf, entropies, None)
    loss = trainer._compute_loss(trainer.model, inputs)
    (grad,) = torch.autograd.grad(loss, leaf)
    metrics = {name: values[-1] for name, values in trainer._metrics["train"].items()}
    return loss.item(), grad, metrics


def _ours(batch, logprobs, *, on_policy=False, **settings):
    leaf = logprobs.clone().requires_grad_(True)
    loss_sum, units, metrics = grpo_loss(
        leaf, None if on_policy else batch["old"], batch["advantages"], batch["mask"],
        ref_logprobs=batch["ref"], max_completion_length=MAX_COMPLETION_LENGTH, **settings)
    loss = loss_sum / units
    (grad,) = torch.autograd.grad(loss, leaf)
    return loss.item(), grad, metrics


def _trl_config(settings: dict) -> dict:
    renames = {"epsilon_low": "epsilon"}
    return {renames.get(key, key): value for key, value in settings.items()}


def _assert_same(ours, trl_values):
    loss, grad, metrics = ours
    trl_loss, trl_grad, trl_metrics = trl_values
    assert loss == pytest.approx(trl_loss, rel=1e-6, abs=1e-9)
    torch.testing.assert_close(grad, trl_grad, rtol=1e-6, atol=1e-9)
    assert set(metrics) == {name for name in _TRL_METRICS if name in trl_metrics}
    for name, value in metrics.items():
        assert value.item() == pytest.approx(trl_metrics[name], rel=1e-6, abs=1e-9), name


_SEQ = {"importance_sampling_level": "sequence"}
_CASES = [pytest.param({"loss_type": t}, id=t) for t in GRPO_LOSS_TYPES if t not in
          ("cispo", "luspo")]
_CASES += [
    pytest.param({"loss_type": "cispo", "epsilon_high": 1.1}, id="cispo"),
    pytest.param({"loss_type": "luspo", **_SEQ}, id="luspo"),
    pytest.param({"loss_type": "grpo", **_SEQ}, id="gspo"),
    pytest.param({"loss_type": "dapo", **_SEQ}, id="dapo-sequence"),
    pytest.param({"loss_type": "sapo", **_SEQ}, id="sapo-sequence"),
    pytest.param({"loss_type": "cispo", "epsilon_high": 1.05, **_SEQ}, id="cispo-sequence"),
    pytest.param({"loss_type": "dapo", "epsilon_high": 0.28}, id="dapo-eps_high"),
    pytest.param({"loss_type": "bnpo", "epsilon_low": 0.1, "epsilon_high": 0.3}, id="bnpo-eps"),
    pytest.param({"loss_type": "dapo", "delta": 1.3}, id="dapo-delta"),
    pytest.param({"loss_type": "grpo", "delta": 1.25, **_SEQ}, id="gspo-delta"),
    pytest.param({"loss_type": "grpo", "beta": 0.04}, id="grpo-beta"),
    pytest.param({"loss_type": "dapo", "beta": 0.1, **_SEQ}, id="dapo-sequence-beta"),
    pytest.param({"loss_type": "dr_grpo", "beta": 0.2, "use_bias_correction_kl": False},
                 id="dr_grpo-beta-no-bias-correction"),
    pytest.param({"loss_type": "luspo", "beta": 0.05, **_SEQ}, id="luspo-beta"),
    pytest.param({"loss_type": "cispo", "epsilon_high": 5.0, "beta": 0.1}, id="cispo-beta"),
    pytest.param({"loss_type": "sapo", "beta": 0.1}, id="sapo-beta"),
    pytest.param({"loss_type": "vespo", "beta": 0.1}, id="vespo-beta"),
    pytest.param({"loss_type": "sapo", "sapo_temperature_pos": 0.5,
                  "sapo_temperature_neg": 2.0}, id="sapo-temperatures"),
    pytest.param({"loss_type": "vespo", "vespo_k_pos": 1.5, "vespo_lambda_pos": 2.5,
                  "vespo_k_neg": 2.5, "vespo_lambda_neg": 1.0}, id="vespo-gamma"),
]


@pytest.mark.parametrize("settings", _CASES)
def test_grpo_loss_matches_trl_compute_loss(tokenizer, tmp_path, settings):
    batch = _batch()
    trainer = _trainer(tokenizer, tmp_path, **_trl_config(settings))
    mask = batch["mask"]
    inputs = {
        "prompt_ids": torch.full((B, PROMPT), 5),
        "prompt_mask": torch.ones(B, PROMPT, dtype=torch.long),
        "completion_ids": torch.full((B, T), 6),
        "completion_mask": mask,
        "advantages": batch["advantages"],
        "num_items_in_batch": mask.sum(),
        "old_per_token_logps": batch["old"],
        "ref_per_token_logps": batch["ref"],
    }
    trl_values = _trl_compute_loss(trainer, inputs, batch["logprobs"], batch["entropies"])
    _assert_same(_ours(batch, batch["logprobs"], **settings), trl_values)
    if settings in ({"loss_type": "dapo"}, {"loss_type": "grpo", **_SEQ}):  # both clip sides
        metrics = trl_values[2]
        assert metrics["clip_ratio/low_mean"] > 0 and metrics["clip_ratio/high_mean"] > 0


@pytest.mark.parametrize("settings", [{"loss_type": "dapo"}, {"loss_type": "grpo", "beta": 0.1},
                                      {"loss_type": "luspo", **_SEQ}])
def test_on_policy_matches_trl_without_old_logprobs(tokenizer, tmp_path, settings):
    """TRL drops ``old_per_token_logps`` when generation and optimisation are aligned."""
    batch = _batch(seed=1)
    trainer = _trainer(tokenizer, tmp_path, **_trl_config(settings))
    mask = batch["mask"]
    inputs = {
        "prompt_ids": torch.full((B, PROMPT), 5),
        "prompt_mask": torch.ones(B, PROMPT, dtype=torch.long),
        "completion_ids": torch.full((B, T), 6),
        "completion_mask": mask,
        "advantages": batch["advantages"],
        "num_items_in_batch": mask.sum(),
        "ref_per_token_logps": batch["ref"],
    }
    trl_values = _trl_compute_loss(trainer, inputs, batch["logprobs"], batch["entropies"])
    _assert_same(_ours(batch, batch["logprobs"], on_policy=True, **settings), trl_values)


# Three groups of G = 4 completions: mixed, all equal, spread. The ids end in EOS (2) or PAD (0)
# when the completion finished; the others were cut at the length limit.
_REWARDS = [1.0, 0.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.3, -2.0, 0.5, 1.7]
_COMPLETIONS = [[5, 6, 2], [7, 8, 9], [5, 2], [9, 9, 9, 9], [4], [6, 6, 2], [3, 3, 3], [2],
                [8, 8, 2], [7], [5, 5, 5, 2], [6, 2]]


def _scored_batch(tokenizer, tmp_path, **config):
    """TRL's ``_generate_and_score_completions`` on fixed completions and rewards."""

    def fixed_rewards(completions, **_kwargs):
        return list(_REWARDS)

    def fixed_rollout(prompts, _trainer):
        return {"prompt_ids": [[10, 11]] * len(prompts), "completion_ids": _COMPLETIONS,
                "logprobs": None}

    trainer = _trainer(tokenizer, tmp_path, batch_size=len(_REWARDS), reward_func=fixed_rewards,
                       rollout_func=fixed_rollout, **config)
    inputs = trainer._generate_and_score_completions([{"prompt": "a"}] * len(_REWARDS))
    return trainer, inputs


@pytest.mark.parametrize("scale_rewards", ["group", "batch", "none"])
def test_group_advantages_match_trl_reward_normalization(tokenizer, tmp_path, scale_rewards):
    trainer, inputs = _scored_batch(tokenizer, tmp_path, scale_rewards=scale_rewards)
    rewards = torch.tensor(_REWARDS)  # TRL scores in float32
    ours = group_advantages(rewards, G, scale_rewards)
    torch.testing.assert_close(ours, inputs["advantages"], rtol=1e-6, atol=1e-6)
    zero = zero_std_groups(rewards, G)
    assert zero.tolist() == [False, True, False]
    if scale_rewards != "batch":  # in "batch" mode TRL reports the batch std instead
        frac = trainer._metrics["train"]["frac_reward_zero_std"][-1]
        assert zero.float().mean().item() == pytest.approx(frac)


def test_mask_truncated_matches_trl_mask_truncated_completions(tokenizer, tmp_path):
    _, inputs = _scored_batch(tokenizer, tmp_path, mask_truncated_completions=True)
    _, plain = _scored_batch(tokenizer, tmp_path)
    truncated = torch.tensor([ids[-1] not in (2, 0) for ids in _COMPLETIONS])
    assert truncated.any() and not truncated.all()
    ours = mask_truncated(plain["completion_mask"], truncated)
    assert torch.equal(ours, inputs["completion_mask"])
    assert ours.dtype == plain["completion_mask"].dtype
    assert inputs["num_items_in_batch"].item() == ours.sum().item()


@pytest.mark.parametrize("loss_type", ["dapo", "grpo"])
def test_rewards_to_loss_end_to_end_matches_trl(tokenizer, tmp_path, loss_type):
    """TRL's scored batch (advantages, truncation mask) into TRL's loss; ours from raw parts."""
    trainer, inputs = _scored_batch(tokenizer, tmp_path, mask_truncated_completions=True,
                                    loss_type=loss_type, beta=0.05)
    width = inputs["completion_ids"].shape[1]
    gen = torch.Generator().manual_seed(2)
    logprobs = -torch.rand(len(_REWARDS), width, generator=gen, dtype=torch.float64) * 3
    old = logprobs + torch.randn(logprobs.shape, generator=gen, dtype=torch.float64) * 0.25
    ref = logprobs + torch.randn(logprobs.shape, generator=gen, dtype=torch.float64) * 0.3
    inputs = {**inputs, "old_per_token_logps": old, "ref_per_token_logps": ref}
    trl_values = _trl_compute_loss(trainer, inputs, logprobs, torch.zeros_like(logprobs))

    lengths = torch.tensor([len(ids) for ids in _COMPLETIONS])
    mask = (torch.arange(width) < lengths.unsqueeze(1)).long()
    truncated = torch.tensor([ids[-1] not in (2, 0) for ids in _COMPLETIONS])
    batch = {"old": old, "ref": ref, "mask": mask_truncated(mask, truncated),
             "advantages": group_advantages(torch.tensor(_REWARDS), G)}
    _assert_same(_ours(batch, logprobs, loss_type=loss_type, beta=0.05), trl_values)
