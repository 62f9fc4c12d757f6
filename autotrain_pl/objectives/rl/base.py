"""What the RL objectives share: problems from the data module, episodes sampled through one
rollout engine, and the per-token tensors an update reads.

``RLObjective`` turns each data example (``RLEncoding``: prompt ids, reference, metadata) into an
environment group (``rl_env_type``), samples and scores its episodes (``rl.rollouts``) with the
policy itself, and lays rollouts out as right-padded ids with per-target tensors: the mask of the
policy's own tokens and their behaviour log-probabilities. Training never re-tokenizes sampled
text. Subclasses (``GRPOModule``, ``PPOModule``) implement ``training_step`` on Lightning manual
optimization through the shared step code (``backward_micro_batch``, ``finish_optimizer_step``).

Validation samples greedily, one episode per problem, and logs ``val/reward``; ``val/loss`` is the
negative mean reward, so "minimize val/loss" means "maximize reward" for checkpoints and sweeps.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from autotrain_pl.errors import AutotrainError
from autotrain_pl.generation import SamplingConfig
from autotrain_pl.models.reward import RewardScorer, check_reward_model_ref
from autotrain_pl.objectives.base import ObjectiveModule
from autotrain_pl.objectives.rl.data import RLEncoding
from autotrain_pl.rl.envs import ENVIRONMENTS, PROVIDED_OPTIONS
from autotrain_pl.rl.envs.reward_model import REWARD_MODEL_TERM
from autotrain_pl.rl.rewards import CombinedReward, reward_weights
from autotrain_pl.rl.rollouts import CompleterEngine, RolloutEngine, collect_rollouts
from autotrain_pl.rl.types import Rollout
from autotrain_pl.training import FrozenModel, LossOutput
from autotrain_pl.training.stepping import check_clip_norm
from autotrain_pl.training.tokens import forward_logprobs

#: The default longest completion per turn.
DEFAULT_MAX_NEW_TOKENS = 64


class RLObjective(ObjectiveModule):
    """Base of the RL objectives (module docstring).

    Args:
        max_new_tokens: longest completion per turn (TRL's ``max_completion_length``).
        temperature, top_p, top_k: sampling of the rollouts; training log-probabilities use the
            same temperature, as TRL.
        rl_env_type: the environment (``arithmetic``, ``qa``, ``guess_number``, ``tool_use``,
            ``reward_model``) or an import path to a builder.
        rl_env_options: keyword options of the environment (e.g. ``{max_turns: 6}``); an option
            the environment does not take is an error.
        rl_reward_fn: reward name, list, ``{name: weight}`` mapping or import path (None:
            ``correctness``, or the reward model alone with ``rl_reward_model_path``).
        rl_reward_model_path: a reward model (``RewardModule``'s run or export) that scores the
            replies of ``rl_env_type: reward_model``; its weight is ``rl_reward_fn``'s
            ``reward_model`` entry.
        rl_chunk_size: prompts per ``generate`` call.
        rl_mini_batch_size: completions per forward/backward in the update (None: all).
        rl_optimize_device_cache: free cached accelerator memory between rollout and update.
        max_grad_norm: clip the normalized gradients of every update to this L2 norm (1.0, TRL's
            default; None: no clipping). Manual optimization leaves Lightning's
            ``gradient_clip_val`` unused, so the step code clips instead.
        ref_model: the reference of a KL term (default: the starting policy; with LoRA the
            adapter switched off).
        use_reference: load the reference (set by subclasses from their KL weight).
        **kwargs: the shared options of ``ObjectiveModule`` (model, LoRA, optimizer, ...).
    """

    #: Episodes sampled per problem in training (GRPO's G; 1 for PPO).
    samples_per_problem: int = 1

    def __init__(
        self,
        *args: Any,
        max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int | None = None,
        rl_env_type: str = "arithmetic",
        rl_env_options: dict | None = None,
        rl_reward_fn: str | list[str] | dict[str, float] | None = None,
        rl_reward_model_path: str | None = None,
        rl_chunk_size: int = 8,
        rl_mini_batch_size: int | None = None,
        rl_optimize_device_cache: bool = False,
        max_grad_norm: float | None = 1.0,
        ref_model: str | None = None,
        use_reference: bool = False,
        **kwargs: Any,
    ) -> None:
        _check_options(max_new_tokens=max_new_tokens, temperature=temperature,
                       rl_chunk_size=rl_chunk_size, rl_mini_batch_size=rl_mini_batch_size,
                       top_p=top_p, top_k=top_k)
        self.make_group = ENVIRONMENTS.get(rl_env_type)
        check_env_options(self.make_group, rl_env_type, rl_env_options or {})
        self.reward, self.reward_model_weight = _rewards(rl_env_type, rl_reward_fn,
                                                         rl_reward_model_path)
        max_grad_norm = check_clip_norm("model.max_grad_norm", max_grad_norm)
        super().__init__(*args, **kwargs)
        self.automatic_optimization = False
        self.step_controller.gradient_clip_norm = max_grad_norm
        self.encoding = RLEncoding()
        self.reference: FrozenModel | None = None
        if use_reference:
            hp = self.hparams
            self.reference = (FrozenModel.adapter_disabled(self.model, hp.model_name_or_path)
                              if ref_model is None and hasattr(self.model, "disable_adapter")
                              else FrozenModel.copy(ref_model or hp.model_name_or_path,
                                                    dtype=hp.dtype,
                                                    trust_remote_code=hp.trust_remote_code))
        self._engine: RolloutEngine | None = None
        self._reward_scorer: RewardScorer | None = None

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

    @property
    def reward_scorer(self) -> RewardScorer | None:
        """The reward model of ``rl_reward_model_path``, loaded on first use on the policy's
        device (None without one)."""
        path = self.hparams.rl_reward_model_path
        if path is not None and self._reward_scorer is None:
            self._reward_scorer = RewardScorer.load(path, device=str(self.device),
                                                    dtype=self.hparams.dtype,
                                                    trust_remote_code=self.hparams.trust_remote_code)
        return self._reward_scorer

    def rollouts(self, problems: Sequence[Mapping[str, Any]], group_size: int,
                 greedy: bool = False) -> list[Rollout]:
        """Sample and score ``group_size`` episodes per problem."""
        hp = self.hparams
        options = dict(hp.rl_env_options or {}, max_new_tokens=hp.max_new_tokens)
        if self.reward_scorer is not None:
            options.update(reward_model=self.reward_scorer,
                           reward_model_weight=self.reward_model_weight)
        builders = [self.make_group(dict(p), self.reward, **options) for p in problems]
        return collect_rollouts(builders, self.engine, self.renderer, group_size,
                                self.sampling(greedy))

    def setup(self, stage: str) -> None:
        super().setup(stage)
        datamodule = self.trainer.datamodule
        size, batch = self.hparams.rl_mini_batch_size, getattr(datamodule, "batch_size", None)
        if stage == "fit" and size and batch and size > batch * self.samples_per_problem:
            raise AutotrainError(
                f"model.rl_mini_batch_size={size} is larger than the rollout batch "
                f"({batch} prompts x {self.samples_per_problem} samples = "
                f"{batch * self.samples_per_problem}); lower it or raise data.batch_size"
            )

    def mini_batches(self, count: int) -> list[list[int]]:
        """Row indices of the update's micro-batches (``rl_mini_batch_size`` each)."""
        size = self.hparams.rl_mini_batch_size or count
        return [list(range(start, min(start + size, count))) for start in range(0, count, size)]

    @property
    def pad_token_id(self) -> int:
        """The id padding takes in update batches (never read: masked out)."""
        pad = self.tokenizer.pad_token_id
        return pad if pad is not None else 0

    def token_batch(self, rollouts: Sequence[Rollout]) -> dict[str, Tensor]:
        """Right-padded ids, and per-target tensors ``[B, L - 1]`` (target ``t + 1`` at
        ``t``): the completion mask and the behaviour log-probabilities."""
        length = max(len(r.token_ids) for r in rollouts)
        ids = torch.full((len(rollouts), length), self.pad_token_id, dtype=torch.long)
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

    def policy_logprobs(self, batch: Mapping[str, Tensor], rows: Tensor) -> Tensor:
        """``[B, L - 1]`` log-probabilities under the policy, computed for ``rows`` only."""
        weights = batch["loss_weights"] * rows[:, None]
        flat, selection = forward_logprobs(self.model, dict(batch, loss_weights=weights),
                                           self.hparams.temperature)
        return self._dense(flat, selection, batch["completion_mask"])

    @torch.no_grad()
    def reference_logprobs(self, batch: Mapping[str, Tensor]) -> Tensor:
        keys = {k: batch[k] for k in ("input_ids", "attention_mask", "loss_weights")}
        flat, selection = self.reference.trained_logprobs(keys, self.device,
                                                          self.hparams.temperature)
        return self._dense(flat, selection, batch["completion_mask"])

    def log_rollouts(self, rollouts: Sequence[Rollout], rewards: Tensor, failed: Tensor,
                     rollout_s: float, update_s: float, updates: int = 1,
                     **extra: float) -> None:
        """Log a step's rollout figures: reward mean/std, lengths, failures, speeds, ``extra``.

        Under DDP the rewards of every rank are gathered, so reward mean/std and the failure
        count are those of the whole step; the other figures are means over ranks (every rank
        holds as many rollouts).
        """
        if self._trainer is not None and self._trainer.world_size > 1:
            rewards = self.all_gather(rewards.to(self.device)).flatten().cpu()
            failed = self.all_gather(failed.to(self.device)).flatten().cpu()
        ok = rewards[~failed]
        values = {
            "reward": float(ok.mean()) if ok.numel() else 0.0,
            "reward_std": float(ok.std()) if ok.numel() > 1 else 0.0,
            "completion_length": sum(r.completion_length for r in rollouts) / len(rollouts),
            "turns": sum(r.turns for r in rollouts) / len(rollouts),
            "truncated": sum(r.truncated for r in rollouts) / len(rollouts),
            "failed_samples": float(failed.sum()),
            "rollout_samples_per_s": len(rollouts) / max(rollout_s, 1e-9),
            "update_samples_per_s": len(rollouts) * updates / max(update_s, 1e-9),
            **episode_metric_means(rollouts),
            **extra,
        }
        for name, value in values.items():
            gathered = name in ("reward", "reward_std", "failed_samples")
            self.log(f"train/{name}", value, prog_bar=name == "reward", on_step=True,
                     batch_size=1, sync_dist=not gathered)

    # -- evaluation -----------------------------------------------------------------------------
    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor:
        rollouts = self.rollouts(batch["problems"], 1, greedy=True)
        rewards = torch.tensor([0.0 if r.failed else r.reward for r in rollouts], device=self.device)
        sums = {"reward": rewards.sum(),
                "turns": torch.tensor(float(sum(r.turns for r in rollouts)), device=self.device),
                **{name: torch.tensor(mean * len(rollouts), device=self.device)
                   for name, mean in episode_metric_means(rollouts).items()}}
        output = LossOutput.from_sum(-rewards.sum(), len(rollouts), sums, 0)
        self._eval_means.update(output)
        return output.loss_sum

    def on_fit_end(self) -> None:
        if self.reference is not None:
            self.reference.release()
        super().on_fit_end()


def batch_rows(batch: Mapping[str, Tensor], rows: Sequence[int]) -> dict[str, Tensor]:
    """Some rows of a ``token_batch`` (with any ``[B, L]`` or per-target ``[B, L - 1]`` tensors
    laid out like it), without the padding columns only the other rows needed."""
    index = torch.as_tensor(list(rows), dtype=torch.long, device=batch["input_ids"].device)
    length = batch["input_ids"].shape[1]
    width = int(batch["attention_mask"][index].sum(dim=1).max())
    return {name: value[index][:, :width - (length - value.shape[1])]
            for name, value in batch.items()}


def check_count(name: str, value: int, minimum: int = 1, hint: str = "") -> None:
    """One-line error for a count option below its minimum."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise AutotrainError(f"model.{name}={value!r} must be an integer >= {minimum}{hint}")


def _check_options(*, max_new_tokens: int, temperature: float, rl_chunk_size: int,
                   rl_mini_batch_size: int | None, top_p: float = 1.0,
                   top_k: int | None = None) -> None:
    for name, value in (("max_new_tokens", max_new_tokens), ("rl_chunk_size", rl_chunk_size)):
        check_count(name, value)
    if rl_mini_batch_size is not None:
        check_count("rl_mini_batch_size", rl_mini_batch_size,
                    hint=", or null (the whole rollout batch)")
    if not 0 < temperature < float("inf"):
        raise AutotrainError(f"model.temperature={temperature!r} must be > 0: RL samples its "
                             "rollouts (1.0 as in TRL)")
    if not 0 < top_p <= 1:
        raise AutotrainError(f"model.top_p={top_p!r} must be in (0, 1] (1 means off)")
    if top_k is not None:
        check_count("top_k", top_k, 0, hint=" (0 or null: off)")


def episode_metric_means(rollouts: Sequence[Rollout]) -> dict[str, float]:
    """The environments' own metrics (``StepResult.metrics``, summed per episode), averaged over
    all episodes (an episode that does not report one counts 0: a count like ``tool_calls``
    stays a per-episode mean)."""
    sums: dict[str, float] = {}
    for rollout in rollouts:
        for name, value in rollout.metrics.items():
            sums[name] = sums.get(name, 0.0) + value
    return {name: total / len(rollouts) for name, total in sums.items()}


def check_env_options(factory, env_type: str, options: Mapping[str, Any]) -> None:
    """One-line error for an ``rl_env_options`` key the environment does not take."""
    if not isinstance(options, Mapping):
        raise AutotrainError(f"model.rl_env_options={options!r} must be a mapping of option "
                             "names to values")
    parameters = inspect.signature(factory).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return
    accepted = [p.name for p in parameters
                if p.kind is p.KEYWORD_ONLY and p.name not in PROVIDED_OPTIONS]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise AutotrainError(f"model.rl_env_options: rl_env_type={env_type} has no option "
                             f"{', '.join(unknown)}; its options: {', '.join(accepted) or 'none'}")


def _rewards(env_type: str, spec, reward_model_path: str | None
             ) -> tuple[CombinedReward | None, float | None]:
    """The reward functions and the reward model's weight from ``rl_reward_fn`` and
    ``rl_reward_model_path``, refusing combinations where one would be ignored."""
    weights = reward_weights(spec) if spec is not None else None
    if reward_model_path is None:
        if env_type == REWARD_MODEL_TERM:
            raise AutotrainError("rl_env_type=reward_model needs model.rl_reward_model_path: a "
                                 "reward model trained with RewardModule (configs/reward.yaml)")
        if weights is not None and REWARD_MODEL_TERM in weights:
            raise AutotrainError("model.rl_reward_fn weighs reward_model, but "
                                 "model.rl_reward_model_path is not set; set it or drop the term")
        return CombinedReward(weights or "correctness"), None
    check_reward_model_ref(reward_model_path, "model.rl_reward_model_path")
    if env_type != REWARD_MODEL_TERM:
        raise AutotrainError(f"model.rl_reward_model_path is read by rl_env_type=reward_model, "
                             f"not {env_type}; set rl_env_type: reward_model or drop the path")
    weights = weights if weights is not None else {REWARD_MODEL_TERM: 1.0}
    if REWARD_MODEL_TERM not in weights:
        raise AutotrainError(f"model.rl_reward_fn ({', '.join(weights)}) leaves out the reward "
                             "model of rl_reward_model_path; add reward_model: <weight>")
    weight = weights.pop(REWARD_MODEL_TERM)
    return (CombinedReward(weights) if weights else None), weight
