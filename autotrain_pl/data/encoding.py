"""Rows to token ids through ``dataset.map``: validation, rendering, and over-long samples.

One map pass converts each row to a record (validating it, see ``data.validation``), renders it
with the chat format's renderer, and applies the over-long policy. Every row gets a ``status``;
the statuses are counted into :class:`DataStats` and the dropped rows are filtered out, so the
counts are exact and the result is cached by ``datasets`` like any other map.

Columns produced, by ``mode``:

- ``sft`` (and plain ``text`` rows): ``input_ids``, ``loss_weights`` (float), ``length``;
- ``preference``: ``prompt_ids``, ``chosen_ids``, ``chosen_weights``, ``rejected_ids``,
  ``rejected_weights``, ``length`` (prompt + longer completion). The prompt is rendered once;
  completions come from ``renderer.render_completion`` and are joined to it at collate time;
- ``unpaired_preference``: ``prompt_ids``, ``completion_ids``, ``completion_weights``, ``label``
  (True: desirable), ``length``;
- ``generate``: ``input_ids`` (the generation prompt), ``reference``, ``metadata`` (JSON),
  ``prompt_messages`` (JSON: the prompt as messages, for multi-turn RL environments), ``length``.

A ``tools`` column (TRL's: a list of JSON function schemas, or that list as a JSON string) goes to
the chat format with each row, as ``apply_chat_template(tools=...)`` takes it.

Position 0 never carries weight: nothing predicts the first token (``loss_weights[t]`` is the
weight of token ``t`` predicted from position ``t - 1``). Zeroing it here keeps weight sums equal
for padded and packed batches.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import datasets

from autotrain_pl.data.formats import Record, RowFormat, TextDocument, to_record
from autotrain_pl.data.sources import LoadedSource, RowLocator
from autotrain_pl.data.validation import (
    RowError,
    check_not_empty,
    located,
    option_name,
    require_assistant,
    shown,
)
from autotrain_pl.errors import AutotrainError
from autotrain_pl.rendering.messages import (
    Conversation,
    Message,
    Preference,
    TrainOnWhat,
    UnpairedPreference,
    as_messages,
)

log = logging.getLogger(__name__)

OVERLONG_POLICIES = ("truncate", "drop")
MODES = ("sft", "preference", "unpaired_preference", "generate")
_KEEP = ("ok", "truncated")
#: Status of an over-long sample dropped under ``drop`` that ``truncate`` would have kept.
_DROPPED_TRUNCATABLE = "dropped_overlong_truncatable"
#: Metadata keys that hold the expected answer of a prompt, in order of preference.
REFERENCE_KEYS = ("reference", "answer", "solution", "target")


@dataclass
class DataStats:
    """What happened to the rows of one split (logged and kept on the datamodule)."""

    rows_read: int = 0
    samples: int = 0
    truncated_overlong: int = 0
    dropped_overlong: int = 0
    dropped_truncated_untrainable: int = 0
    #: Of ``dropped_overlong``: samples that ``truncate`` would have kept with trained tokens.
    overlong_truncatable: int = 0
    dropped_empty: int = 0
    #: Preference rows dropped by ``bad_rows: drop``, by ``BAD_PAIR_REASONS`` status.
    dropped_empty_chosen: int = 0
    dropped_identical_pair: int = 0
    dropped_prompt_too_long: int = 0
    dropped_empty_completion: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def check_bad_row_policy(policy: str) -> None:
    if policy not in BAD_ROW_POLICIES:
        raise AutotrainError(
            f"{option_name('bad_rows')}={policy!r} is unknown; use drop (skip such rows, with a "
            "warning naming them) or error (stop at the first)"
        )


def check_overlong_policy(policy: str) -> None:
    if policy not in OVERLONG_POLICIES:
        raise AutotrainError(
            f"{option_name('overlong_policy')}={policy!r} is unknown; use one of: "
            f"{', '.join(OVERLONG_POLICIES)}"
        )


def _trained(weights: list[float]) -> bool:
    return any(w != 0 for w in weights[1:])


def _sft(ids: list[int], weights: list[float], max_length: int, policy: str) -> dict[str, Any]:
    weights = [0.0, *weights[1:]] if weights else weights
    status = "ok"
    if not _trained(weights):
        status = "dropped_empty"
    elif len(ids) > max_length:
        if policy == "drop":
            truncatable = _trained(weights[:max_length])
            status = _DROPPED_TRUNCATABLE if truncatable else "dropped_overlong"
        else:
            ids, weights = ids[:max_length], weights[:max_length]
            status = "truncated" if _trained(weights) else "dropped_truncated_untrainable"
    if status not in _KEEP:
        ids, weights = [], []
    return {"input_ids": ids, "loss_weights": weights, "length": len(ids), "status": status}


def encode_text(document: TextDocument, tokenizer, max_length: int, policy: str) -> dict[str, Any]:
    """BOS + text + EOS, every token weighted (no chat format)."""
    ids = list(tokenizer.encode(document.text, add_special_tokens=False))
    if tokenizer.bos_token_id is not None:
        ids = [tokenizer.bos_token_id, *ids]
    if tokenizer.eos_token_id is not None:
        ids = [*ids, tokenizer.eos_token_id]
    return _sft(ids, [1.0] * len(ids), max_length, policy)


def check_record(record: Record, mode: str) -> None:
    """The checks of the ``encode_*`` function of ``mode`` that need no tokenizer, so that every
    row can be checked before a model loads (``ChatDataModule.preflight``).

    Raises:
        RowError: naming the field; the caller adds the row's place.
    """
    if mode == "preference":
        if not isinstance(record, Preference):
            raise RowError("chosen", "preference training needs chosen and rejected columns")
        _margin(record)
    elif mode == "unpaired_preference":
        if not isinstance(record, UnpairedPreference):
            raise RowError("label", "unpaired feedback needs prompt, completion and label columns")
    elif mode == "generate":
        split_prompt(record)
        row_tools(record)
    elif isinstance(record, Conversation):
        require_assistant(record.messages, "messages")
        row_tools(record)


def check_rows(source: LoadedSource, spec: RowFormat, mode: str, batch_size: int = 1000) -> None:
    """Convert and check every row of ``source`` (``check_record``), without tokenizing.

    Raises:
        AutotrainError: the first bad row, naming its file and line (or row) and field.
    """
    index = 0
    for batch in source.dataset.iter(batch_size=batch_size):
        columns = list(batch)
        for values in zip(*batch.values(), strict=True):
            try:
                check_record(to_record(dict(zip(columns, values, strict=True)), spec), mode)
            except (RowError, AutotrainError) as err:
                raise located(source.locator.where(index), err) from None
            index += 1


def encode_sft(
    record: Record, renderer, train_on: TrainOnWhat, max_length: int, policy: str
) -> dict[str, Any]:
    if isinstance(record, TextDocument):
        return encode_text(record, renderer.tokenizer, max_length, policy)
    if isinstance(record, Preference):  # SFT on preference data trains on the chosen reply
        record = Conversation(record.prompt + record.chosen, record.metadata)
    check_record(record, "sft")
    ids, weights = renderer.build_supervised_example(record.messages, train_on,
                                                     tools=row_tools(record))
    return _sft(list(ids), list(weights), max_length, policy)


#: Preference rows that cannot teach a preference, by status, with what is wrong with them.
BAD_PAIR_REASONS = {
    "empty_chosen": "the chosen reply is empty",
    "identical_pair": "chosen and rejected are identical",
    "prompt_too_long": "the prompt leaves no room for a completion within max_length",
    "empty_completion": "the completion is empty",
}
BAD_ROW_POLICIES = ("drop", "error")


def _reply_text(messages: list) -> str:
    return "".join(m.content for m in messages if m.role == "assistant").strip()


def _margin(record: Preference) -> float | None:
    value = record.metadata.get("margin")
    if value is None or isinstance(value, str) and not value.strip():  # an empty CSV cell
        return None
    if isinstance(value, str):  # a CSV cell is text: "0.5" is a number there
        try:
            value = float(value)
        except ValueError:
            raise RowError("margin", f"must be a finite number, got {shown(value)}") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RowError("margin", f"must be a finite number, got {shown(value)}")
    return float(value)


def encode_preference(record: Record, renderer, max_length: int, policy: str) -> dict[str, Any]:
    """The prompt once, each completion's tokens and weights, and a status.

    Rows that cannot teach a preference get a ``BAD_PAIR_REASONS`` status (the caller drops or
    refuses them); an optional numeric ``margin`` column (reward models) is carried along.
    """
    check_record(record, "preference")
    prompt_ids = renderer.build_generation_prompt(record.prompt)
    chosen = renderer.render_completion(record.prompt, record.chosen)
    rejected = renderer.render_completion(record.prompt, record.rejected)
    out = {
        "prompt_ids": prompt_ids,
        "chosen_ids": chosen.input_ids,
        "chosen_weights": chosen.loss_weights,
        "rejected_ids": rejected.input_ids,
        "rejected_weights": rejected.loss_weights,
    }
    room = max_length - len(prompt_ids)
    status = "ok"
    if not _reply_text(record.chosen):
        status = "empty_chosen"
    elif list(chosen.input_ids) == list(rejected.input_ids):
        status = "identical_pair"
    elif room < 1:
        status = "prompt_too_long"
    elif not (any(chosen.loss_weights) and any(rejected.loss_weights)):
        status = "dropped_empty"
    elif max(len(chosen), len(rejected)) > room:
        if policy == "drop":
            truncatable = any(chosen.loss_weights[:room]) and any(rejected.loss_weights[:room])
            status = _DROPPED_TRUNCATABLE if truncatable else "dropped_overlong"
        else:
            for key in ("chosen", "rejected"):
                out[f"{key}_ids"] = out[f"{key}_ids"][:room]
                out[f"{key}_weights"] = out[f"{key}_weights"][:room]
            trained = any(out["chosen_weights"]) and any(out["rejected_weights"])
            status = "truncated" if trained else "dropped_truncated_untrainable"
    if status not in _KEEP:
        out = {key: [] for key in out}
    out["length"] = len(out["prompt_ids"]) + max(len(out["chosen_ids"]), len(out["rejected_ids"]))
    out["margin"] = _margin(record)
    out["status"] = status
    return out


def encode_unpaired(record: Record, renderer, max_length: int, policy: str) -> dict[str, Any]:
    """The prompt and its labelled completion, with the same bad-row statuses as pairs."""
    check_record(record, "unpaired_preference")
    prompt_ids = renderer.build_generation_prompt(record.prompt)
    completion = renderer.render_completion(record.prompt, record.completion)
    ids, weights = list(completion.input_ids), list(completion.loss_weights)
    room = max_length - len(prompt_ids)
    status = "ok"
    if not _reply_text(record.completion):
        status = "empty_completion"
    elif room < 1:
        status = "prompt_too_long"
    elif not any(weights):
        status = "dropped_empty"
    elif len(ids) > room:
        if policy == "drop":
            status = _DROPPED_TRUNCATABLE if any(weights[:room]) else "dropped_overlong"
        else:
            ids, weights = ids[:room], weights[:room]
            status = "truncated" if any(weights) else "dropped_truncated_untrainable"
    if status not in _KEEP:
        prompt_ids, ids, weights = [], [], []
    return {"prompt_ids": prompt_ids, "completion_ids": ids, "completion_weights": weights,
            "label": record.desirable, "length": len(prompt_ids) + len(ids), "status": status}


def row_tools(record: Record) -> list[dict[str, Any]] | None:
    """The row's ``tools`` column: JSON schemas of the functions its chat may call (None: none).

    A JSON string is read too: ``datasets`` stores tools of different shapes best as strings,
    since Arrow would merge their schemas into one struct with null fields.
    """
    tools = record.metadata.get("tools")
    if tools is None or isinstance(tools, str) and not tools.strip():  # an empty CSV cell
        return None
    if isinstance(tools, str):
        try:
            tools = json.loads(tools)
        except json.JSONDecodeError as err:
            raise RowError("tools", f"is not valid JSON ({err.msg} at character {err.pos})"
                           ) from None
    if not isinstance(tools, list) or not all(isinstance(tool, dict) for tool in tools):
        raise RowError("tools", 'must be a list of function schemas ({"type": "function", '
                                '"function": {"name": ..., "parameters": ...}})')
    return tools


def split_prompt(record: Record) -> tuple[list, str | None]:
    """Prompt messages and reference answer of a record, for generation and evaluation.

    The reference is a metadata column (``reference``, ``answer``, ...) or else the final
    assistant message, which is removed from the prompt together with the tool calls and tool
    results that led to it: the reply to a user's question is the whole agentic turn.
    """
    if isinstance(record, TextDocument):
        raise RowError("text", "plain text rows have no prompt to generate from; use chat rows")
    reference = next((record.metadata[k] for k in REFERENCE_KEYS if k in record.metadata), None)
    if isinstance(record, Preference):
        prompt, final = record.prompt, record.chosen[-1].content
    else:
        messages = record.messages
        last = messages[-1] if messages else None
        has_reply = last is not None and last.role == "assistant"
        prompt, final = (messages[:_reply_start(messages)], last.content) if has_reply else \
            (messages, None)
    if not prompt:
        raise RowError("messages", "has no prompt before the assistant reply; add a user message")
    return prompt, (final if reference is None else str(reference))


def _reply_start(messages: Sequence[Message]) -> int:
    """Index of the final reply's first message: the last assistant message, preceded by the tool
    calls and tool results that led to it."""
    start = len(messages) - 1
    while start > 0 and (messages[start - 1].role == "tool" or
                         (messages[start - 1].role == "assistant" and
                          messages[start - 1].tool_calls)):
        start -= 1
    return start


def encode_generation(record: Record, renderer, max_length: int, policy: str) -> dict[str, Any]:
    prompt, reference = split_prompt(record)
    ids = renderer.build_generation_prompt(prompt, tools=row_tools(record))
    status = "ok"
    if len(ids) > max_length:  # keep the end: the question sits at the end of a long prompt
        status = _DROPPED_TRUNCATABLE if policy == "drop" else "truncated"
        ids = [] if policy == "drop" else ids[-max_length:]
    metadata = json.dumps(record.metadata, default=str, ensure_ascii=False)
    return {
        "input_ids": ids,
        "reference": reference,
        "metadata": metadata,
        "prompt_messages": json.dumps([m.to_dict() for m in as_messages(prompt)],
                                      ensure_ascii=False),
        "length": len(ids),
        "status": status,
    }


def _encode_row(
    row: dict[str, Any],
    index: int,
    spec: RowFormat,
    locator: RowLocator,
    renderer,
    mode: str,
    train_on: str,
    max_length: int,
    policy: str,
) -> dict[str, Any]:
    try:
        record = to_record(row, spec)
        if mode == "preference":
            return encode_preference(record, renderer, max_length, policy)
        if mode == "unpaired_preference":
            return encode_unpaired(record, renderer, max_length, policy)
        if mode == "generate":
            return encode_generation(record, renderer, max_length, policy)
        return encode_sft(record, renderer, TrainOnWhat(train_on), max_length, policy)
    except (RowError, AutotrainError) as err:
        raise located(locator.where(index), err) from None


def encode_dataset(
    source: LoadedSource,
    spec: RowFormat,
    renderer,
    *,
    mode: str,
    train_on: str | TrainOnWhat = TrainOnWhat.LAST_ASSISTANT_MESSAGE,
    max_length: int = 1024,
    overlong_policy: str = "truncate",
    split_name: str = "train",
    bad_rows: str = "drop",
) -> tuple[datasets.Dataset, DataStats]:
    """Validate, render and length-filter a loaded source; returns the dataset and its counts.

    ``bad_rows`` is what happens to preference rows that cannot teach a preference
    (``BAD_PAIR_REASONS``): ``drop`` them with a warning that names where they are, or ``error``
    at the first. Malformed rows (wrong types, missing fields) are always an error.

    Raises:
        AutotrainError: a bad row (naming its place and field), or nothing left after filtering.
    """
    if mode not in MODES:
        raise ValueError(f"mode={mode!r}; expected one of {MODES}")
    check_overlong_policy(overlong_policy)
    check_bad_row_policy(bad_rows)
    train_on = TrainOnWhat.parse(train_on).value
    dataset = source.dataset
    encoded = dataset.map(
        _encode_row,
        with_indices=True,
        remove_columns=dataset.column_names,
        fn_kwargs={
            "spec": spec,
            "locator": source.locator,
            "renderer": renderer,
            "mode": mode,
            "train_on": train_on,
            "max_length": max_length,
            "policy": overlong_policy,
        },
        desc=f"Tokenizing {split_name}",
    )
    statuses = encoded["status"]
    counts = Counter(statuses)
    _report_bad_pairs(statuses, counts, source.locator, bad_rows)
    stats = DataStats(
        rows_read=len(dataset),
        samples=counts["ok"] + counts["truncated"],
        truncated_overlong=counts["truncated"],
        dropped_overlong=counts["dropped_overlong"] + counts[_DROPPED_TRUNCATABLE],
        dropped_truncated_untrainable=counts["dropped_truncated_untrainable"],
        dropped_empty=counts["dropped_empty"],
        overlong_truncatable=counts[_DROPPED_TRUNCATABLE],
        **{f"dropped_{status}": counts[status] for status in BAD_PAIR_REASONS},
    )
    if stats.samples < len(dataset):
        encoded = encoded.filter(
            lambda statuses: [s in _KEEP for s in statuses],
            input_columns="status",
            batched=True,
            desc=f"Dropping {split_name} rows",
        )
    encoded = encoded.remove_columns("status")
    report_stats(stats, split_name, source.locator.name, max_length, overlong_policy)
    check_not_empty(
        len(encoded),
        source.locator.name,
        _nonzero_drops(stats),
        max_length=max_length,
        overlong_policy=overlong_policy,
        truncatable=stats.overlong_truncatable,
    )
    return encoded, stats


def _report_bad_pairs(statuses: list[str], counts: Counter, locator: RowLocator,
                      policy: str, listed: int = 3) -> None:
    """Refuse (``error``) or name and count (``drop``) the rows with a ``BAD_PAIR_REASONS``
    status, so the user can find and fix them."""
    parts = []
    for status, reason in BAD_PAIR_REASONS.items():
        if not counts[status]:
            continue
        rows = [i for i, s in enumerate(statuses) if s == status]
        if policy == "error":
            raise AutotrainError(
                f"{locator.where(rows[0])}: {reason} ({counts[status]} such rows in "
                f"{locator.name}); fix or remove them, or set {option_name('bad_rows')}=drop to "
                "skip them"
            )
        places = ", ".join(locator.where(i) for i in rows[:listed])
        more = f" and {len(rows) - listed} more" if len(rows) > listed else ""
        parts.append(f"{len(rows)} where {reason} ({places}{more})")
    if parts:
        log.warning("%s: dropped %s; fix or remove those rows (%s=error stops at them)",
                    locator.name, "; ".join(parts), option_name("bad_rows"))


def _nonzero_drops(stats: DataStats) -> dict[str, int]:
    fields = stats.as_dict()
    return {k: v for k, v in fields.items() if k.startswith(("rows", "dropped")) and v}


def report_stats(
    stats: DataStats, split_name: str, source: str, max_length: int, policy: str
) -> None:
    """Log the counts; warn when samples were dropped, since that changes what is trained.

    When nothing is left, the error that follows (``check_not_empty``) says why: no warning.
    """
    log.info("%s (%s): %s", split_name, source, stats.as_dict())
    if stats.samples == 0:
        return
    if stats.dropped_truncated_untrainable:
        log.warning(
            "%s: dropped %d samples because truncation to %s=%d would cut away all of "
            "their trained tokens; raise it to keep them",
            source,
            stats.dropped_truncated_untrainable,
            option_name("max_length"),
            max_length,
        )
    if stats.dropped_overlong:
        log.warning(
            "%s: dropped %d samples longer than %s=%d (%s=%s)",
            source,
            stats.dropped_overlong,
            option_name("max_length"),
            max_length,
            option_name("overlong_policy"),
            policy,
        )
    if stats.dropped_empty:
        log.warning(
            "%s: dropped %d samples with no trained tokens (check %s and the weights)",
            source,
            stats.dropped_empty,
            option_name("train_on"),
        )
