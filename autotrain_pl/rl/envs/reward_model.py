"""Reward-model scoring: a trained reward model (``rl_reward_model_path``) scores each reply.

``rl_env_type: reward_model`` poses the row's prompt once and scores the reply in its
conversation with the reward model, the G replies of a group in one batch. Other terms of
``rl_reward_fn`` (``length_penalty``, ``format``, an import path) add with their weights, and
``reward_model`` is the reward model's own weight: ``{reward_model: 1.0, length_penalty: 0.1}``.
The reward model re-reads the reply as text, with its own chat format and tokenizer, so it need
not share the policy's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from autotrain_pl.errors import AutotrainError
from autotrain_pl.models.reward import RewardScorer
from autotrain_pl.rendering.messages import Message, as_messages
from autotrain_pl.rl.envs import ENVIRONMENTS
from autotrain_pl.rl.envs.answer import AnswerGroupBuilder
from autotrain_pl.rl.rewards import CombinedReward
from autotrain_pl.rl.types import Env, EnvGroupBuilder, Rollout

#: The ``rl_reward_fn`` name of the reward model's term.
REWARD_MODEL_TERM = "reward_model"


@dataclass
class RewardModelGroup(EnvGroupBuilder):
    """G replies to one prompt, each scored by the reward model on top of its own reward."""

    answers: AnswerGroupBuilder
    messages: list[Message]
    scorer: RewardScorer
    weight: float = 1.0

    def make_envs(self, group_size: int) -> list[Env]:
        return self.answers.make_envs(group_size)

    def group_rewards(self, rollouts: Sequence[Rollout]) -> list[float]:
        conversations = [[*self.messages, Message("assistant", rollout.texts[-1])]
                         for rollout in rollouts]
        return [self.weight * score for score in self.scorer.score(conversations)]


@ENVIRONMENTS.register(REWARD_MODEL_TERM)
def reward_model_group(example: dict[str, Any], reward: CombinedReward | None, *,
                       max_new_tokens: int = 0, reward_model: RewardScorer | None = None,
                       reward_model_weight: float = 1.0) -> RewardModelGroup:
    """The group builder of one prompt row; ``reward_model`` is the objective's ``RewardScorer``
    of ``rl_reward_model_path`` (not an ``rl_env_options`` key)."""
    if reward_model is None:
        raise AutotrainError("rl_env_type=reward_model needs model.rl_reward_model_path: a reward "
                             "model trained with RewardModule (configs/reward.yaml)")
    if not example.get("messages"):
        raise AutotrainError("rl_env_type=reward_model needs each problem's prompt messages; give "
                             "chat rows through ChatDataModule")
    answers = AnswerGroupBuilder(list(example["prompt_ids"]), example.get("reference"), reward,
                                 example.get("metadata") or {}, max_new_tokens)
    return RewardModelGroup(answers, as_messages(example["messages"]), reward_model,
                            float(reward_model_weight))
