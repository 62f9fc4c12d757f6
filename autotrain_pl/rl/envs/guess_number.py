"""Guess the number: a multi-turn environment where fewer turns earn more.

The model guesses a whole number in ``[low, high]`` (the data's ``reference`` is the secret;
``synthetic:guess_number`` makes such rows) and is told "higher" or "lower" after each wrong
guess. A right guess at turn ``t`` earns ``1 - (t - 1) / max_turns``; running out of turns, or a
reply that is not a number, earns 0 for that turn and (after ``max_turns``) ends the episode.
The game scores itself: a ``rl_reward_fn`` other than the default is refused, not ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from autotrain_pl.data.synthetic import guess_hint
from autotrain_pl.errors import AutotrainError
from autotrain_pl.rendering.messages import Message, as_messages
from autotrain_pl.rl.envs import ENVIRONMENTS
from autotrain_pl.rl.types import Action, Env, EnvGroupBuilder, Observation, StepResult

_GUESS = re.compile(r"-?\d+")


@dataclass
class GuessNumberEnv(Env):
    """One game against one secret."""

    messages: list[Message]
    secret: int
    max_turns: int = 6
    turns: int = 0

    def initial_observation(self) -> Observation:
        return Observation(messages=list(self.messages))

    def step(self, action: Action) -> StepResult:
        self.turns += 1
        found = _GUESS.search(action.message.content)
        guess = int(found.group()) if found else None
        if guess == self.secret:
            return StepResult(reward=1.0 - (self.turns - 1) / self.max_turns, done=True,
                              metrics={"solved": 1.0})
        if self.turns >= self.max_turns:
            return StepResult(reward=0.0, done=True,
                              metrics={"solved": 0.0})
        feedback = "Answer with one number." if guess is None else guess_hint(guess, self.secret)
        return StepResult(reward=0.0, done=False,
                          next_observation=Observation(messages=[Message("user", feedback)]))


@dataclass
class GuessNumberGroup(EnvGroupBuilder):
    messages: list[Message]
    secret: int
    max_turns: int

    def make_envs(self, group_size: int) -> list[Env]:
        return [GuessNumberEnv(self.messages, self.secret, self.max_turns)
                for _ in range(group_size)]


@ENVIRONMENTS.register("guess_number")
def guess_number_group(example: dict[str, Any], reward, *, max_new_tokens: int = 0,
                       max_turns: int = 6) -> GuessNumberGroup:
    """The game of one row: its prompt (the opening message) and secret (``reference``)."""
    if reward is not None and reward.weights != {"correctness": 1.0}:
        raise AutotrainError("rl_env_type=guess_number scores its turns itself; remove "
                             f"model.rl_reward_fn ({', '.join(reward.weights)})")
    if isinstance(max_turns, bool) or not isinstance(max_turns, int) or max_turns < 1:
        raise AutotrainError(f"model.rl_env_options.max_turns={max_turns!r} must be an integer "
                             ">= 1")
    reference = example.get("reference")
    if reference is None or not _GUESS.fullmatch(str(reference).strip()):
        raise AutotrainError(f"rl_env_type=guess_number needs each row's reference to be the "
                             f"secret number, got {reference!r}; e.g. synthetic:guess_number")
    if not example.get("messages"):
        raise AutotrainError("rl_env_type=guess_number needs each problem's opening message; "
                             "give chat rows (e.g. synthetic:guess_number) through ChatDataModule")
    return GuessNumberGroup(as_messages(example["messages"]), int(str(reference).strip()),
                            max_turns)
