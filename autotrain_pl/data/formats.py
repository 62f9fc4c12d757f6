"""Row formats: which columns a row has, and how it becomes a ``Conversation`` or ``Preference``.

Supported formats (``row_format``), auto-detected from the column names:

- ``messages``: ``messages`` = OpenAI-style ``[{role, content}, ...]``;
- ``prompt_completion``: ``prompt`` + ``completion``, each a string or a message list;
- ``text``: plain ``text``, trained on every token without a chat format;
- ``alpaca``: ``instruction`` + ``output`` (+ optional ``input``, ``system``);
- ``sharegpt``: ``conversations`` = ``[{from, value}, ...]`` (human/gpt/system);
- ``preference``: ``chosen`` + ``rejected`` (+ ``prompt``), strings or message lists;
- ``unpaired_preference``: ``prompt`` + ``completion`` + a boolean ``label`` (desirable or not),
  the unpaired feedback KTO trains on.

When the columns fit several formats, the one that uses the most of them wins
(``prompt``/``completion``/``label`` is unpaired feedback, not a prompt-completion chat).

Columns a format does not consume (``reference``, ``answer``, ``id``, ...) go to ``metadata``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from autotrain_pl.data.validation import (
    RowError,
    as_message,
    as_messages,
    as_text,
    as_turns,
    option_name,
    option_setting,
    shown,
)
from autotrain_pl.errors import AutotrainError
from autotrain_pl.rendering.messages import Conversation, Message, Preference, UnpairedPreference


@dataclass(frozen=True)
class RowFormat:
    """Columns a format needs and may use; everything else becomes metadata."""

    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    kind: str = "sft"

    def describe(self) -> str:
        extra = f" (+{', '.join(self.optional)})" if self.optional else ""
        return f"{self.name}: {'+'.join(self.required)}{extra}"


ROW_FORMATS: dict[str, RowFormat] = {
    f.name: f
    for f in (
        RowFormat("messages", ("messages",)),
        RowFormat("prompt_completion", ("prompt", "completion")),
        RowFormat("text", ("text",), kind="text"),
        RowFormat("alpaca", ("instruction", "output"), ("input", "system")),
        RowFormat("sharegpt", ("conversations",), ("system",)),
        RowFormat("preference", ("chosen", "rejected"), ("prompt",), kind="preference"),
        RowFormat("unpaired_preference", ("prompt", "completion", "label"),
                  kind="unpaired_preference"),
    )
}

#: ShareGPT speaker names -> roles.
SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "model": "assistant",
    "system": "system",
    "tool": "tool",
    "function": "tool",
    "observation": "tool",
}


@dataclass
class TextDocument:
    """A plain-text row: trained on all tokens (BOS + text + EOS), no chat format."""

    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


Record = Conversation | Preference | UnpairedPreference | TextDocument


_EXAMPLE_MAPPING = {"question": "prompt", "answer": "completion"}


def _expected() -> str:
    return "; ".join(f.describe() for f in ROW_FORMATS.values())


def _column_list(columns: Sequence[str], most: int = 20) -> str:
    """The column names for an error, each cut short, at most ``most`` of them."""
    names = [shown(str(c), 40)[1:-1] for c in list(columns)[:most]]
    return ", ".join(names) + (", ..." if len(columns) > most else "") or "none"


def detect_row_format(columns: Sequence[str], source: str, row_format: str = "auto") -> RowFormat:
    """The row format of a dataset with ``columns``: the override, or the single one that fits.

    Raises:
        AutotrainError: unknown override, missing columns, or several formats fit.
    """
    found = _column_list(columns)
    mapping, chosen = option_name("column_mapping"), option_name("row_format")
    if row_format != "auto":
        name = row_format.replace("-", "_")
        if name not in ROW_FORMATS:
            raise AutotrainError(
                f"{chosen}={row_format!r} is unknown; use auto or one of: {', '.join(ROW_FORMATS)}"
            )
        spec = ROW_FORMATS[name]
        missing = [c for c in spec.required if c not in columns]
        if missing:
            raise AutotrainError(
                f"{source}: {chosen}={name!r} needs column(s) {', '.join(missing)}, found: "
                f"{found}; rename columns with {mapping}"
            )
        return spec
    matches = [f for f in ROW_FORMATS.values() if all(c in columns for c in f.required)]
    matches = [f for f in matches  # the most specific: a format that uses more columns wins
               if not any(set(f.required) < set(g.required) for g in matches)]
    if not matches:
        raise AutotrainError(
            f"{source}: cannot tell the row format from the columns (found: {found}); expected "
            f"one of [{_expected()}]; rename columns with {mapping} (e.g. "
            f"{option_setting('column_mapping', _EXAMPLE_MAPPING)}) or set {chosen}"
        )
    if len(matches) > 1:
        names = ", ".join(f.name for f in matches)
        raise AutotrainError(
            f"{source}: the columns (found: {found}) fit several row formats ({names}); "
            f"set {chosen} to the one you mean, or rename the other columns away with {mapping}"
        )
    return matches[0]


def to_record(row: Mapping[str, Any], spec: RowFormat) -> Record:
    """Convert one row to a validated record; raises :class:`RowError` naming the bad field."""
    used = set(spec.required) | set(spec.optional)
    metadata = {k: v for k, v in row.items() if k not in used}
    if spec.name == "messages":
        return Conversation(as_messages(row.get("messages"), "messages"), metadata)
    if spec.name == "unpaired_preference":
        return _unpaired(row, metadata)
    if spec.name == "prompt_completion":
        prompt = as_turns(row.get("prompt"), "prompt", role="user")
        completion = as_turns(row.get("completion"), "completion", role="assistant")
        return Conversation(prompt + completion, metadata)
    if spec.name == "text":
        return TextDocument(as_text(row.get("text"), "text", allow_empty=False), metadata)
    if spec.name == "alpaca":
        return Conversation(_alpaca_messages(row), metadata)
    if spec.name == "sharegpt":
        return Conversation(_sharegpt_messages(row), metadata)
    if spec.name == "preference":
        return _preference(row, metadata)
    raise AssertionError(f"unhandled row format {spec.name}")


def _system(row: Mapping[str, Any]) -> list[Message]:
    system = row.get("system")
    if system is None or system == "":
        return []
    return [as_message({"role": "system", "content": system}, "system")]


def _alpaca_messages(row: Mapping[str, Any]) -> list[Message]:
    instruction = as_text(row.get("instruction"), "instruction", allow_empty=False)
    extra = row.get("input")
    if extra is not None and as_text(extra, "input").strip():
        instruction = f"{instruction}\n\n{extra}"
    reply = as_message({"role": "assistant", "content": row.get("output")}, "output")
    return [*_system(row), Message("user", instruction), reply]


def _sharegpt_messages(row: Mapping[str, Any]) -> list[Message]:
    turns = row.get("conversations")
    if not isinstance(turns, list | tuple) or not turns:
        raise RowError("conversations", "must be a non-empty list of {from, value} turns")
    messages = _system(row)
    for i, turn in enumerate(turns):
        name = f"conversations[{i}]"
        if not isinstance(turn, Mapping):
            raise RowError(name, "must be a {from, value} object")
        speaker = turn.get("from")
        if speaker not in SHAREGPT_ROLES:
            raise RowError(
                f"{name}.from",
                f"unknown speaker {shown(speaker)}; use one of: {', '.join(SHAREGPT_ROLES)}",
            )
        messages.append(
            as_message(
                {"content": turn.get("value"), "weight": turn.get("weight")},
                name,
                role=SHAREGPT_ROLES[speaker],
            )
        )
    return messages


_HH_TURN = re.compile(r"(?:^|\n\n)(Human|Assistant): ")
_HH_ROLES = {"Human": "user", "Assistant": "assistant"}


def hh_transcript(text: str) -> list[Message] | None:
    """Messages of an Anthropic HH-RLHF transcript (``"\\n\\nHuman: ...\\n\\nAssistant: ..."``);
    None for any other string."""
    pieces = _HH_TURN.split(text)
    if len(pieces) < 3 or pieces[0].strip():
        return None
    return [Message(_HH_ROLES[speaker], content.strip())
            for speaker, content in zip(pieces[1::2], pieces[2::2], strict=True)]


def _completion_turns(value: Any, field: str, whole_conversation: bool) -> list[Message]:
    if isinstance(value, str) and not value.strip():  # a bad pair, dropped or refused later
        return [Message("assistant", value)]
    if whole_conversation and isinstance(value, str):
        messages = hh_transcript(value)
        if messages is not None:
            return messages
    return as_turns(value, field, role="assistant")


_LABELS = {True: True, False: False, "true": True, "false": False}  # 1 == True, 0 == False


def _unpaired(row: Mapping[str, Any], metadata: dict[str, Any]) -> UnpairedPreference:
    label = row.get("label")
    key = label.strip().lower() if isinstance(label, str) else label
    if isinstance(key, float) or key not in _LABELS:
        raise RowError("label", f"must be true (desirable) or false (undesirable), got {shown(label)}")
    prompt = as_turns(row.get("prompt"), "prompt", role="user")
    completion = _completion_turns(row.get("completion"), "completion", False)
    return UnpairedPreference(prompt, completion, _LABELS[key], metadata)


def _preference(row: Mapping[str, Any], metadata: dict[str, Any]) -> Preference:
    """A pair from a prompt and two completions, or from two whole conversations (message lists
    or HH-RLHF transcripts) whose shared leading messages are the prompt."""
    prompt_value = row.get("prompt")
    prompt = [] if prompt_value is None else as_turns(prompt_value, "prompt", role="user")
    chosen = _completion_turns(row.get("chosen"), "chosen", not prompt)
    rejected = _completion_turns(row.get("rejected"), "rejected", not prompt)
    # Conversational pairs often repeat the prompt inside each completion: strip it.
    if prompt and chosen[: len(prompt)] == prompt and rejected[: len(prompt)] == prompt:
        chosen, rejected = chosen[len(prompt) :], rejected[len(prompt) :]
    if not prompt:
        shared = 0
        while shared < min(len(chosen), len(rejected)) - 1 and chosen[shared] == rejected[shared]:
            shared += 1
        prompt, chosen, rejected = chosen[:shared], chosen[shared:], rejected[shared:]
    for name, completion in (("chosen", chosen), ("rejected", rejected)):
        if not any(m.role == "assistant" for m in completion):
            raise RowError(name, "has no assistant message after the prompt; add the reply")
    if not prompt:
        raise RowError("prompt", "is missing; add a prompt column or shared leading messages")
    return Preference(prompt, chosen, rejected, metadata)
