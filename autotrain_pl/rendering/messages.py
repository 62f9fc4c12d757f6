"""Plain records for chat data: messages, conversations, preference pairs, and what to train on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from autotrain_pl.errors import AutotrainError

KNOWN_ROLES = ("system", "user", "assistant", "tool")


@dataclass(frozen=True)
class Message:
    """One chat turn. ``weight`` overrides the per-role token weight for this message only."""

    role: str
    content: str
    weight: float | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Message:
        return cls(role=data["role"], content=data["content"], weight=data.get("weight"))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.weight is not None:
            out["weight"] = self.weight
        return out


MessageLike = Message | Mapping[str, Any]


def as_messages(messages: Sequence[MessageLike]) -> list[Message]:
    """``Message`` objects from ``Message``s or OpenAI-style ``{"role", "content"}`` dicts.

    Users hold dicts; every public entry point that takes messages accepts both.
    """
    if isinstance(messages, str | bytes | Mapping | Message):
        raise AutotrainError(
            f"messages must be a list of messages, got {type(messages).__name__}; "
            'pass [{"role": "user", "content": "..."}]'
        )
    converted = []
    for i, message in enumerate(messages):
        if isinstance(message, Message):
            converted.append(message)
        elif isinstance(message, Mapping) and "role" in message and "content" in message:
            content = message["content"]
            if not isinstance(content, str):
                raise AutotrainError(
                    f"message {i} has content of type {type(content).__name__}; "
                    "chat formats render text content only"
                )
            converted.append(Message.from_dict(message))
        else:
            raise AutotrainError(
                f"message {i} is {message!r}; give a Message or a dict with 'role' and 'content'"
            )
    return converted


@dataclass
class Conversation:
    """A list of messages plus free-form metadata (for example a reference answer for eval)."""

    messages: list[Message]
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dicts(cls, messages: Sequence[Mapping[str, Any]], **metadata: Any) -> Conversation:
        return cls([Message.from_dict(m) for m in messages], dict(metadata))


@dataclass
class Preference:
    """A prompt rendered once, with a chosen and a rejected completion (completions only)."""

    prompt: list[Message]
    chosen: list[Message]
    rejected: list[Message]
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class UnpairedPreference:
    """A prompt and one completion labelled desirable or not (KTO's unpaired feedback)."""

    prompt: list[Message]
    completion: list[Message]
    desirable: bool
    metadata: dict[str, Any] = field(default_factory=dict)


class TrainOnWhat(StrEnum):
    """Which messages carry loss weight.

    ``CUSTOMIZED`` trains each message with its own ``Message.weight`` (missing means 0).
    ``ALL_TOKENS`` also trains the format's scaffolding (BOS, role headers).
    """

    LAST_ASSISTANT_MESSAGE = "last_assistant_message"
    ALL_ASSISTANT_MESSAGES = "all_assistant_messages"
    ALL_MESSAGES = "all_messages"
    ALL_TOKENS = "all_tokens"
    CUSTOMIZED = "customized"

    @classmethod
    def parse(cls, value: str | TrainOnWhat) -> TrainOnWhat:
        try:
            return cls(value)
        except ValueError:
            choices = ", ".join(m.value for m in cls)
            raise AutotrainError(f"train_on={value!r} is not known; use one of: {choices}") from None
