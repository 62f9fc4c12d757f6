"""Distillation data: one response, scored behind a teacher prompt and behind a student prompt.

Alignment. Each example renders its prompt twice, with ``build_generation_prompt``: once through
the teacher's template (e.g. a long instruction) and once through the student's (e.g. the bare
input). The response is rendered ONCE with ``render_completion`` and appended to both, so the
teacher row and the student row carry the same response tokens with the same loss weights, in the
same order. ``select_trained_tokens`` on either side therefore returns the same labels row by row,
and the ``[N, V]`` logits of both sides line up whatever the prompt lengths. Prompts get weight 0.
The response is each row's final assistant message (earlier turns are prompt), so the data's
``train_on`` and ``token_weights`` do not apply here.

``DistillationEncoding`` is how ``ChatDataModule`` encodes these pairs: a distilling objective
returns it from ``example_encoding()`` (``data.example_encoding``), so a distillation config keeps
the standard ``data`` section and the rows are encoded once, as pairs.
"""

from __future__ import annotations

import hashlib
import logging
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from autotrain_pl.data import SFTCollator
from autotrain_pl.data.encoding import DataStats, report_stats
from autotrain_pl.data.example_encoding import ExampleEncoding
from autotrain_pl.data.formats import Record, TextDocument, to_record
from autotrain_pl.data.reading import source_format
from autotrain_pl.data.validation import RowError, check_not_empty, located
from autotrain_pl.errors import AutotrainError
from autotrain_pl.rendering.messages import Conversation, Message, Preference

log = logging.getLogger(__name__)

INPUT_PLACEHOLDER = "{input}"
_KEEP = ("ok", "truncated")
_STATUS_COUNTERS = {
    "truncated": "truncated_overlong",
    "dropped_overlong": "dropped_overlong",
    "dropped_truncated_untrainable": "dropped_truncated_untrainable",
    "dropped_empty": "dropped_empty",
}

#: ``(teacher prompts, split name, renderer) -> one reply per prompt`` (``None``: failed).
Responder = Callable[[list[list[Message]], str, Any], list[Message | None]]


def check_template(name: str, template: str) -> None:
    if not isinstance(template, str) or INPUT_PLACEHOLDER not in template:
        raise AutotrainError(
            f"model.{name}={template!r} must contain the {INPUT_PLACEHOLDER} placeholder, e.g. "
            f"'Answer briefly.\\n\\n{INPUT_PLACEHOLDER}'"
        )


def apply_prompt(prompt: Sequence[Message], template: str, system_prompt: str | None) -> list[Message]:
    """The prompt one side sees: ``template`` fills the last user message; ``system_prompt``
    replaces the leading system message (``None``: keep the data's, ``""``: remove it)."""
    messages = list(prompt)
    if template != INPUT_PLACEHOLDER:
        users = [i for i, m in enumerate(messages) if m.role == "user"]
        if not users:
            raise RowError("messages", "has no user message for the prompt template's {input}")
        last = messages[users[-1]]
        messages[users[-1]] = Message(last.role, template.replace(INPUT_PLACEHOLDER, last.content),
                                      last.weight)
    if system_prompt is not None:
        if messages and messages[0].role == "system":
            messages = messages[1:]
        messages = ([Message("system", system_prompt)] if system_prompt else []) + messages
    return messages


@dataclass(frozen=True)
class DistillationPrompts:
    """How the teacher and the student see each input."""

    teacher_template: str = INPUT_PLACEHOLDER
    student_template: str = INPUT_PLACEHOLDER
    teacher_system_prompt: str | None = None
    student_system_prompt: str | None = None

    def teacher(self, prompt: Sequence[Message]) -> list[Message]:
        return apply_prompt(prompt, self.teacher_template, self.teacher_system_prompt)

    def student(self, prompt: Sequence[Message]) -> list[Message]:
        return apply_prompt(prompt, self.student_template, self.student_system_prompt)


def split_reply(record: Record) -> tuple[list[Message], Message | None]:
    """Prompt messages and the final assistant reply (``None`` if the row ends with a prompt)."""
    if isinstance(record, TextDocument):
        raise RowError("text", "distillation needs chat rows (messages or prompt/completion)")
    if isinstance(record, Preference):
        record = Conversation(record.prompt + record.chosen, record.metadata)
    messages = record.messages
    if messages and messages[-1].role == "assistant":
        return messages[:-1], messages[-1]
    return list(messages), None


