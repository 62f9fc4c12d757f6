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

Training reads the sampled token ids and their mask directly; generated text is never
re-tokenized. Validation samples greedily and logs the mean reward; ``val/loss`` is the negative
mean reward, so "minimize val/loss" means "maximize reward" for checkpoints and sweeps.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from autotrain_pl.errors import AutotrainError
from autotrain_pl.generation import SamplingConfig
from autotrain_pl.losses.grpo import (
    check_grpo_settings,
    group_advantages,
    grpo_loss,
    zero_std_groups,
)
from autotrain_pl.objectives.base import ObjectiveModule
from autotrain_pl.objectives.rl.data import RLEncoding
from autotrain_pl.rl.envs import ENVIRONMENTS
from autotrain_pl.rl.rewards import CombinedReward
from autotrain_pl.rl.rollouts import CompleterEngine, RolloutEngine, collect_rollouts
from autotrain_pl.rl.types import Rollout
from autotrain_pl.training import FrozenModel, LossOutput
from autotrain_pl.training.tokens import forward_logprobs


class GRPOModule(ObjectiveModule):
    """Group relative policy optimization (see module docstring).

    Args:
        num_generations: G, samples per prompt (>= 2: advantages are relative to the group).
        max_new_tokens: longest completion (TRL's ``max_completion_length``).
        temperature, top_p, top_k: sampling of the rollouts (training log-probabilities use the
            same temperature, as TRL).
        loss_type: any TRL 1.16 ``GRPOTrainer`` loss type (``losses.grpo.GRPO_LOSS_TYPES``);
            ``dapo`` by default, as TRL.
        beta: weight of the KL to the reference (0: no reference loads, TRL's default).
        epsilon, epsilon_high: the clip range ``[1 - epsilon, 1 + epsilon_high]``
            (clip-higher when ``epsilon_high`` > ``epsilon``).
        importance_sampling_level: ``token`` or ``sequence`` (GSPO).
        scale_rewards: ``group`` (divide by the group's std), ``batch`` or ``none`` (Dr. GRPO).
        mask_truncated_completions: completions cut at ``max_new_tokens`` carry no gradient.
        num_iterations: updates per batch of rollouts (TRL's mu).
        rl_env_type: the environment (``arithmetic``, ``qa``) or an import path to a builder.
        rl_reward_fn: reward name, list, ``{name: weight}`` mapping or import path.
        rl_chunk_size: prompts per ``generate`` call.
        rl_mini_batch_size: completions per forward/backward in the update (None: all).
        rl_optimize_device_cache: free cached accelerator memory between rollout and update.
        ref_model: the reference when ``beta`` > 0 (default: the starting policy; with LoRA the
            adapter switched off).
        **kwargs: the shared options of ``ObjectiveModule`` (model, LoRA, optimizer, ...).
    """

    def __init__(
        self,
        *args: Any,
        num_generations: int = 8,
        max_new_tokens: int = 64,
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int | None = None,
        loss_type: str = "dapo",
        beta: float = 0.0,
        epsilon: float = 0.2,
        epsilon_high: float | None = None,
        importance_sampling_level: str = "token",
        scale_rewards: str = "group",
        mask_truncated_completions: bool = False,
        num_iterations: int = 1,
        rl_env_type: str = "arithmetic",
        rl_reward_fn: str | list[str] | dict[str, float] = "correctness",
        rl_chunk_size: int = 8,
        rl_mini_batch_size: int | None = None,
        rl_optimize_device_cache: bool = False,
        ref_model: str | None = None,
        **kwargs: Any,
    ) -> None:
        _check_options(num_generations=num_generations, max_new_tokens=max_new_tokens,
                       temperature=temperature, num_iterations=num_iterations,
                       rl_chunk_size=rl_chunk_size, rl_mini_batch_size=rl_mini_batch_size)
        check_grpo_settings(loss_type=loss_type, epsilon_low=epsilon, epsilon_high=epsilon_high,
                            importance_sampling_level=importance_sampling_level, beta=beta,
                            max_completion_length=max_new_tokens, scale_rewards=scale_rewards)
        self.make_group = ENVIRONMENTS.get(rl_env_type)
        self.reward = CombinedReward(rl_reward_fn)
        super().__init__(*args, **kwargs)
        self.automatic_optimization = False
        self.encoding = RLEncoding()
        self.reference: FrozenModel | None = None
        if beta > 0:
            hp = self.hparams
            self.reference = (FrozenModel.adapter_disabled(self.model, hp.model_name_or_path)
                              if ref_model is None and hasattr(self.model, "disable_adapter")
                              else FrozenModel.copy(ref_model or hp.model_name_or_path,
                                                    dtype=hp.dtype,
                                                    trust_remote_code=hp.trust_remote_code))
        self._engine: RolloutEngine | None = None

    # -- data and rollouts ----------------------------------------------------------------------
    def example_encoding(self) -> RLEncoding:
        """Problems as prompts with references (``data.EncodingProvider``)."""
        return self.encoding

    @property
    def engine(self) -> RolloutEngine:
        """The rollout engine (``CompleterEngine`` on the policy); assign another to plug in a
        faster one."""
        if self._engine is None:
            hp = self.hparams
            self._engine = CompleterEngine(self.model, self.tokenizer, self.renderer,
                                           chunk_size=hp.rl_chunk_size,
                                           release_cache=hp.rl_optimize_device_cache)
        return self._engine

    @engine.setter
    def engine(self, engine: RolloutEngine) -> None:
        self._engine = engine

    def sampling(self, greedy: bool = False) -> SamplingConfig:
        hp = self.hparams
        if greedy:
            return SamplingConfig(max_new_tokens=hp.max_new_tokens, temperature=0.0)
        return SamplingConfig(max_new_tokens=hp.max_new_tokens, temperature=hp.temperature,
                              top_p=hp.top_p, top_k=hp.top_k)

    def rollouts(self, problems: Sequence[Mapping[str, Any]], group_size: int,
                 greedy: bool = False) -> list[Rollout]:
        """Sample and score ``group_size`` episodes per problem."""
        builders = [self.make_group(dict(p), self.reward, max_new_tokens=self.hparams.max_new_tokens)
                    for p in problems]
        return collect_rollouts(builders, self.engine, self.renderer, group_size,
                                self.sampling(greedy))

    def setup(self, stage: str) -> None:
        super().setup(stage)
        datamodule = self.trainer.datamodule
        size, batch = self.hparams.rl_mini_batch_size, getattr(datamodule, "batch_size", None)
        if stage == "fit" and size and batch and size > batch * self.hparams.num_generations:
            raise AutotrainError(
                f"model.rl_mini_batch_size={size} is larger than the rollout batch "
                f"({batch} prompts x {self.hparams.num_generations} generations = "
                f"{batch * self.hparams.num_generations}); lower it or raise data.batch_size"
            )

    # -- training -------------------------------------------------------------------------------
    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor:
        hp = self.hparams
        start = time.perf_counter()
        rollouts = self.rollouts(batch["problems"], hp.num_generations)
        rollout_s = time.perf_counter() - start
        rewards = torch.tensor([r.reward for r in rollouts], dtype=torch.float32)
        failed = torch.tensor([r.failed for r in rollouts])
        advantages = group_advantages(rewards, hp.num_generations, hp.scale_rewards)
        equal_groups = zero_std_groups(rewards, hp.num_generations)
        advantages = advantages.masked_fill(failed, 0.0)
        start = time.perf_counter()
        old_logprobs = self._old_logprobs(rollouts, advantages) if hp.num_iterations > 1 else None
        loss = None
        for _ in range(hp.num_iterations):
            self.step_controller.start_window()
            for rows in self._mini_batches(len(rollouts)):
                output = self._update_loss(rollouts, rows, advantages, failed, old_logprobs)
                if output.loss_sum.requires_grad:
                    self.backward_micro_batch(output)
                else:  # only equal-reward groups: no gradient, but their tokens still count
                    self.step_controller.accumulate(output)
                loss = output.loss_sum.detach()
            self.finish_optimizer_step()
        update_s = time.perf_counter() - start
        self._log_rollouts(rollouts, rewards, failed, equal_groups, rollout_s, update_s)
        return loss

    def _mini_batches(self, count: int) -> list[list[int]]:
        size = self.hparams.rl_mini_batch_size or count
        return [list(range(start, min(start + size, count))) for start in range(0, count, size)]

    def _update_loss(self, rollouts: Sequence[Rollout], rows: list[int], advantages: Tensor,
                     failed: Tensor, old_logprobs: Tensor | None) -> LossOutput:
        """The loss of some rollouts: the forward runs only where a gradient can come from."""
        hp = self.hparams
        batch = self._token_batch([rollouts[i] for i in rows])
        mask = batch["completion_mask"]
        if hp.mask_truncated_completions:
            truncated = torch.tensor([rollouts[i].truncated for i in rows], device=self.device)
            mask = mask * ~truncated[:, None]
        mask = mask * ~failed[rows].to(self.device)[:, None]
        needs_forward = (advantages[rows] != 0) | torch.tensor(hp.beta > 0)
        logprobs = batch["behaviour_logprobs"].clone()  # constants where no gradient can come
        if bool(needs_forward.any()):
            live = self._policy_logprobs(batch, needs_forward.to(self.device))
            logprobs = torch.where(needs_forward.to(self.device)[:, None], live, logprobs)
        ref_logprobs = self._reference_logprobs(batch) if self.reference is not None else None
        loss_sum, units, metrics = grpo_loss(
            logprobs, None if old_logprobs is None else old_logprobs[rows].to(self.device),
            advantages[rows].to(self.device), mask, loss_type=hp.loss_type,
            epsilon_low=hp.epsilon, epsilon_high=hp.epsilon_high,
            importance_sampling_level=hp.importance_sampling_level, beta=hp.beta,
            ref_logprobs=ref_logprobs, max_completion_length=hp.max_new_tokens)
        sums = {name: value * units for name, value in metrics.items()}
        return LossOutput.from_sum(loss_sum, units, sums, int(batch["attention_mask"].sum()))

    def _token_batch(self, rollouts: Sequence[Rollout]) -> dict[str, Tensor]:
        """Right-padded ids, and per-target tensors ``[B, L - 1]`` (target ``t + 1`` at
        ``t``): the completion mask and the behaviour log-probabilities."""
        length = max(len(r.token_ids) for r in rollouts)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        ids = torch.full((len(rollouts), length), pad, dtype=torch.long)
        attention = torch.zeros((len(rollouts), length), dtype=torch.long)
        mask = torch.zeros((len(rollouts), length), dtype=torch.float32)
        behaviour = torch.zeros((len(rollouts), length), dtype=torch.float32)
        for row, rollout in enumerate(rollouts):
            n = len(rollout.token_ids)
            ids[row, :n] = torch.tensor(rollout.token_ids)
            attention[row, :n] = 1
            mask[row, :n] = torch.tensor(rollout.mask, dtype=torch.float32)
            behaviour[row, :n] = torch.tensor(rollout.logprobs, dtype=torch.float32)
        batch = {"input_ids": ids, "attention_mask": attention, "loss_weights": mask,
                 "completion_mask": mask[:, 1:], "behaviour_logprobs": behaviour[:, 1:]}
        return {k: v.to(self.device) for k, v in batch.items()}

    def _dense(self, flat: Tensor, selection, like: Tensor) -> Tensor:
        dense = torch.zeros_like(like, dtype=flat.dtype)
        return dense.index_put((selection.rows, selection.positions), flat)

    def _policy_logprobs(self, batch: Mapping[str, Tensor], rows: Tensor) -> Tensor:
        """``[B, L - 1]`` log-probabilities under the policy, computed for ``rows`` only."""
        weights = batch["loss_weights"] * rows[:, None]
        flat, selection = forward_logprobs(self.model, dict(batch, loss_weights=weights),
                                           self.hparams.temperature)
        return self._dense(flat, selection, batch["completion_mask"])

    @torch.no_grad()
    def _reference_logprobs(self, batch: Mapping[str, Tensor]) -> Tensor:
        keys = {k: batch[k] for k in ("input_ids", "attention_mask", "loss_weights")}
        flat, selection = self.reference.trained_logprobs(keys, self.device,
                                                          self.hparams.temperature)
        return self._dense(flat, selection, batch["completion_mask"])

    @torch.no_grad()
    def _old_logprobs(self, rollouts: Sequence[Rollout], advantages: Tensor) -> Tensor:
        """The sampling policy's log-probabilities, before the first of several updates."""
        batch = self._token_batch(rollouts)
        everything = torch.ones(len(rollouts), dtype=torch.bool, device=self.device)
        return self._policy_logprobs(batch, everything).cpu()

    def _log_rollouts(self, rollouts: Sequence[Rollout], rewards: Tensor, failed: Tensor,
                      equal_groups: Tensor, rollout_s: float, update_s: float) -> None:
        ok = rewards[~failed]
        values = {
            "reward": float(ok.mean()) if ok.numel() else 0.0,
            "reward_std": float(ok.std()) if ok.numel() > 1 else 0.0,
            "completion_length": sum(r.completion_length for r in rollouts) / len(rollouts),
            "truncated": sum(r.truncated for r in rollouts) / len(rollouts),
            "failed_samples": float(failed.sum()),
            "skipped_groups": float(equal_groups.sum()),
            "rollout_samples_per_s": len(rollouts) / max(rollout_s, 1e-9),
            "update_samples_per_s": len(rollouts) * self.hparams.num_iterations
            / max(update_s, 1e-9),
        }
        for name, value in values.items():
            self.log(f"train/{name}", value, prog_bar=name == "reward", on_step=True,
                     batch_size=1)

    # -- evaluation -----------------------------------------------------------------------------
    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor:
        rollouts = self.rollouts(batch["problems"], 1, greedy=True)
        rewards = torch.tensor([0.0 if r.failed else r.reward for r in rollouts], device=self.device)
        output = LossOutput.from_sum(-rewards.sum(), len(rollouts),
                                     {"reward": rewards.sum()}, 0)
        self._eval_means.update(output)
        return output.loss_sum

    def on_fit_end(self) -> None:
        if self.reference is not None:
            self.reference.release()
        super().on_fit_end()


def _check_options(*, num_generations: int, max_new_tokens: int, temperature: float,
                   num_iterations: int, rl_chunk_size: int, rl_mini_batch_size: int | None
                   ) -> None:
    if isinstance(num_generations, bool) or num_generations < 2:
        raise AutotrainError(f"model.num_generations={num_generations!r}: GRPO needs G >= 2 "
                             "samples per prompt (advantages are relative to the group); use 8")
    for name, value in (("max_new_tokens", max_new_tokens), ("num_iterations", num_iterations),
                        ("rl_chunk_size", rl_chunk_size)):
        if isinstance(value, bool) or value < 1:
            raise AutotrainError(f"model.{name}={value!r} must be >= 1")
    if rl_mini_batch_size is not None and (isinstance(rl_mini_batch_size, bool)
                                           or rl_mini_batch_size < 1):
        raise AutotrainError(f"model.rl_mini_batch_size={rl_mini_batch_size!r} must be >= 1 "
                             "or null (the whole rollout batch)")
    if not temperature > 0:
        raise AutotrainError(f"model.temperature={temperature!r} must be > 0: GRPO samples its "
                             "rollouts (1.0 as in TRL)")
