"""GRPO: G samples per prompt, rewards centred on their group, a clipped policy-gradient update.

Each training step takes a batch of problems from ``ChatDataModule`` (``RLEncoding``), makes one
environment group per problem (``rl_env_type``), samples G completions of every prompt through
the rollout engine (``rl.rollouts``: our completers, one batched call per chunk of prompts) and
scores them (``rl_reward_fn``). Advantages are the rewards centred on each group
(``losses.grpo.group_advantages``); groups whose G rewards are all equal teach nothing, so they
skip the forward pass (their tokens still count in the normalizer, as in TRL) and are counted.
The update is ``losses.grpo.grpo_loss`` with any TRL 1.16 loss type, through the shared step code
on Lightning manual optimization: one optimizer step per batch of problems per iteration
(``num_iterations`` > 1 reuses the rollouts with importance ratios against the sampling policy).

Rollouts, data and validation are ``objectives.rl.base.RLObjective``'s.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from autotrain_pl.losses.grpo import (
    check_grpo_settings,
    group_advantages,
    grpo_loss,
    zero_std_groups,
)
from autotrain_pl.objectives.rl.base import DEFAULT_MAX_NEW_TOKENS, RLObjective, check_count
from autotrain_pl.objectives.rl.packing import (
    continuation_tensors,
    continuation_width,
    pack_rollouts,
)
from autotrain_pl.rl.types import Rollout
from autotrain_pl.training import LossOutput


class GRPOModule(RLObjective):
    """Group relative policy optimization (see module docstring).

    Args:
        num_generations: G, samples per prompt (>= 2: advantages are relative to the group).
        loss_type: any TRL 1.16 ``GRPOTrainer`` loss type (``losses.grpo.GRPO_LOSS_TYPES``);
            ``dapo`` by default, as TRL.
        beta: weight of the KL to the reference (0: no reference loads, TRL's default).
        epsilon, epsilon_high: the clip range ``[1 - epsilon, 1 + epsilon_high]``
            (clip-higher when ``epsilon_high`` > ``epsilon``).
        importance_sampling_level: ``token`` or ``sequence`` (GSPO).
        scale_rewards: ``group`` (divide by the group's std), ``batch`` or ``none`` (Dr. GRPO).
        mask_truncated_completions: completions cut at ``max_new_tokens`` carry no gradient.
        num_iterations: updates per batch of rollouts (TRL's mu).
        max_new_tokens: longest completion per turn (TRL's ``max_completion_length``).
        **kwargs: the rollout options of ``RLObjective`` (sampling,
            ``rl_*``, ``ref_model``) and the shared options of ``ObjectiveModule``.
    """

    def __init__(
        self,
        *args: Any,
        num_generations: int = 8,
        loss_type: str = "dapo",
        beta: float = 0.0,
        epsilon: float = 0.2,
        epsilon_high: float | None = None,
        importance_sampling_level: str = "token",
        scale_rewards: str = "group",
        mask_truncated_completions: bool = False,
        num_iterations: int = 1,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        **kwargs: Any,
    ) -> None:
        check_count("num_generations", num_generations, 2,
                    ": GRPO's advantages are relative to the group of samples of a prompt; use 8")
        check_count("num_iterations", num_iterations)
        check_grpo_settings(loss_type=loss_type, epsilon_low=epsilon, epsilon_high=epsilon_high,
                            importance_sampling_level=importance_sampling_level, beta=beta,
                            max_completion_length=max_new_tokens, scale_rewards=scale_rewards)
        self.samples_per_problem = num_generations
        # An explicit parameter, not kwargs.get(): jsonargparse would leave a key read from
        # **kwargs out of LightningCLI's resolved config, and so out of the hparams.
        super().__init__(*args, use_reference=beta > 0, max_new_tokens=max_new_tokens, **kwargs)

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor:
        hp = self.hparams
        start = time.perf_counter()
        rollouts = self.rollouts(batch["problems"], hp.num_generations)
        rollout_s = time.perf_counter() - start
        rewards = torch.tensor([r.reward for r in rollouts], dtype=torch.float32)
        failed = torch.tensor([r.failed for r in rollouts])
        advantages = group_advantages(rewards, hp.num_generations, hp.scale_rewards)
        advantages = advantages.masked_fill(failed, 0.0)
        start = time.perf_counter()
        mask, behaviour = continuation_tensors(rollouts, continuation_width(rollouts))
        mask = self._trained_mask(rollouts, mask, failed)
        old_logprobs = None
        if hp.num_iterations > 1:  # the sampling policy's, before the first update changes it
            with torch.no_grad():
                old_logprobs = self._logprobs(self.model, rollouts, mask).detach()
        ref_logprobs = (self._reference_logprobs(rollouts, mask) if self.reference is not None
                        else None)  # once per batch of rollouts, not per iteration
        loss = None
        for _ in range(hp.num_iterations):
            self.step_controller.start_window()
            for rows in self.mini_batches(len(rollouts)):
                output = self._update_loss(rollouts, rows, advantages, mask, behaviour,
                                           old_logprobs, ref_logprobs)
                self.backward_micro_batch(output)
                loss = output.loss_sum.detach()
            self.finish_optimizer_step()
        skipped = float(zero_std_groups(rewards, hp.num_generations).sum())
        self.log_rollouts(rollouts, rewards, failed, rollout_s, time.perf_counter() - start,
                          hp.num_iterations, skipped_groups=skipped)
        return loss

    def _trained_mask(self, rollouts: Sequence[Rollout], mask: Tensor, failed: Tensor
                      ) -> Tensor:
        """The loss mask: the policy's own tokens, less failed (and, if asked, truncated)
        samples."""
        keep = ~failed
        if self.hparams.mask_truncated_completions:
            keep &= ~torch.tensor([r.truncated for r in rollouts])
        return mask * keep[:, None]

    def _logprobs(self, model, rollouts: Sequence[Rollout], like: Tensor) -> Tensor:
        """``[N, W]`` log-probabilities of the rollouts' own tokens under ``model``, the G
        samples of a prompt packed into one row (``objectives.rl.packing``)."""
        packed = pack_rollouts(rollouts, self.pad_token_id, self.device)
        flat, _ = self.forward_logprobs(model, packed.inputs, temperature=self.hparams.temperature,
                                        selection=packed.selection)
        return packed.dense(flat, like.to(self.device))

    @torch.no_grad()
    def _reference_logprobs(self, rollouts: Sequence[Rollout], like: Tensor) -> Tensor:
        packed = pack_rollouts(rollouts, self.pad_token_id, self.device)
        flat, _ = self.reference.trained_logprobs(packed.inputs, self.device,
                                                  self.hparams.temperature,
                                                  selection=packed.selection)
        return packed.dense(flat, like.to(self.device))

    def _update_loss(self, rollouts: Sequence[Rollout], rows: list[int], advantages: Tensor,
                     mask: Tensor, behaviour: Tensor, old_logprobs: Tensor | None,
                     ref_logprobs: Tensor | None) -> LossOutput:
        """The loss of some rollouts: the forward runs only where a gradient can come from."""
        hp = self.hparams
        index = torch.tensor(rows)
        mask, logprobs = mask[index].to(self.device), behaviour[index].to(self.device)
        needs_forward = (advantages[index] != 0) | torch.tensor(hp.beta > 0)
        live = needs_forward.nonzero().squeeze(1)
        if live.numel():  # behaviour log-probs stay as constants where no gradient can come
            current = self._logprobs(self.model, [rollouts[rows[i]] for i in live.tolist()],
                                     logprobs[live.to(self.device)])
            logprobs = logprobs.index_put((live.to(self.device),), current)
        loss_sum, units, metrics = grpo_loss(
            logprobs, None if old_logprobs is None else old_logprobs[index.to(self.device)],
            advantages[index].to(self.device), mask, loss_type=hp.loss_type,
            epsilon_low=hp.epsilon, epsilon_high=hp.epsilon_high,
            importance_sampling_level=hp.importance_sampling_level, beta=hp.beta,
            ref_logprobs=None if ref_logprobs is None else ref_logprobs[index.to(self.device)],
            max_completion_length=hp.max_new_tokens)
        sums = {name: value * units for name, value in metrics.items()}
        tokens = sum(len(rollouts[i].token_ids) for i in rows)
        return LossOutput.from_sum(loss_sum, units, sums, tokens)
