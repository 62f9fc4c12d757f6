"""PPOModule's update on hand-built rollouts, without a trainer: with one epoch, no clipping and no
value or KL term it is a plain policy-gradient step; prompt, padding and failed rollouts carry no
gradient; the KL to an identical reference is zero; the value function and KL coefficient are
kept where they belong."""

import copy

import lightning as L
import pytest
import torch

from autotrain_pl.data import ChatDataModule
from autotrain_pl.generation.token_completer import TokenCompletion
from autotrain_pl.losses.ppo import AdaptiveKLController
from autotrain_pl.models import load_tokenizer
from autotrain_pl.objectives import PPOModule
from autotrain_pl.objectives.rl.base import batch_rows
from autotrain_pl.objectives.rl.ppo import KL_COEF_KEY
from autotrain_pl.rl import REWARD_FUNCTIONS, Rollout

pytestmark = pytest.mark.usefixtures("one_torch_thread")

GAMMA, LAMBDA = 0.9, 0.8
#: (prompt length, completion length, score): different lengths, so rows carry padding.
SHAPES = [(5, 4, 1.0), (3, 6, 0.0), (6, 2, 0.5)]


def make_module(**options) -> PPOModule:
    torch.manual_seed(0)
    module = PPOModule("builtin:tiny", rl_gamma=GAMMA, rl_gae_lambda=LAMBDA, export=False,
                       **options)
    module.attach_tokenizer(load_tokenizer("builtin:tiny"))
    return module


def make_rollouts(shapes=SHAPES, seed: int = 0, failed: tuple[int, ...] = ()) -> list[Rollout]:
    generator = torch.Generator().manual_seed(seed)
    rollouts = []
    for index, (prompt, completion, score) in enumerate(shapes):
        ids = torch.randint(10, 4000, (prompt + completion,), generator=generator).tolist()
        rollouts.append(Rollout(token_ids=ids, prompt_length=prompt,
                                logprobs=[0.0] * (prompt + completion),
                                mask=[0] * prompt + [1] * completion, reward=score, group=index,
                                failed=index in failed))
    return rollouts


def policy_gradients(module: PPOModule, rollouts: list[Rollout]) -> tuple[dict, float]:
    """Our update's normalized policy gradients (as the step applies them) and its units."""
    data, _ = module.rollout_batch(rollouts)
    output = module.update_loss(batch_rows(data, range(len(rollouts))))
    output.loss_sum.backward()
    grads = {name: param.grad / output.units for name, param in module.model.named_parameters()}
    module.zero_grad()
    return grads, float(output.units)


def hand_policy_gradient(module: PPOModule, rollouts: list[Rollout]) -> dict:
    """``-(A * logp).sum() / tokens`` from a plain full-logits forward, with the advantages of
    GAE at zero values and no KL, ``A_i = (gamma * lambda)^(n - 1 - i) * score``, whitened
    over every completion token of the batch."""
    advantages, logprobs = [], []
    for rollout in rollouts:
        ids = torch.tensor([rollout.token_ids])
        logits = module.model(input_ids=ids).logits[0, :-1]
        token_logprobs = logits.log_softmax(-1).gather(-1, ids[0, 1:, None]).squeeze(-1)
        completion = len(rollout.token_ids) - rollout.prompt_length
        logprobs.append(token_logprobs[rollout.prompt_length - 1:])
        advantages += [(GAMMA * LAMBDA) ** (completion - 1 - i) * rollout.reward
                       for i in range(completion)]
    advantages = torch.tensor(advantages)
    advantages = (advantages - advantages.mean()) / (advantages.var() + 1e-8).sqrt()
    loss = -(advantages * torch.cat(logprobs)).sum() / len(advantages)
    loss.backward()
    grads = {name: param.grad.clone() for name, param in module.model.named_parameters()}
    module.zero_grad()
    return grads


def assert_same_gradients(ours: dict, reference: dict) -> None:
    assert ours.keys() == reference.keys()
    for name, grad in ours.items():
        torch.testing.assert_close(grad, reference[name], rtol=1e-4, atol=1e-6, msg=name)


def plain_options(**extra) -> dict:
    """One epoch, no clip, no value loss, no KL: PPO reduces to the policy gradient."""
    return dict(rl_num_ppo_epochs=1, rl_clip_range=0.99, rl_value_loss_coef=0.0, rl_kl_coef=0.0,
                **extra)


def test_one_unclipped_epoch_is_a_plain_policy_gradient_step():
    module = make_module(**plain_options())
    rollouts = make_rollouts()
    ours, units = policy_gradients(module, rollouts)
    assert units == sum(completion for _, completion, _ in SHAPES)  # prompt targets excluded
    assert_same_gradients(ours, hand_policy_gradient(module, rollouts))
    assert module.value_function.score.weight.grad is None or not bool(
        module.value_function.score.weight.grad.any())


@REWARD_FUNCTIONS.register("test_ppo_reply_length")
def reply_length(reply: str, reference, **context) -> float:
    """Differs between the scripted replies, so their advantages differ."""
    return len(reply) / 10


class ScriptedEngine:
    """Answers prompt ``i`` of a call with ``2 * (i + 1)`` fixed tokens."""

    def sample(self, prompts, sampling):
        generator = torch.Generator().manual_seed(1)
        return [TokenCompletion(tokens=torch.randint(100, 4000, (2 * (i + 1),),
                                                     generator=generator).tolist(),
                                logprobs=[0.0] * 2 * (i + 1), stop_reason="length", text="")
                for i in range(len(prompts) * sampling.num_return_sequences)]


