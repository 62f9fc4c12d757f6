"""Reward functions by name or import path, combined with weights, that never kill a run.

A reward function takes the model's reply text and the problem's reference (None when the data
has none) plus keyword context (``prompt``, ``metadata``, ``completion_tokens``,
``truncated``) and returns a float. ``rl_reward_fn`` names one (``correctness``), several with
weights (``{"correctness": 1.0, "length_penalty": 0.1}``) or an import path
(``my_pkg.rewards.judge``). A function that raises or returns a non-finite value marks the
sample as failed: it is counted, logged and trains with no gradient; the run goes on.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from autotrain_pl.errors import AutotrainError
from autotrain_pl.evaluation.metrics.answer import normalize_answer
from autotrain_pl.registry import Registry

log = logging.getLogger(__name__)

RewardFunction = Callable[..., float]
REWARD_FUNCTIONS: Registry[RewardFunction] = Registry(
    kind="reward function", field="model.rl_reward_fn", example="my_pkg.rewards.my_reward",
    accepts=callable, expects="a callable reward function",
)
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def answers_match(reply: str, reference: str) -> bool:
    """Numbers compare as numbers (``"07"`` equals ``"7"``), anything else after SQuAD
    normalization (case, punctuation, articles)."""
    reply, reference = reply.strip(), reference.strip()
    if _NUMBER.fullmatch(reference):
        return _NUMBER.fullmatch(reply) is not None and float(reply) == float(reference)
    return normalize_answer(reply) == normalize_answer(reference)


@REWARD_FUNCTIONS.register("correctness", "default")
def correctness(reply: str, reference: str | None, **context: Any) -> float:
    """1.0 when the reply is the reference answer, else 0.0 (``answers_match``)."""
    if reference is None:
        raise AutotrainError("the correctness reward needs a reference answer; give rows with "
                             "one (a completion or reference column) or use another rl_reward_fn")
    return float(answers_match(reply, reference))


@REWARD_FUNCTIONS.register("format")
def answer_format(reply: str, reference: str | None, **context: Any) -> float:
    """1.0 when the reply is a bare answer of the reference's shape (a number for a number),
    else 0.0: rewards answering without extra words."""
    reply = reply.strip()
    if reference is not None and _NUMBER.fullmatch(reference.strip()):
        return float(_NUMBER.fullmatch(reply) is not None)
    return float(bool(reply) and "\n" not in reply)


@REWARD_FUNCTIONS.register("length_penalty")
def length_penalty(reply: str, reference: str | None, *, completion_tokens: int = 0,
                   max_new_tokens: int = 0, truncated: bool = False, **context: Any) -> float:
    """``-completion_tokens / max_new_tokens`` (0 for an empty reply, -1 at the limit), and -1
    for a truncated reply: weight it small to prefer short answers among right ones."""
    if truncated:
        return -1.0
    return -completion_tokens / max_new_tokens if max_new_tokens else 0.0


RewardSpec = str | list[str] | Mapping[str, float]


def reward_weights(spec: RewardSpec) -> dict[str, float]:
    """``rl_reward_fn`` as ``{name: weight}``: a name or a list of them weigh 1 each."""
    if isinstance(spec, str):
        spec = {spec: 1.0}
    elif isinstance(spec, list | tuple):
        spec = {name: 1.0 for name in spec}
    if not isinstance(spec, Mapping) or not spec:
        raise AutotrainError(f"model.rl_reward_fn={spec!r}: give a reward name (e.g. "
                             "correctness), a list of names, or a mapping of names to weights")
    weights = {}
    for name, weight in spec.items():
        if isinstance(weight, bool) or not isinstance(weight, int | float) or \
                not math.isfinite(weight):
            raise AutotrainError(f"model.rl_reward_fn: the weight of {name!r} is {weight!r}; "
                                 "give a finite number")
        weights[name] = float(weight)
    return weights


@dataclass
class RewardOutcome:
    """The combined reward of one sample, each weighted term, and whether it failed."""

    reward: float
    terms: dict[str, float]
    failed: bool = False
    error: str | None = None


class CombinedReward:
    """Weighted sum of reward functions, evaluated safely (module docstring).

    Args:
        spec: a name or import path, a list of them (weight 1 each), or a mapping to weights.
    """

    def __init__(self, spec: RewardSpec) -> None:
        self.weights = reward_weights(spec)
        self.functions: dict[str, RewardFunction] = {
            name: REWARD_FUNCTIONS.get(name) for name in self.weights}

    def __call__(self, reply: str, reference: str | None, **context: Any) -> RewardOutcome:
        terms: dict[str, float] = {}
        for name, function in self.functions.items():
            try:
                value = float(function(reply, reference, **context))
            except AutotrainError:
                raise  # a configuration error (e.g. correctness without references): say it
            except Exception as error:  # noqa: BLE001 - a user's reward must not kill the run
                return RewardOutcome(0.0, terms, failed=True, error=f"{name}: {error!r}")
            if not math.isfinite(value):
                return RewardOutcome(0.0, terms, failed=True, error=f"{name} returned {value}")
            terms[name] = value
        return RewardOutcome(sum(self.weights[n] * v for n, v in terms.items()), terms)
