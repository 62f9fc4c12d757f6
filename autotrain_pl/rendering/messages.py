"""Plain records for chat data: messages, conversations, preference pairs, and what to train on."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from autotrain_pl.errors import AutotrainError

KNOWN_ROLES = ("system", "user", "assistant", "tool")


@dataclass(frozen=True)
class ToolCall:
    """A function call in an assistant turn: one entry of OpenAI / Hugging Face ``tool_calls``.

    ``arguments`` is a dict, as chat templates expect; the OpenAI API's JSON-string form is parsed.
    """

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    id: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ToolCall:
        """``{"type": "function", "function": {"name", "arguments"}, "id"?}`` or a flat
        ``{"name", "arguments"}``."""
        if not isinstance(data, Mapping):
            raise AutotrainError(
                f"a tool call must be an object, got {type(data).__name__}; "
                'give {"type": "function", "function": {"name": ..., "arguments": {...}}}'
            )
        function = data.get("function", data)
        name = function.get("name") if isinstance(function, Mapping) else None
        if not isinstance(name, str) or not name:
            raise AutotrainError(
                f"tool call {dict(data)!r:.80} has no function name; "
                'give {"type": "function", "function": {"name": ..., "arguments": {...}}}'
            )
        call_id = data.get("id")
        if call_id is not None and not isinstance(call_id, str):
            raise AutotrainError(f"tool call {name!r} has a non-string id {call_id!r}")
        return cls(name, _arguments(name, function.get("arguments")), call_id)

    def to_dict(self) -> dict[str, Any]:
        """The Hugging Face chat-template shape."""
        out: dict[str, Any] = {"id": self.id} if self.id is not None else {}
        out["type"] = "function"
        out["function"] = {"name": self.name, "arguments": dict(self.arguments)}
        return out


def _arguments(name: str, arguments: Any) -> dict[str, Any]:
    if arguments is None:
        return {}
    if isinstance(arguments, str):  # the OpenAI API sends arguments as a JSON string
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError as err:
            raise AutotrainError(
                f"tool call {name!r} has arguments that are not valid JSON ({err})"
            ) from None
    if not isinstance(arguments, Mapping):
        raise AutotrainError(
            f"tool call {name!r} has arguments of type {type(arguments).__name__}; "
            "give an object of argument names and values"
        )
    return dict(arguments)


@dataclass(frozen=True)
class Message:
    """One chat turn.

    Attributes:
        role: ``system``, ``user``, ``assistant`` or ``tool``.
        content: the text; may be empty in an assistant turn that only calls tools.
        weight: overrides the per-role token weight for this message only.
        tool_calls: an assistant's function calls (dicts in the OpenAI / Hugging Face shape are
            converted to ``ToolCall``).
        name: a ``tool`` message's function name (as some templates and APIs carry it).
        tool_call_id: the id of the call a ``tool`` message answers.
        tool_call_error: set by ``Renderer.parse_response`` when the reply tried to call a tool
            but the call could not be parsed (the content is then the raw reply), so an
            environment can tell the model; never rendered or serialized.
    """

    role: str
    content: str = ""
    weight: float | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    name: str | None = None
    tool_call_id: str | None = None
    tool_call_error: str | None = None

    def __post_init__(self) -> None:
        calls = tuple(
            call if isinstance(call, ToolCall) else ToolCall.from_dict(call)
            for call in (self.tool_calls or ())
        )
        if calls and self.role != "assistant":
            raise AutotrainError(
                f"a {self.role!r} message has tool_calls; only assistant messages call tools"
            )
        object.__setattr__(self, "tool_calls", calls)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Message:
        """A message from its dict; ``content`` may be missing or null beside ``tool_calls``."""
        content = data.get("content")
        return cls(
            role=data["role"],
            content="" if content is None and data.get("tool_calls") else content,
            weight=data.get("weight"),
            tool_calls=tuple(data.get("tool_calls") or ()),
            name=data.get("name"),
            tool_call_id=data.get("tool_call_id"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The Hugging Face chat-template shape; fields that are unset are left out."""
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.weight is not None:
            out["weight"] = self.weight
        if self.tool_calls:
            out["tool_calls"] = [call.to_dict() for call in self.tool_calls]
        if self.name is not None:
            out["name"] = self.name
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        return out


def has_tool_use(message: Message) -> bool:
    """True for an assistant message that calls tools and for a tool result."""
    return bool(message.tool_calls) or message.role == "tool"


MessageLike = Message | Mapping[str, Any]


def as_messages(messages: Sequence[MessageLike]) -> list[Message]:
    """``Message`` objects from ``Message``s or OpenAI / Hugging Face-style dicts.

    Users hold dicts; every public entry point that takes messages accepts both. Besides
    ``{"role", "content"}``, a dict may carry ``tool_calls`` (then ``content`` may be missing or
    null), ``name`` and ``tool_call_id``; ``Message.to_dict`` gives the same dict back.
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
            continue
        calls = isinstance(message, Mapping) and bool(message.get("tool_calls"))
        if (
            not isinstance(message, Mapping)
            or "role" not in message
            or not ("content" in message or calls)
        ):
            raise AutotrainError(
                f"message {i} is {message!r}; give a Message or a dict with 'role' and 'content'"
            )
        content = message.get("content")
        if not isinstance(content, str) and not (content is None and calls):
            raise AutotrainError(
                f"message {i} has content of type {type(content).__name__}; "
                "chat formats render text content only"
            )
        try:
            converted.append(Message.from_dict(message))
        except AutotrainError as err:
            raise AutotrainError(f"message {i}: {err}") from None
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
