"""Single-turn answer environments: the model answers once and the reward functions score it.

``arithmetic`` poses the data's arithmetic questions (``synthetic:arithmetic?digits=3&ops=+-``
sets digits and operators) and compares numbers; ``qa`` is exact-match question answering on
any dataset with a reference answer (SQuAD normalization), and with ``rl_reward_fn:
{correctness: 1, format: 0.1}`` also checks the format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from autotrain_pl.rl.envs import ENVIRONMENTS
from autotrain_pl.rl.rewards import CombinedReward
from autotrain_pl.rl.types import Action, Env, EnvGroupBuilder, Observation, StepResult


@dataclass
class AnswerEnv(Env):
    """One question, one reply, one reward."""

    prompt_ids: list[int]
    reference: str | None
    reward: CombinedReward | None
    metadata: dict[str, Any] = field(default_factory=dict)
    max_new_tokens: int = 0

    def initial_observation(self) -> Observation:
        return Observation(token_ids=list(self.prompt_ids))

    def step(self, action: Action) -> StepResult:
        if self.reward is None:  # the group scores the replies (e.g. with a reward model)
            return StepResult(reward=0.0, done=True)
        return score_answer(self.reward, action, self.reference, self.metadata,
                            self.max_new_tokens)


def score_answer(reward: CombinedReward, action: Action, reference: str | None,
                 metadata: dict[str, Any], max_new_tokens: int) -> StepResult:
    """The final step of an episode: the reply scored by the reward functions, each term logged
    as ``reward/<name>``; a failing reward raises ``RewardFailed``."""
    outcome = reward(action.message.content, reference, metadata=metadata,
                     completion_tokens=len(action.tokens), max_new_tokens=max_new_tokens,
                     truncated=action.stop_reason == "length")
    if outcome.failed:
        raise RewardFailed(outcome.error or "reward failed")
    return StepResult(reward=outcome.reward, done=True,
                      metrics={f"reward/{name}": value for name, value in outcome.terms.items()})


class RewardFailed(RuntimeError):
    """A reward function raised or returned NaN: the rollout is marked failed, not the run."""


@dataclass
class AnswerGroupBuilder(EnvGroupBuilder):
    """G copies of one question."""

    prompt_ids: list[int]
    reference: str | None
    reward: CombinedReward | None
    metadata: dict[str, Any] = field(default_factory=dict)
    max_new_tokens: int = 0

    def make_envs(self, group_size: int) -> list[Env]:
        return [AnswerEnv(self.prompt_ids, self.reference, self.reward, self.metadata,
                          self.max_new_tokens) for _ in range(group_size)]


@ENVIRONMENTS.register("arithmetic", "qa", "default")
def answer_group(example: dict[str, Any], reward: CombinedReward, *, max_new_tokens: int = 0
                 ) -> AnswerGroupBuilder:
    """The group builder of one question-with-reference example."""
    return AnswerGroupBuilder(list(example["prompt_ids"]), example.get("reference"), reward,
                              example.get("metadata") or {}, max_new_tokens)
