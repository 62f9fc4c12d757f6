"""Checks on rows before training, with errors that name the file, line or row, and field.

A bad row found after an hour of training wastes the hour; a bad row reported as a stack trace
wastes the afternoon. Every check here raises :class:`RowError` (field + what to fix); the caller
adds the place with :func:`located`, so the user sees one line such as::

    data/train.jsonl line 7, field 'messages[2].role': unknown role 'bot'; use one of: ...
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any

from autotrain_pl.errors import AutotrainError
from autotrain_pl.rendering.messages import KNOWN_ROLES, Message

#: Options that errors raised under ``autotrain_pl.data`` may name, by their Python keyword.
DATA_OPTIONS = (
    "data_path", "valid_path", "test_path", "predict_path", "split", "subset", "row_format",
    "column_mapping", "max_length", "overlong_policy", "bad_rows", "train_on", "token_weights",
)  # fmt: skip

_SPELLING: ContextVar[Mapping[str, str]] = ContextVar(
    "autotrain_option_spelling", default=MappingProxyType({})
)


def data_option_spelling(prefix: str) -> dict[str, str]:
    """``{option: prefix + option}`` for every data option, e.g. ``prefix="data.init_args."``."""
    return {name: f"{prefix}{name}" for name in DATA_OPTIONS}


@contextmanager
def spell_options(spelling: Mapping[str, str]) -> Iterator[None]:
    """Name options in error hints as the running command types them.

    Shared code writes hints with the Python keyword (``row_format``); a command wraps its work
    in this context so the hint names what its user can type there, e.g.
    ``{"row_format": "--row_format"}`` for ``aitrain eval`` or
    ``{"row_format": "data.init_args.row_format"}`` for ``aitrain fit``. Spellings that start with
    ``--`` are command-line flags: :func:`option_setting` quotes their values for a shell. An
    empty spelling marks an option the command does not have; hints leave it out
    (:func:`option_available`).
    """
    token = _SPELLING.set(MappingProxyType({**_SPELLING.get(), **spelling}))
    try:
        yield
    finally:
        _SPELLING.reset(token)


def option_name(name: str) -> str:
    """How the user types option ``name`` in the running command (default: ``name`` itself)."""
    return _SPELLING.get().get(name, name)


def option_available(name: str) -> bool:
    """Whether the running command has option ``name`` (it does unless spelled ``""``)."""
    return _SPELLING.get().get(name, name) != ""


def option_is_spelled(name: str) -> bool:
    """Whether the running command spells ``name`` itself (False: plain Python use)."""
    return name in _SPELLING.get()


def option_setting(name: str, value: Any) -> str:
    """A hint that sets option ``name`` to ``value``, as the running command writes it.

    ``row_format=messages`` from Python, ``--row_format=messages`` on ``aitrain eval``,
    ``--metric_kwargs='{"bertscore": {...}}'`` for a mapping on the command line.
    """
    spelled = option_name(name)
    if isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False)
    if spelled.startswith("--") and not isinstance(value, str | int | float):
        text = shlex.quote(text)
    return f"{spelled}={text}"


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


def shown(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters: a value from a huge line must not make the
    one-line error huge too."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def as_text(value: Any, field: str, allow_empty: bool = True) -> str:
    """A string field; lists, numbers and nulls are rejected rather than silently stringified."""
    if not isinstance(value, str):
        raise RowError(
            field, f"must be a string, got {_type_name(value)} ({shown(value)}); fix the value"
        )
    if not allow_empty and not value.strip():
        raise RowError(field, "is empty; fill it in or remove the row")
    return value


def as_message(item: Any, field: str, role: str | None = None) -> Message:
    """One ``{role, content[, weight, tool_calls, name, tool_call_id]}`` mapping as a ``Message``.

    An assistant turn that calls tools may have empty or null content.
    """
    if not isinstance(item, Mapping):
        raise RowError(field, f"must be a {{role, content}} object, got {_type_name(item)}")
    role = item.get("role") if role is None else role
    if role not in KNOWN_ROLES:
        raise RowError(
            f"{field}.role",
            f"unknown role {shown(role)}; use one of: {', '.join(KNOWN_ROLES)} "
            f"(rename it in the data, or pick the matching {option_name('row_format')})",
        )
    tool_calls = item.get("tool_calls") or ()
    if not isinstance(tool_calls, list | tuple):
        raise RowError(f"{field}.tool_calls", f"must be a list, got {_type_name(tool_calls)}")
    content = item.get("content")
    if content is None and tool_calls:
        content = ""
    if not isinstance(content, str):
        raise RowError(
            f"{field}.content",
            f"content must be a string, got {_type_name(content)} ({shown(content)}); "
            "write the message text as one string",
        )
    if role == "assistant" and not content.strip() and not tool_calls:
        raise RowError(
            f"{field}.content", "empty assistant message; write the reply or drop the row"
        )
    weight = item.get("weight")
    if weight is not None and (isinstance(weight, bool) or not isinstance(weight, int | float)):
        raise RowError(f"{field}.weight", f"weight must be a number, got {_type_name(weight)}")
    if weight is not None and not (math.isfinite(weight) and weight >= 0):
        raise RowError(f"{field}.weight", f"weight must be a finite number >= 0, got {weight!r}")
    for key in ("name", "tool_call_id"):
        if item.get(key) is not None and not isinstance(item[key], str):
            raise RowError(f"{field}.{key}", f"must be a string, got {_type_name(item[key])}")
    try:
        return Message(
            role=role,
            content=content,
            weight=None if weight is None else float(weight),
            tool_calls=tuple(tool_calls),
            name=item.get("name"),
            tool_call_id=item.get("tool_call_id"),
        )
    except AutotrainError as err:
        raise RowError(f"{field}.tool_calls", str(err)) from None


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


def check_not_empty(
    count: int,
    source: str,
    stats: Mapping[str, int] | None = None,
    *,
    max_length: int | None = None,
    overlong_policy: str | None = None,
    truncatable: int = 0,
) -> None:
    """An empty dataset after filtering is an error, not a zero-step training run.

    The hint follows from what removed the samples under the policy in use: rows dropped for
    length (``overlong_policy=drop``) suggest a larger ``max_length`` or truncation; rows whose
    every trained token was truncated away (``truncate``) can only be kept by a larger
    ``max_length``; rows without trained tokens point at ``train_on`` and the weights.
    ``truncatable`` counts the dropped over-long rows that ``truncate`` would have kept.
    """
    if count > 0:
        return
    stats = dict(stats or {})
    detail = ", ".join(f"{k} {v}" for k, v in stats.items() if v)
    length = option_name("max_length")
    now = f" (now {max_length})" if max_length is not None else ""
    hints = []
    if stats.get("dropped_overlong"):
        keep = (
            f", or set {option_setting('overlong_policy', 'truncate')} to keep {truncatable} "
            "of them cut to that length"
            if truncatable and overlong_policy != "truncate" and option_available("overlong_policy")
            else ""
        )
        hints.append(f"raise {length}{now} above the sample lengths{keep}")
    if stats.get("dropped_truncated_untrainable"):
        hints.append(
            f"raise {length}{now}: cutting samples to it removes every token they train on "
            "(the reply comes after the prompt)"
        )
    if stats.get("dropped_empty"):
        checks = [option_name(o) for o in ("train_on", "token_weights") if option_available(o)]
        checks.append("the messages' weight fields")
        hints.append(
            f"give samples tokens to train on: check {', '.join(checks[:-1])}"
            f"{' and ' if len(checks) > 1 else ''}{checks[-1]}"
        )
    if not hints:
        hints.append("add rows to it")
    raise AutotrainError(
        f"{source}: no samples left after filtering ({detail or 'the source has no rows'}); "
        + "; ".join(hints)
    )
