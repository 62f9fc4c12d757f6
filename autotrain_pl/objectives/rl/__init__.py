"""Reinforcement-learning objectives: rollouts through the completers, updates through the
shared step code on Lightning manual optimization."""

from autotrain_pl.objectives.rl.grpo import GRPOModule
from autotrain_pl.objectives.rl.ppo import PPOModule

__all__ = ["GRPOModule", "PPOModule"]
