"""The small, explicit interfaces of RL environments (tinker-cookbook style).

An ``Env`` is one episode and is used once: ``initial_observation()`` gives the prompt and
``step(action)`` the outcome of each model turn. An ``EnvGroupBuilder`` makes the G environments
of one problem, so advantages can be taken relative to the group, and may score the group as a
whole (pairwise judges, games). A ``Rollout`` is what training consumes: token ids exactly as
sampled, the behaviour log-probabilities and a mask of the policy's own tokens; generated text
is never re-tokenized.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

from autotrain_pl.rendering.messages import Message


@dataclass
class Observation:
    """What the model sees before a turn.

    Attributes:
        token_ids: the prompt as rendered token ids (with the generation prompt), when the
            environment already has them; else ``messages`` are rendered with the policy's chat
            format.
        messages: the conversation so far, for environments that think in messages. For a
            later turn: only the NEW messages (user feedback, tool results), appended after the
            model's own sampled tokens.
        stop: stop strings for this turn, besides the chat format's end of turn.
        max_new_tokens: a per-turn cap (None: the objective's).
        tools: JSON schemas of the tools offered in the prompt (as the chat template's
            ``tools``); the first observation's hold for the whole episode.
    """

    token_ids: list[int] | None = None
    messages: list[Message] | None = None
    tools: list[dict] | None = None
    stop: list[str] = field(default_factory=list)
    max_new_tokens: int | None = None


@dataclass
class Action:
    """One model turn: the sampled tokens, their text and the parsed message."""

    tokens: list[int]
    text: str
    message: Message
    stop_reason: str


@dataclass
class StepResult:
    """The environment's answer to an action."""

    reward: float
    done: bool
    next_observation: Observation | None = None
    metrics: dict[str, float] = field(default_factory=dict)


class Env(ABC):
    """One episode; single use."""

    @abstractmethod
    def initial_observation(self) -> Observation:
        """The prompt of the episode's first turn."""

    @abstractmethod
    def step(self, action: Action) -> StepResult:
        """Score a model turn; ``done=False`` needs a ``next_observation``."""


class EnvGroupBuilder(ABC):
    """Makes the environments of one problem (a group)."""

    @abstractmethod
    def make_envs(self, group_size: int) -> list[Env]:
        """``group_size`` fresh environments for the same problem."""

    def group_rewards(self, rollouts: Sequence[Rollout]) -> list[float] | None:
        """Optional rewards computed over the whole group, added to each rollout's own (e.g. a
        pairwise judge); None adds nothing."""
        return None


@dataclass
class Rollout:
    """One finished episode, as training reads it.

    Attributes:
        token_ids: the whole episode's tokens: prompt, then each sampled turn exactly as sampled,
            with the environment's tokens (feedback, tool results) between turns.
        prompt_length: tokens of the first prompt.
        logprobs: behaviour log-probability of every token (0.0 where ``mask`` is 0).
        mask: 1 at the policy's own sampled tokens (trained), 0 at prompt and environment tokens.
        reward: the episode's total reward (step rewards plus group rewards).
        group: index of the group (problem) within the batch.
        truncated: the last turn hit its token limit instead of ending.
        turns: model turns taken.
        failed: the reward could not be computed (raised or NaN): the rollout carries no
            gradient and is counted.
        metrics: the environment's metrics, summed over steps.
        texts: each turn's text, for logs and evaluation.
    """

    token_ids: list[int]
    prompt_length: int
    logprobs: list[float]
    mask: list[int]
    reward: float
    group: int
    truncated: bool = False
    turns: int = 1
    failed: bool = False
    metrics: dict[str, float] = field(default_factory=dict)
    texts: list[str] = field(default_factory=list)

    @property
    def completion_length(self) -> int:
        return int(sum(self.mask))

