"""Stop conditions: where a completion ends and why.

Three kinds of stop, two reasons:

- end sequences (the model's EOS and the chat format's end-of-turn) end with ``"eos"``;
- the user's ``SamplingConfig.stop`` token ids and strings end with ``"stop"``;
- reaching ``max_new_tokens`` ends with ``"length"``.

Single-token stops go to ``generate(eos_token_id=...)``, which handles them natively. Multi-token
sequences and strings need ``StopConditionCriteria``; it looks only at *generated* tokens, unlike
transformers' ``StopStringCriteria``, which also matches across the prompt boundary (a prompt
ending in ``"\\n"`` plus one generated ``"\\n"`` would fire a ``"\\n\\n"`` stop).

``finish_row`` then cuts each row once, at its first stop. The returned tokens end with the
token(s) that completed the stop, because those were sampled and carry a logprob that RL losses
need; the returned text excludes the stop, cut exactly once at its first occurrence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from transformers import StoppingCriteria

StopReason = Literal["stop", "eos", "length"]


@dataclass(frozen=True)
class StopConditions:
    """All stops of one request.

    Attributes:
        end_sequences: EOS and end-of-turn token sequences (reason ``"eos"``).
        stop_sequences: the user's token-id stops (reason ``"stop"``).
        stop_strings: the user's string stops (reason ``"stop"``).
    """

    end_sequences: tuple[tuple[int, ...], ...] = ()
    stop_sequences: tuple[tuple[int, ...], ...] = ()
    stop_strings: tuple[str, ...] = ()
    _single_end: frozenset[int] = field(init=False, repr=False, compare=False)
    _single_stop: frozenset[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_single_end",
                           frozenset(s[0] for s in self.end_sequences if len(s) == 1))
        object.__setattr__(self, "_single_stop",
                           frozenset(s[0] for s in self.stop_sequences if len(s) == 1))

    def single_token_ids(self) -> list[int]:
        """Ids that end a row on their own: what ``generate(eos_token_id=...)`` takes."""
        return sorted(self._single_end | self._single_stop)

    def multi_token_sequences(self) -> list[tuple[int, ...]]:
        return [s for s in (*self.end_sequences, *self.stop_sequences) if len(s) > 1]

    def needs_criteria(self) -> bool:
        return bool(self.stop_strings or self.multi_token_sequences())

    def match_at(self, tokens: Sequence[int], index: int) -> tuple[StopReason, int] | None:
        """The stop that ends exactly at ``tokens[index]``: (reason, its length in tokens)."""
        token = tokens[index]
        if token in self._single_end:
            return "eos", 1
        if token in self._single_stop:
            return "stop", 1
        for reason, sequences in (("eos", self.end_sequences), ("stop", self.stop_sequences)):
            for sequence in sequences:
                size = len(sequence)
                if size > 1 and sequence[-1] == token and index + 1 >= size and (
                    tuple(tokens[index + 1 - size : index + 1]) == sequence
                ):
                    return reason, size  # type: ignore[return-value]
        return None


class StopConditionCriteria(StoppingCriteria):
    """Ends a row when its generated tokens end with a multi-token stop or contain a stop string.

    Records, per row, how many tokens had been generated when a stop string first matched, so
    ``finish_row`` cuts exactly where generation stopped.
    """

    def __init__(self, conditions: StopConditions, tokenizer, prompt_length: int) -> None:
        self.sequences = conditions.multi_token_sequences()
        self.strings = conditions.stop_strings
        self.tokenizer = tokenizer
        self.prompt_length = prompt_length
        longest_string = max((len(s) for s in self.strings), default=0)
        # Each token decodes to at least one character; +2 covers a partial first character.
        self.window = max(max((len(s) for s in self.sequences), default=0), longest_string + 2)
        self.string_stop_at: dict[int, int] = {}

    def __call__(self, input_ids: torch.LongTensor, scores=None, **kwargs) -> torch.BoolTensor:
        generated = input_ids[:, self.prompt_length :]
        length = generated.shape[1]
        tails = generated[:, -self.window :].tolist()
        texts = self.tokenizer.batch_decode(tails) if self.strings else None
        done = [False] * len(tails)
        for row, tail in enumerate(tails):
            if any(tuple(tail[-len(s) :]) == s for s in self.sequences if len(tail) >= len(s)):
                done[row] = True
            elif texts is not None and any(s in texts[row] for s in self.strings):
                done[row] = True
                self.string_stop_at.setdefault(row, length)
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


@dataclass
class FinishedRow:
    """One row cut at its stop: ``tokens[:end]`` were generated, ``text`` excludes the stop."""

    end: int
    stop_reason: StopReason
    text: str


def finish_row(
    tokens: Sequence[int],
    conditions: StopConditions,
    tokenizer,
    string_stop_at: int | None = None,
) -> FinishedRow:
    """Cut one generated row at its first stop (see module docstring for what is kept)."""
    token_end: tuple[int, StopReason, int] | None = None
    for index in range(len(tokens)):
        match = conditions.match_at(tokens, index)
        if match is not None:
            token_end = (index + 1, match[0], match[1])
            break
    limit = token_end[0] if token_end else len(tokens)
    if conditions.stop_strings:
        string_end = string_stop_at if string_stop_at is not None and string_stop_at <= limit \
            else _first_string_stop(tokens[:limit], conditions.stop_strings, tokenizer)
        if string_end is not None and (token_end is None or string_end < token_end[0]):
            text = _decode(tokenizer, tokens[:string_end])
            cut = _first_occurrence(text, conditions.stop_strings)
            return FinishedRow(string_end, "stop", text if cut is None else text[:cut])
    if token_end is not None:
        end, reason, size = token_end
        return FinishedRow(end, reason, _decode(tokenizer, tokens[: end - size]))
    return FinishedRow(len(tokens), "length", _decode(tokenizer, tokens))


def _decode(tokenizer, tokens: Sequence[int]) -> str:
    return tokenizer.decode(list(tokens), skip_special_tokens=False) if tokens else ""


def _first_occurrence(text: str, strings: Sequence[str]) -> int | None:
    found = [i for i in (text.find(s) for s in strings) if i >= 0]
    return min(found) if found else None


def _first_string_stop(tokens: Sequence[int], strings: Sequence[str], tokenizer) -> int | None:
    """Fewest leading tokens whose text contains a stop string (None if none does)."""
    if _first_occurrence(_decode(tokenizer, tokens), strings) is None:
        return None
    low, high = 1, len(tokens)
    while low < high:  # containing a stop is monotone in the prefix length
        middle = (low + high) // 2
        if _first_occurrence(_decode(tokenizer, tokens[:middle]), strings) is None:
            low = middle + 1
        else:
            high = middle
    return low
