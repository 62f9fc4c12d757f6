"""Tool use: the model may call plain Python functions before it answers.

The prompt is the row's messages with the tools' schemas (as the chat template's ``tools``). Each
model turn that calls tools gets their results back as ``tool`` messages and another turn; a turn
without calls is the final answer, scored by ``rl_reward_fn`` against the reference (correctness
by default). Only the model's own turns carry loss: the tool results are environment tokens.

Options (``rl_env_options``):
    tools: built-in names or import paths of functions (default ``[calculator]``).
    max_turns: model turns per episode (default 4); an episode that is still calling tools then
        ends unanswered, with no answer reward.
    tool_timeout: seconds a call may run (default 10).
    call_reward: a per-step reward, paid once per episode at the first turn whose calls all run
        (default 0: reward only the end).
    correct_call_reward: a per-step reward, paid once per episode at the first call that returns
        the reference answer (default 0); for tasks where the right call yields the answer, as
        the calculator's. Both are paid once, so calling tools again earns nothing.

A call that cannot be parsed, names no tool, has wrong arguments, raises or times out becomes an
error the model reads in the next turn; it never crashes the rollout. Metrics per episode:
``tool_calls`` and ``tool_errors`` (counts), ``valid_tool_call`` (1 when it called tools and all
ran), ``correct_tool_call`` (1 when a call returned the reference answer) and ``answered``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from autotrain_pl.errors import AutotrainError
from autotrain_pl.rendering.messages import Message, as_messages
from autotrain_pl.rl.envs import ENVIRONMENTS
from autotrain_pl.rl.envs.answer import score_answer
from autotrain_pl.rl.rewards import CombinedReward, answers_match
from autotrain_pl.rl.tools import ToolBox
from autotrain_pl.rl.types import Action, Env, EnvGroupBuilder, Observation, StepResult


@dataclass
class ToolUseEnv(Env):
    """One question answered with the help of tools."""

    messages: list[Message]
    reference: str | None
    toolbox: ToolBox
    reward: CombinedReward
    max_turns: int = 4
    call_reward: float = 0.0
    correct_call_reward: float = 0.0
    max_new_tokens: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    turns: int = 0
    paid_call_reward: bool = False
    matched_reference: bool = False
    had_error: bool = False
    calls: int = 0

    def initial_observation(self) -> Observation:
        return Observation(messages=list(self.messages), tools=self.toolbox.schemas)

    def step(self, action: Action) -> StepResult:
        self.turns += 1
        message = action.message
        if not message.tool_calls and message.tool_call_error is None:
            return self._answer(action)
        matched_before = self.matched_reference
        results = self._run_calls(message)
        reward = 0.0
        if not self.paid_call_reward and all(error is None for _, error in results):
            reward, self.paid_call_reward = self.call_reward, True
        if self.matched_reference and not matched_before:
            reward += self.correct_call_reward
        metrics = {"tool_calls": float(len(results)),
                   "tool_errors": float(sum(error is not None for _, error in results))}
        if self.turns >= self.max_turns:
            return StepResult(reward=reward, done=True, metrics={**metrics, **self._end(False)})
        replies = [reply for reply, _ in results]
        return StepResult(reward=reward, done=False, metrics=metrics,
                          next_observation=Observation(messages=replies))

    def _run_calls(self, message: Message) -> list[tuple[Message, str | None]]:
        """The ``tool`` message answering each call, and each call's error (None: it ran)."""
        if message.tool_call_error is not None:
            self.calls += 1
            self.had_error = True
            return [(Message("tool", f"Error: the tool call could not be read: "
                                     f"{message.tool_call_error}."), "unreadable")]
        out = []
        for call in message.tool_calls:
            self.calls += 1
            result = self.toolbox.call(call)
            self.had_error |= not result.ok
            if result.ok and self.reference is not None:
                self.matched_reference |= answers_match(result.content, self.reference)
            out.append((Message("tool", result.content, name=call.name,
                                tool_call_id=call.id), result.error))
        return out

    def _answer(self, action: Action) -> StepResult:
        result = score_answer(self.reward, action, self.reference, self.metadata,
                              self.max_new_tokens)
        result.metrics.update(self._end(True))
        return result

    def _end(self, answered: bool) -> dict[str, float]:
        """The per-episode rates, reported once, at the last step."""
        return {"answered": float(answered),
                "valid_tool_call": float(self.calls > 0 and not self.had_error),
                "correct_tool_call": float(self.matched_reference)}


@dataclass
class ToolUseGroup(EnvGroupBuilder):
    """G episodes of one question with the same tools."""

    messages: list[Message]
    reference: str | None
    toolbox: ToolBox
    reward: CombinedReward
    max_turns: int
    call_reward: float
    correct_call_reward: float
    max_new_tokens: int
    metadata: dict[str, Any]

    def make_envs(self, group_size: int) -> list[Env]:
        return [ToolUseEnv(list(self.messages), self.reference, self.toolbox, self.reward,
                           self.max_turns, self.call_reward, self.correct_call_reward,
                           self.max_new_tokens, self.metadata)
                for _ in range(group_size)]


@ENVIRONMENTS.register("tool_use")
def tool_use_group(example: dict[str, Any], reward: CombinedReward, *, max_new_tokens: int = 0,
                   tools: list[str] | None = None, max_turns: int = 4,
                   tool_timeout: float = 10.0, call_reward: float = 0.0,
                   correct_call_reward: float = 0.0) -> ToolUseGroup:
    """The group builder of one row: its prompt messages (``messages``) and reference."""
    if isinstance(max_turns, bool) or not isinstance(max_turns, int) or max_turns < 2:
        raise AutotrainError(f"model.rl_env_options.max_turns={max_turns!r} must be an integer "
                             ">= 2 (a tool call and an answer)")
    if not example.get("messages"):
        raise AutotrainError("rl_env_type=tool_use needs each problem's prompt messages; give "
                             "chat rows (e.g. synthetic:tool_use) through ChatDataModule")
    return ToolUseGroup(as_messages(example["messages"]), example.get("reference"),
                        _toolbox(tuple(tools or ("calculator",)), tool_timeout), reward,
                        max_turns, float(call_reward), float(correct_call_reward),
                        max_new_tokens, example.get("metadata") or {})


_TOOLBOXES: dict[tuple, ToolBox] = {}


def _toolbox(tools: tuple, timeout: float) -> ToolBox:
    """One ``ToolBox`` per tool list, not one per problem: resolving and describing the tools
    (imports, docstring parsing) is done once."""
    key = (tools, timeout)
    if key not in _TOOLBOXES:
        _TOOLBOXES[key] = ToolBox(list(tools), timeout)
    return _TOOLBOXES[key]
