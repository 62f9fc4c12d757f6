"""Checks on rows before training, with errors that name the file, line or row, and field.

A bad row found after an hour of training wastes the hour; a bad row reported as a stack trace
wastes the afternoon. Every check here raises :class:`RowError` (field + what to fix); the caller
adds the place with :func:`located`, so the user sees one line such as::

    data/train.jsonl line 7, field 'messages[2].role': unknown role 'bot'; use one of: ...
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autotrain_pl.errors import AutotrainError
from autotrain_pl.rendering.messages import KNOWN_ROLES, Message


class RowError(Exception):
    """A problem in one field of one row; :func:`located` turns it into an ``AutotrainError``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"field '{field}': {message}")
        self.field = field
        self.message = message


def located(where: str, err: Exception) -> AutotrainError:
    """An ``AutotrainError`` that starts with the row's place (``file line N``)."""
    text = str(err).replace("\n", " ")
    return AutotrainError(f"{where}, {text}" if isinstance(err, RowError) else f"{where}: {text}")


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def as_text(value: Any, field: str, allow_empty: bool = True) -> str:
    """A string field; lists, numbers and nulls are rejected rather than silently stringified."""
    if not isinstance(value, str):
        raise RowError(
            field, f"must be a string, got {_type_name(value)} ({value!r:.60}); fix the value"
        )
    if not allow_empty and not value.strip():
        raise RowError(field, "is empty; fill it in or remove the row")
    return value


def as_message(item: Any, field: str, role: str | None = None) -> Message:
    """One ``{role, content[, weight]}`` mapping as a validated ``Message``."""
    if not isinstance(item, Mapping):
        raise RowError(field, f"must be a {{role, content}} object, got {_type_name(item)}")
    role = item.get("role") if role is None else role
    if role not in KNOWN_ROLES:
        raise RowError(
            f"{field}.role",
            f"unknown role {role!r}; use one of: {', '.join(KNOWN_ROLES)} "
            "(rename it in the data, or pick the matching row_format)",
        )
    content = item.get("content")
    if not isinstance(content, str):
        raise RowError(
            f"{field}.content",
            f"content must be a string, got {_type_name(content)} ({content!r:.60}); "
            "write the message text as one string",
        )
    if role == "assistant" and not content.strip():
        raise RowError(
            f"{field}.content", "empty assistant message; write the reply or drop the row"
        )
    weight = item.get("weight")
    if weight is not None and (isinstance(weight, bool) or not isinstance(weight, int | float)):
        raise RowError(f"{field}.weight", f"weight must be a number, got {_type_name(weight)}")
    return Message(role=role, content=content, weight=None if weight is None else float(weight))


def as_messages(value: Any, field: str) -> list[Message]:
    """A non-empty list of messages, each validated."""
    if not isinstance(value, list | tuple) or not value:
        raise RowError(
            field,
            f"must be a non-empty list of {{role, content}} messages, got {_type_name(value)}",
        )
    return [as_message(item, f"{field}[{i}]") for i, item in enumerate(value)]


def as_turns(value: Any, field: str, role: str) -> list[Message]:
    """A string (one ``role`` message) or a message list: prompt/completion columns allow both."""
    if isinstance(value, str):
        return [as_message({"role": role, "content": value}, field)]
    return as_messages(value, field)


def require_assistant(messages: list[Message], field: str) -> None:
    """Supervised rows must contain a reply to learn from."""
    if not any(m.role == "assistant" for m in messages):
        raise RowError(field, "has no assistant message to train on; add the reply or drop the row")


def check_not_empty(count: int, source: str, stats: Mapping[str, int] | None = None) -> None:
    """An empty dataset after filtering is an error, not a zero-step training run."""
    if count > 0:
        return
    detail = ", ".join(f"{k} {v}" for k, v in (stats or {}).items() if v)
    raise AutotrainError(
        f"{source}: no samples left after filtering ({detail or 'the source has no rows'}); "
        "add rows, raise max_length, or use overlong_policy=truncate"
    )
