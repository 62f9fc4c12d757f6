"""Reinforcement learning: environments, rewards and rollouts (the objectives live in
``autotrain_pl.objectives``)."""

from autotrain_pl.rl.rewards import REWARD_FUNCTIONS, CombinedReward, RewardOutcome
from autotrain_pl.rl.types import Action, Env, EnvGroupBuilder, Observation, Rollout, StepResult

__all__ = ["REWARD_FUNCTIONS", "Action", "CombinedReward", "Env", "EnvGroupBuilder",
           "Observation", "RewardOutcome", "Rollout", "StepResult"]