def encode_pair(
    prompt: Sequence[Message],
    reply: Message | None,
    renderer,
    prompts: DistillationPrompts,
    max_length: int,
    policy: str,
    allow_prompt_only: bool = False,
) -> dict[str, Any]:
    """Student and teacher rows sharing one rendered response (see module docstring).

    ``max_length`` bounds both rows: the response is cut to fit after the longer prompt.
    """
    student_messages = prompts.student(prompt)
    student_prompt = list(renderer.build_generation_prompt(student_messages))
    teacher_prompt = list(renderer.build_generation_prompt(prompts.teacher(prompt)))
    response_ids: list[int] = []
    response_weights: list[float] = []
    if reply is not None:
        response = renderer.render_completion(student_messages, [reply])
        response_ids, response_weights = list(response.input_ids), list(response.loss_weights)
    room = max_length - max(len(student_prompt), len(teacher_prompt))
    status = "ok"
    if reply is None and allow_prompt_only:
        status = "ok" if room > 0 else ("dropped_overlong" if policy == "drop" else
                                       "dropped_truncated_untrainable")
    elif not any(response_weights):
        status = "dropped_empty"
    elif len(response_ids) > room:
        if policy == "drop":
            status = "dropped_overlong"
        else:
            response_ids = response_ids[: max(room, 0)]
            response_weights = response_weights[: max(room, 0)]
            status = "truncated" if any(response_weights) else "dropped_truncated_untrainable"
    if status not in _KEEP:
        return {"status": status}
    return {
        "input_ids": student_prompt + response_ids,
        "loss_weights": [0.0] * len(student_prompt) + response_weights,
        "teacher_input_ids": teacher_prompt + response_ids,
        "teacher_loss_weights": [0.0] * len(teacher_prompt) + response_weights,
        "prompt_length": len(student_prompt),
        "teacher_prompt_length": len(teacher_prompt),
        "length": max(len(student_prompt), len(teacher_prompt)) + len(response_ids),
        "status": status,
    }


def dataset_fingerprint(dataset) -> str:
    """SHA-256 of the teacher rows of a dataset, in order: names its teacher-logit cache."""
    digest = hashlib.sha256()
    columns = dataset.select_columns(["teacher_input_ids", "teacher_loss_weights"])
    for chunk in columns.iter(batch_size=1024):
        for ids, weights in zip(chunk["teacher_input_ids"], chunk["teacher_loss_weights"],
                                strict=True):
            digest.update(array("i", ids).tobytes())
            digest.update(array("f", weights).tobytes())
            digest.update(b"|")
    return digest.hexdigest()


class DistillationCollator:
    """Right-padded student and teacher halves of a distillation batch.

    Keys: ``input_ids``/``attention_mask``/``loss_weights`` (student), the same with a
    ``teacher_`` prefix, ``prompt_length``/``teacher_prompt_length`` (on-policy sampling needs the
    prompts), ``has_response``, and when present ``example_ids`` plus ``cache_key`` (the
    dataset fingerprint that indexes the teacher-logit cache).
    """

    def __init__(self, pad_token_id: int, pad_to_multiple_of: int | None = None) -> None:
        self.pad = SFTCollator(pad_token_id, pad_to_multiple_of)

    def __call__(self, features: Sequence[dict[str, Any]]) -> dict[str, Any]:
        import torch

        batch: dict[str, Any] = dict(self.pad(features))
        teacher = self.pad([
            {"input_ids": f["teacher_input_ids"], "loss_weights": f["teacher_loss_weights"]}
            for f in features
        ])
        batch.update({f"teacher_{key}": value for key, value in teacher.items()})
        for key in ("prompt_length", "teacher_prompt_length"):
            batch[key] = torch.tensor([f[key] for f in features], dtype=torch.long)
        batch["has_response"] = torch.tensor(
            [any(w != 0 for w in f["loss_weights"]) for f in features], dtype=torch.bool
        )
        if "example_id" in features[0]:
            batch["example_ids"] = torch.tensor([f["example_id"] for f in features])
            keys = {f["cache_key"] for f in features}
            if len(keys) == 1:
                batch["cache_key"] = keys.pop()
        return batch


