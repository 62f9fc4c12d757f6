"""Tool use in chat formats: tool schemas for the prompt, tool calls written into and parsed out
of an assistant's text.

Two conventions are written token-exact with their published templates:

- Hermes / Qwen2.5 (``chatml``): each call is a ``<tool_call>\\n{"name": ..., "arguments": ...}
  \\n</tool_call>`` block after the reply's text.
- Llama 3.1 (``llama3``): the whole reply is one ``{"name": ..., "parameters": ...}`` object.

JSON is written as the templates' ``tojson`` filter writes it in ``transformers``
(``json.dumps(..., ensure_ascii=False)``). Parsing never raises: a reply whose tool call cannot be
read comes back as plain text with ``Message.tool_call_error`` saying why, so an RL environment can
tell the model instead of crashing the rollout.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from transformers.utils.chat_template_utils import (
    DocstringParsingException,
    TypeHintParsingException,
    get_json_schema,
)

from autotrain_pl.errors import AutotrainError
from autotrain_pl.rendering.messages import Message, ToolCall

#: A JSON schema (``{"type": "function", "function": {...}}``) or a Python function with type
#: hints and a Google-style docstring, converted as ``apply_chat_template(tools=...)`` does.
ToolLike = Mapping[str, Any] | Callable[..., Any]

_HERMES_CALL = re.compile(r"<tool_call>(.*?)(</tool_call>|$)", re.DOTALL)
_LLAMA3_CALL_START = re.compile(r'^\{\s*"name"\s*:')


def as_tool_schemas(tools: Sequence[ToolLike] | None) -> list[dict[str, Any]] | None:
    """JSON schemas of ``tools`` (None stays None: Llama 3.1 tells None from an empty list)."""
    if tools is None:
        return None
    if isinstance(tools, Mapping) or callable(tools):
        raise AutotrainError(f"tools must be a list of tools, got one {type(tools).__name__}")
    schemas = []
    for i, tool in enumerate(tools):
        if isinstance(tool, Mapping):
            schemas.append(dict(tool))
        elif inspect.isfunction(tool) or inspect.ismethod(tool):
            try:
                schemas.append(get_json_schema(tool))
            except (TypeHintParsingException, DocstringParsingException) as err:
                raise AutotrainError(f"tool {i} ({tool.__name__}): {err}") from None
        else:
            raise AutotrainError(
                f"tool {i} is a {type(tool).__name__}; give a JSON schema or a function with "
                "type hints and a docstring"
            )
    return schemas


def to_json(value: Any, indent: int | None = None) -> str:
    """JSON as the chat templates' ``tojson`` filter writes it (transformers' override)."""
    return json.dumps(value, ensure_ascii=False, indent=indent)


def hermes_tool_call(call: ToolCall) -> str:
    """One call as Qwen2.5's template writes it (the name is written raw, as there)."""
    body = f'{{"name": "{call.name}", "arguments": {to_json(call.arguments)}}}'
    return f"<tool_call>\n{body}\n</tool_call>"


def llama3_tool_call(call: ToolCall) -> str:
    """One call as Llama 3.1's template writes it (``parameters``, not ``arguments``)."""
    return f'{{"name": "{call.name}", "parameters": {to_json(call.arguments)}}}'


def _call_from_json(text: str, arguments_keys: tuple[str, ...]) -> ToolCall:
    """A ``ToolCall`` from one JSON object; ValueError says what is wrong with it."""
    data = json.loads(text)  # JSONDecodeError is a ValueError
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    if not isinstance(data.get("name"), str) or not data["name"]:
        raise ValueError('it has no "name" string')
    key = next((k for k in arguments_keys if k in data), None)
    if key is None:
        raise ValueError(f'it has no "{arguments_keys[0]}" object')
    try:
        return ToolCall.from_dict({"name": data["name"], "arguments": data[key]})
    except AutotrainError as err:
        raise ValueError(str(err)) from None


def parse_hermes_reply(text: str) -> Message:
    """An assistant message from a reply with ``<tool_call>`` blocks (Hermes / Qwen2.5).

    The content is the text outside the blocks. If any block is unclosed or does not hold a
    ``{"name": ..., "arguments": {...}}`` object, no call is returned: the content is the raw
    reply and ``tool_call_error`` says which block failed.
    """
    calls, error = [], None
    for number, match in enumerate(_HERMES_CALL.finditer(text), start=1):
        if not match.group(2):
            error = f"tool call {number} has no closing </tool_call>"
            break
        try:
            calls.append(_call_from_json(match.group(1).strip(), ("arguments", "parameters")))
        except ValueError as err:
            error = f"tool call {number} is not a valid call: {err}"
            break
    if error is not None:
        return Message("assistant", text.strip(), tool_call_error=error)
    return Message("assistant", _HERMES_CALL.sub("", text).strip(), tool_calls=tuple(calls))


def parse_llama3_reply(text: str) -> Message:
    """An assistant message from a Llama 3.1 reply: a call is the whole reply, one JSON object.

    A reply that starts like a call (``{"name":``, after an optional ``<|python_tag|>``) but is
    not one comes back as raw text with ``tool_call_error`` set; other text is plain content.
    """
    stripped = text.strip()
    body = stripped.removeprefix("<|python_tag|>").strip()
    if not _LLAMA3_CALL_START.match(body):
        return Message("assistant", stripped)
    try:
        call = _call_from_json(body, ("parameters", "arguments"))
    except ValueError as err:
        return Message("assistant", stripped, tool_call_error=f"the tool call is not valid: {err}")
    return Message("assistant", "", tool_calls=(call,))
