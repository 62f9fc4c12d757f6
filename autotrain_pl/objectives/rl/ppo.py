"""RLHF-style PPO: a value function, a KL-penalized per-token reward, GAE, several clipped epochs.

Each training step takes a batch of problems from ``ChatDataModule`` (``RLEncoding``), samples
``samples_per_prompt`` completions of each through the rollout engine (``rl.rollouts``) and
scores them (``rl_reward_fn``). Then, with the policy as it was before the update (no grad):

1. old log-probs and values at every sampled token, from one forward per mini-batch (the shared
   value head reads the policy's own hidden states; a separate critic runs its own forward);
2. per-token rewards: ``-kl_coef * KL`` to the reference at every sampled token and the score at
   the last one (``losses.ppo.kl_penalized_rewards``; no reference loads when ``rl_kl_coef`` is 0);
3. advantages and returns by GAE over the sampled tokens, advantages whitened over the batch.

The update makes ``rl_num_ppo_epochs`` passes over shuffled mini-batches of
``rl_mini_batch_size`` rollouts; each mini-batch is one optimizer step through the shared step
code (``losses.ppo.ppo_loss``: clipped surrogate + ``rl_value_loss_coef`` x clipped value loss -
``entropy_coef`` x entropy, normalized by the mini-batch's sampled tokens). An adaptive KL
controller (``rl_target_kl``) then moves the coefficient, which checkpoints carry.

Logged per batch of rollouts: ``log_rollouts``' reward mean/std, completion length and rollout /
update samples per second; the KL to the reference (per-sequence sum), the KL coefficient and the
value function's explained variance at sampling time; and the means over the batch's optimizer
steps of the loss, ``policy_loss``, ``value_loss``, ``entropy``, ``clip_fraction``, ``approx_kl``,
``value_clip_fraction`` and the gradient norm.

Lightning counts optimizer steps: ``trainer.max_steps`` is optimizer steps, so a batch of
rollouts takes ``rl_num_ppo_epochs`` x mini-batches of them, and the lr schedule spans them too.
The export is the policy alone, a plain Hugging Face directory like every objective's; the value
function lives in the Lightning checkpoint (``objectives.rl.values``).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from statistics import fmean
from typing import Any

import torch
from torch import Tensor

from autotrain_pl.errors import AutotrainError
from autotrain_pl.losses import entropy_from_logits, selective_log_softmax
from autotrain_pl.losses.ppo import (
    build_kl_controller,
    check_ppo_settings,
    explained_variance,
    gae,
    kl_penalized_rewards,
    per_token_kl,
    ppo_loss,
    whiten,
)
from autotrain_pl.objectives.rl.base import RLObjective, batch_rows, check_count
from autotrain_pl.objectives.rl.values import SeparateCritic, build_value_model, check_value_model
from autotrain_pl.rl.types import Rollout
from autotrain_pl.training import (
    LossOutput,
    StepOutcome,
    TokenSelection,
    forward_trained_logits,
    forward_trained_states,
)

#: Where checkpoints keep the KL coefficient (it moves under ``rl_target_kl``).
KL_COEF_KEY = "ppo_kl_coef"


class PPOModule(RLObjective):
    """Proximal policy optimization with a value function (see module docstring).

    Args:
        samples_per_prompt: completions sampled per problem (1, as RLHF-PPO; more gives more
            rollouts per prompt, each with its own value baseline).
        value_model: ``shared`` (a scalar head on the policy's last hidden state, trained with
            it) or ``separate`` (a critic of its own: ``load_model(ref, head="reward")``).
        value_model_path: the separate critic's starting point (default: the policy's; a trained
            reward model also works).
        rl_gamma: discount of GAE (0.99).
        rl_gae_lambda: lambda of GAE (0.95).
        rl_kl_coef: weight of the per-token KL to the reference in the reward (0: no reference
            loads).
        rl_target_kl: per-sequence KL (nats) the adaptive controller steers towards; None keeps
            ``rl_kl_coef`` fixed.
        rl_kl_horizon: samples over which the adaptive controller moves (Ziegler et al.: 10000).
        rl_kl_estimator: ``k1`` (``logp - ref_logp``, TRL's) or ``k3``.
        rl_clip_range: the policy ratio's clip range (0.2).
        rl_clip_range_value: the value's clip range around its sampling-time value, in reward
            units (0.2; None: no clip).
        rl_value_loss_coef: weight of the value loss (1.0).
        entropy_coef: weight of the entropy bonus (0.0; the entropy is logged either way).
        rl_num_ppo_epochs: passes over each batch of rollouts (4).
        **kwargs: the rollout options of ``RLObjective`` (``max_new_tokens``, sampling, ``rl_*``
            with ``rl_mini_batch_size`` = rollouts per optimizer step, ``ref_model``) and the
            shared options of ``ObjectiveModule``.
    """

    def __init__(
        self,
        *args: Any,
        samples_per_prompt: int = 1,
        value_model: str = "shared",
        value_model_path: str | None = None,
        rl_gamma: float = 0.99,
        rl_gae_lambda: float = 0.95,
        rl_kl_coef: float = 0.1,
        rl_target_kl: float | None = None,
        rl_kl_horizon: float = 10000.0,
        rl_kl_estimator: str = "k1",
        rl_clip_range: float = 0.2,
        rl_clip_range_value: float | None = 0.2,
        rl_value_loss_coef: float = 1.0,
        entropy_coef: float = 0.0,
        rl_num_ppo_epochs: int = 4,
        **kwargs: Any,
    ) -> None:
        check_count("samples_per_prompt", samples_per_prompt)
        check_count("rl_num_ppo_epochs", rl_num_ppo_epochs)
        check_ppo_settings(gamma=rl_gamma, lam=rl_gae_lambda, clip_range=rl_clip_range,
                           clip_range_value=rl_clip_range_value,
                           value_loss_coef=rl_value_loss_coef, kl_coef=rl_kl_coef,
                           target_kl=rl_target_kl, kl_horizon=rl_kl_horizon,
                           kl_estimator=rl_kl_estimator)
        check_value_model(value_model, value_model_path)
        if isinstance(entropy_coef, bool) or not 0 <= entropy_coef < float("inf"):
            raise AutotrainError(f"model.entropy_coef={entropy_coef!r} must be >= 0 (0: no "
                                 "entropy bonus; 0.01 is common)")
        self.samples_per_problem = samples_per_prompt
        super().__init__(*args, use_reference=rl_kl_coef > 0, **kwargs)
        hp = self.hparams
        self.kl_controller = build_kl_controller(rl_kl_coef, rl_target_kl, rl_kl_horizon)
        self._updates: list[tuple[StepOutcome, float]] = []
        self.value_function = build_value_model(value_model, self.model,
                                             ref=value_model_path or hp.model_name_or_path,
                                             options=hp)

    # -- what is trained and for how long -------------------------------------------------------
    def trained_parameters(self) -> Iterator[tuple[str, torch.nn.Parameter]]:
        """The policy's parameters and the value function's."""
        return itertools.chain(super().trained_parameters(),
                               self.value_function.named_parameters(prefix="value_function"))

    def updates_per_batch(self) -> int:
        """Optimizer steps per batch of rollouts: epochs x mini-batches."""
        hp = self.hparams
        prompts = getattr(self.trainer.datamodule, "batch_size", None) or 1
        rollouts = prompts * self.samples_per_problem
        return hp.rl_num_ppo_epochs * math.ceil(rollouts / (hp.rl_mini_batch_size or rollouts))

    def scheduled_optimizer_steps(self) -> int:
        """Lightning's estimate counts training batches unless ``max_steps`` (optimizer steps)
        bounds it; each batch of rollouts takes ``updates_per_batch`` steps."""
        steps = super().scheduled_optimizer_steps() * self.updates_per_batch()
        max_steps = self.trainer.max_steps
        return min(steps, max_steps) if max_steps != -1 else steps

    def attach_tokenizer(self, tokenizer, renderer=None) -> None:
        """As the base; a separate critic's embeddings grow with the policy's."""
        super().attach_tokenizer(tokenizer, renderer)
        if isinstance(self.value_function, SeparateCritic):
            self.value_function.attach_tokenizer(tokenizer)

    # -- training -------------------------------------------------------------------------------
    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor:
        hp = self.hparams
        start = time.perf_counter()
        rollouts = self.rollouts(batch["problems"], self.samples_per_problem)
        rollout_s = time.perf_counter() - start
        start = time.perf_counter()
        data, stats = self.rollout_batch(rollouts)
        loss = None
        for _ in range(hp.rl_num_ppo_epochs):
            for rows in self.shuffled_mini_batches(len(rollouts)):
                self.step_controller.start_window()
                output = self.update_loss(batch_rows(data, rows))
                self.backward_micro_batch(output)
                self.finish_optimizer_step()
                loss = output.loss_sum.detach()
        update_s = time.perf_counter() - start
        if self.reference is not None:
            self.update_kl_coef(stats["kl"], len(rollouts))
        rewards = torch.tensor([r.reward for r in rollouts], dtype=torch.float32)
        failed = torch.tensor([r.failed for r in rollouts])
        self.log_rollouts(rollouts, rewards, failed, rollout_s, update_s,
                          hp.rl_num_ppo_epochs, **stats)
        self.log_updates()
        return loss

    def shuffled_mini_batches(self, count: int) -> list[list[int]]:
        """``mini_batches`` over a fresh random order of the rollouts (one per epoch)."""
        order = torch.randperm(count).tolist()
        return [[order[i] for i in rows] for rows in self.mini_batches(count)]

    @torch.no_grad()
    def rollout_batch(self, rollouts: Sequence[Rollout]) -> tuple[dict[str, Tensor], dict]:
        """The rollouts' token batch with what every epoch reads, and the batch's statistics.

        Adds per-target ``[B, L - 1]`` tensors to ``token_batch``: ``old_logprobs`` and
        ``old_values`` (the policy and value function before the update), ``advantages``
        (whitened over the batch) and ``returns``. Failed rollouts get no loss weight.
        """
        hp = self.hparams
        batch = self.token_batch(rollouts)
        live = torch.tensor([not r.failed for r in rollouts], device=self.device)
        batch["loss_weights"] = batch["loss_weights"] * live[:, None]
        batch["completion_mask"] = mask = batch["loss_weights"][:, 1:]
        old_logprobs, old_values = self.old_outputs(batch)
        ref_logprobs = (self.reference_logprobs(batch) if self.reference is not None
                        else old_logprobs)
        scores = torch.tensor([0.0 if r.failed else r.reward for r in rollouts],
                              device=self.device)
        rewards = kl_penalized_rewards(scores, old_logprobs, ref_logprobs, mask,
                                       self.kl_controller.value, kl_estimator=hp.rl_kl_estimator)
        advantages, returns = gae(rewards, old_values, mask, gamma=hp.rl_gamma,
                                  lam=hp.rl_gae_lambda)
        batch.update(old_logprobs=old_logprobs, old_values=old_values,
                     advantages=whiten(advantages, mask), returns=returns)
        stats = {"kl_coef": self.kl_controller.value,
                 "explained_variance": float(explained_variance(old_values, returns, mask))}
        if self.reference is not None:
            kl = (per_token_kl(old_logprobs, ref_logprobs, hp.rl_kl_estimator) * mask).sum(-1)
            stats["kl"] = float(kl[live].mean()) if bool(live.any()) else 0.0
        return batch, stats

    def old_outputs(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        """``[B, L - 1]`` log-probs and values before the update, one mini-batch at a time."""
        mask = batch["completion_mask"]
        logprobs, values = torch.zeros_like(mask), torch.zeros_like(mask)
        for rows in self.mini_batches(mask.shape[0]):
            part = batch_rows(batch, rows)
            if not bool(part["loss_weights"].any()):
                continue
            part_logprobs, part_values, _, selection = self.policy_forward(part)
            at = (torch.as_tensor(rows, device=mask.device)[selection.rows], selection.positions)
            logprobs[at], values[at] = part_logprobs.float(), part_values
        return logprobs, values

    def policy_forward(self, batch: Mapping[str, Tensor], entropy: bool = False
                       ) -> tuple[Tensor, Tensor, Tensor | None, TokenSelection]:
        """Log-probs, values and (with ``entropy``) entropies ``[N]`` at the sampled tokens.

        The entropy carries a gradient only when ``entropy_coef`` > 0.
        """
        hp = self.hparams
        if self.value_function.reads_policy_states:
            logits, states, selection = forward_trained_states(self.model, batch)
        else:
            (logits, selection), states = forward_trained_logits(self.model, batch), None
        if hp.temperature != 1.0:
            logits = logits / hp.temperature
        logprobs = selective_log_softmax(logits, selection.labels)
        values = self.value_function(batch, selection, states)
        entropies = None
        if entropy:
            with torch.set_grad_enabled(torch.is_grad_enabled() and hp.entropy_coef > 0):
                entropies = entropy_from_logits(logits)
        return logprobs, values, entropies, selection

    def update_loss(self, batch: Mapping[str, Tensor]) -> LossOutput:
        """One mini-batch's PPO loss, summed over its sampled tokens."""
        hp = self.hparams
        tokens = int(batch["attention_mask"].sum())
        if not bool(batch["loss_weights"].any()):
            zero = batch["old_values"].new_zeros(())
            return LossOutput.from_sum(zero, 0.0, dict.fromkeys(_METRICS, zero), tokens)
        with self.training_forward():
            logprobs, values, entropies, selection = self.policy_forward(batch, entropy=True)
        at = (selection.rows, selection.positions)
        loss_sum, metrics = ppo_loss(
            logprobs, batch["old_logprobs"][at], batch["advantages"][at], values,
            batch["old_values"][at], batch["returns"][at], selection.weights,
            clip_range=hp.rl_clip_range, clip_range_value=hp.rl_clip_range_value,
            value_loss_coef=hp.rl_value_loss_coef, entropy=entropies,
            entropy_coef=hp.entropy_coef, normalizer=1)
        units = selection.weights.sum()
        sums = {name: value if name in _SUMMED else value * units
                for name, value in metrics.items()}
        return LossOutput.from_sum(loss_sum, units, sums, tokens)

    # -- logging --------------------------------------------------------------------------------
    def log_step(self, outcome: StepOutcome, lr: float) -> None:
        """Gather the optimizer steps of a batch of rollouts; ``log_updates`` logs them."""
        self._updates.append((outcome, lr))

    def log_updates(self) -> None:
        """Log the means over the batch's optimizer steps (all epochs and mini-batches, as TRL's
        PPO statistics), once: the last step alone would hide what the epochs did."""
        outcomes = [outcome for outcome, _ in self._updates]
        counted = [o for o in outcomes if o.units > 0] or outcomes
        merged = StepOutcome(
            loss=fmean(o.loss for o in counted), units=sum(o.units for o in outcomes),
            grad_norm=fmean(o.grad_norm for o in counted),
            skipped=any(o.skipped for o in outcomes),
            micro_batches=sum(o.micro_batches for o in outcomes),
            metrics={name: fmean(o.metrics[name] for o in counted) for name in counted[0].metrics},
            tokens_per_s=fmean(o.tokens_per_s for o in outcomes),
            skipped_steps=outcomes[-1].skipped_steps)
        super().log_step(merged, self._updates[-1][1])
        self._updates.clear()

    # -- the KL coefficient -----------------------------------------------------------------------
    def update_kl_coef(self, kl: float, rollouts: int) -> None:
        """Feed the controller this batch's per-sequence KL, averaged over ranks, and the
        number of sequences over all ranks (``losses.ppo.AdaptiveKLController``)."""
        trainer = self.trainer
        mean_kl = trainer.strategy.reduce(torch.tensor(kl, device=self.device), reduce_op="mean")
        self.kl_controller.update(float(mean_kl), rollouts * trainer.world_size)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[KL_COEF_KEY] = self.kl_controller.value

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if KL_COEF_KEY in checkpoint:
            self.kl_controller.value = float(checkpoint[KL_COEF_KEY])


#: ``ppo_loss``'s metrics: those reduced like the loss are sums; the rest are per-token means.
_SUMMED = ("policy_loss", "value_loss", "entropy")
_METRICS = (*_SUMMED, "clip_fraction", "approx_kl", "value_clip_fraction")