class DistillationEncoding(ExampleEncoding):
    """Teacher/student pairs for ``ChatDataModule`` (see module docstring).

    Args:
        prompts: the teacher and student templates.
        responder: generates replies from the teacher prompts (``response_source: teacher``);
            ``None`` takes each row's final assistant message.
        allow_prompt_only: keep rows without a reply (on-policy: the student samples one).
        teacher_when_no_replies: ``response_source: auto``: call ``responder`` only for a
            split whose rows hold no reply at all (prompts only); a split with replies trains
            on them. The choice is logged per split and kept in ``response_sources``.

    Every encoded split gets an ``example_id`` column and a ``cache_key`` column holding the
    fingerprint of its source's encoded rows; ``encoded`` maps each fingerprint to those rows
    (a ``valid_fraction`` split shares its source's), which lay out the teacher-logit cache.
    """

    def __init__(self, prompts: DistillationPrompts, responder: Responder | None = None,
                 allow_prompt_only: bool = False, teacher_when_no_replies: bool = False) -> None:
        if teacher_when_no_replies and responder is None:
            raise ValueError("teacher_when_no_replies needs a responder")
        self.prompts = prompts
        self.responder = responder
        self.allow_prompt_only = allow_prompt_only
        self.teacher_when_no_replies = teacher_when_no_replies
        self.encoded: dict[str, Any] = {}
        #: Split name -> ``teacher`` or ``dataset``: where its replies came from.
        self.response_sources: dict[str, str] = {}

    def _key(self) -> tuple:
        return (self.prompts, self.responder, self.allow_prompt_only,
                self.teacher_when_no_replies)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DistillationEncoding) and self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]

    def collator(self, datamodule):
        return DistillationCollator(datamodule.pad_token_id, datamodule.pad_to_multiple_of)

    def _teacher_writes(self, replies: list[Message | None], split: str, where: str) -> bool:
        """Whether the teacher writes this split's replies (``auto``: only if none has one)."""
        if self.responder is None:
            self.response_sources[split] = "dataset"
            return False
        if not self.teacher_when_no_replies:
            self.response_sources[split] = "teacher"
            return True
        teacher = all(reply is None for reply in replies)
        self.response_sources[split] = "teacher" if teacher else "dataset"
        if teacher:
            log.info("response_source=auto: %s (%s) holds prompts only, so the teacher writes "
                     "the replies (response_source=teacher)", where, split)
        else:
            log.info("response_source=auto: %s (%s) holds replies; training on them "
                     "(response_source=dataset)", where, split)
        return teacher

    def encode(self, datamodule, source, split: str):
        import datasets

        row_format = source_format(source, datamodule.row_format)
        prompts, replies = [], []
        for index, row in enumerate(source.dataset):
            try:
                prompt, reply = split_reply(to_record(row, row_format))
            except RowError as err:
                raise located(source.locator.where(index), err) from None
            prompts.append(prompt)
            replies.append(reply)
        if self._teacher_writes(replies, split, source.locator.name):
            teacher_prompts = []
            for index, prompt in enumerate(prompts):
                try:
                    teacher_prompts.append(self.prompts.teacher(prompt))
                except RowError as err:
                    raise located(source.locator.where(index), err) from None
            replies = self.responder(teacher_prompts, split, datamodule.renderer)
        elif not self.allow_prompt_only and any(r is None for r in replies):
            index = replies.index(None)
            mixed = " (response_source: auto lets the teacher write replies only when no row " \
                "has one)" if self.teacher_when_no_replies else ""
            raise located(source.locator.where(index), RowError(
                "messages", "has no final assistant reply; add it, or use response_source: "
                f"teacher (the teacher writes replies) or on_policy{mixed}"))
        rows, stats = [], DataStats(rows_read=len(prompts))
        for index, (prompt, reply) in enumerate(zip(prompts, replies, strict=True)):
            try:
                row = encode_pair(prompt, reply, datamodule.renderer, self.prompts,
                                  datamodule.max_length, datamodule.overlong_policy,
                                  self.allow_prompt_only)
            except (RowError, AutotrainError) as err:
                raise located(source.locator.where(index), err) from None
            status = row.pop("status")
            if status in _KEEP:
                rows.append(row)
            if status != "ok":
                counter = _STATUS_COUNTERS[status]
                setattr(stats, counter, getattr(stats, counter) + 1)
        stats.samples = len(rows)
        report_stats(stats, split, source.locator.name, datamodule.max_length,
                     datamodule.overlong_policy)
        check_not_empty(len(rows), source.locator.name)
        datamodule.stats[split] = stats
        dataset = datasets.Dataset.from_list(rows)
        fingerprint = dataset_fingerprint(dataset)
        dataset = dataset.add_column("example_id", list(range(len(dataset))))
        dataset = dataset.add_column("cache_key", [fingerprint] * len(dataset))
        self.encoded[fingerprint] = dataset
        return dataset