def test_one_step_through_the_trainer_is_a_plain_sgd_policy_gradient_step(tmp_path):
    lr = 0.1
    module = make_module(**plain_options(), rl_reward_fn="test_ppo_reply_length",
                         optimizer="torch.optim.SGD", learning_rate=lr, lr_scheduler="constant",
                         max_grad_norm=None)
    module.engine = ScriptedEngine()
    seen: list[list[Rollout]] = []
    rollout_batch = module.rollout_batch
    module.rollout_batch = lambda rollouts: seen.append(list(rollouts)) or rollout_batch(rollouts)
    start = copy.deepcopy(module)
    data = ChatDataModule("synthetic:arithmetic?n=3&seed=0", tokenizer="builtin:tiny",
                          chat_format="chatml", batch_size=3, seed=0)
    L.Trainer(accelerator="cpu", max_steps=1, logger=False, enable_progress_bar=False,
              enable_model_summary=False, enable_checkpointing=False, num_sanity_val_steps=0,
              default_root_dir=str(tmp_path)).fit(module, datamodule=data)
    assert len(seen) == 1 and len({r.reward for r in seen[0]}) == 3
    expected = hand_policy_gradient(start, seen[0])
    for name, param in module.model.named_parameters():
        delta = param.detach() - dict(start.model.named_parameters())[name].detach()
        torch.testing.assert_close(delta, -lr * expected[name], rtol=1e-3, atol=1e-7, msg=name)


def test_padding_and_failed_rollouts_carry_no_gradient():
    module = make_module(**plain_options())
    rollouts = make_rollouts()
    data, _ = module.rollout_batch(rollouts)
    scrambled = dict(data, input_ids=data["input_ids"].where(
        data["attention_mask"].bool(), torch.randint_like(data["input_ids"], 10, 4000)))
    every_row = range(len(rollouts))
    clean = module.update_loss(batch_rows(data, every_row))
    noisy = module.update_loss(batch_rows(scrambled, every_row))
    torch.testing.assert_close(noisy.loss_sum, clean.loss_sum)

    with_failed = make_rollouts(SHAPES + [(4, 5, 9.0)], failed=(3,))
    ours, units = policy_gradients(module, with_failed)
    assert units == sum(completion for _, completion, _ in SHAPES)
    assert_same_gradients(ours, hand_policy_gradient(module, rollouts))


def test_kl_to_an_identical_reference_is_zero():
    rollouts = make_rollouts()
    with_kl, stats = make_module(rl_kl_coef=0.5).rollout_batch(rollouts)
    without_kl, _ = make_module(rl_kl_coef=0.0).rollout_batch(rollouts)
    assert stats["kl"] == pytest.approx(0.0, abs=1e-6)
    torch.testing.assert_close(with_kl["returns"], without_kl["returns"])


def test_kl_to_a_different_reference_is_penalized():
    module = make_module(rl_kl_coef=0.5)
    with torch.no_grad():
        module.model.lm_head.weight.mul_(1.5)  # the policy has moved away from its start
    data, stats = module.rollout_batch(make_rollouts())
    without_kl, _ = make_module(rl_kl_coef=0.0).rollout_batch(make_rollouts())
    assert stats["kl"] != pytest.approx(0.0, abs=1e-3)
    assert not torch.allclose(data["returns"], without_kl["returns"])


def test_values_and_targets_line_up_with_the_sampled_tokens():
    module = make_module(value_model="separate")
    data, _ = module.rollout_batch(make_rollouts())
    mask = data["completion_mask"].bool()
    for name in ("old_logprobs", "old_values", "advantages", "returns"):
        assert not bool(data[name][~mask].any()), name
    assert bool(data["old_logprobs"][mask].lt(0).all())
    assert bool(data["old_values"][mask].ne(0).all())  # the critic's score head is random


def test_a_separate_critic_sends_no_value_gradient_into_the_policy():
    module = make_module(value_model="separate", **plain_options())
    rollouts = make_rollouts()
    policy_only, _ = policy_gradients(module, rollouts)
    module.hparams.rl_value_loss_coef = 1.0
    data, _ = module.rollout_batch(rollouts)
    output = module.update_loss(batch_rows(data, range(len(rollouts))))
    output.loss_sum.backward()
    critic_grads = [p.grad for p in module.value_function.parameters() if p.grad is not None]
    assert critic_grads and any(bool(g.any()) for g in critic_grads)
    assert_same_gradients({n: p.grad / output.units for n, p in module.model.named_parameters()},
                          policy_only)


def test_the_value_head_trains_but_stays_out_of_the_policy():
    module = make_module()
    names = [name for name, _ in module.trained_parameters()]
    assert "value_function.score.weight" in names
    assert "value_function.score.weight" in module.state_dict()
    assert not any("value" in name for name in module.model.state_dict())


def test_the_adaptive_kl_coefficient_survives_a_checkpoint():
    module = make_module(rl_target_kl=6.0)
    assert isinstance(module.kl_controller, AdaptiveKLController)
    module.kl_controller.update(12.0, 5000)
    checkpoint: dict = {}
    module.on_save_checkpoint(checkpoint)
    assert checkpoint[KL_COEF_KEY] == pytest.approx(0.1 * 1.1)
    resumed = make_module(rl_target_kl=6.0)
    resumed.on_load_checkpoint(checkpoint)
    assert resumed.kl_controller.value == pytest.approx(0.1 * 1.1)
