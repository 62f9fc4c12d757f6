"""Streaming machinery: yield text chunks while one ``generate`` call is still running.

This module knows nothing about completers. ``TokenCompleter.stream_tokens`` hands
``stream_generation`` a function that runs one ``generate`` call with a given streamer and
stopping criterion; that function runs in a worker thread and pushes tokens into a
``TextIteratorStreamer``, and the caller's generator pulls decoded chunks from its queue. Two
details keep the streamed text equal to the final ``TokenCompletion.text``:

- the token that ends the reply (EOS, end of turn, a stop id) is dropped before decoding;
- text that could be the start of a stop string is held back until it is known not to be one, so
  a stop string is never shown, not even in part.

The generator's return value (``StopIteration.value``, or ``x = yield from ...``) is what the
function returned (the finished completion). Closing the generator early stops generation.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Sequence
from typing import TypeVar

import torch
from transformers import StoppingCriteria, TextIteratorStreamer

Result = TypeVar("Result")


def stream_generation(
    generate: Callable[[TextIteratorStreamer, StoppingCriteria], Result],
    tokenizer,
    *,
    end_token_ids: Sequence[int] = (),
    stop_strings: Sequence[str] = (),
) -> Generator[str, None, Result]:
    """Run ``generate(streamer, cancel_criteria)`` in a worker thread and yield its text.

    Args:
        generate: runs one single-sequence ``generate`` call that feeds ``streamer`` and checks
            ``cancel_criteria``; its return value becomes the generator's return value.
        tokenizer: decodes the streamed tokens.
        end_token_ids: tokens that end the reply; never decoded.
        stop_strings: text that ends the reply; never shown, not even in part.
    """
    streamer = _EndDroppingStreamer(tokenizer, end_token_ids)
    cancel = _CancelCriteria()
    holdback = StopStringHoldback(stop_strings)
    outcome: dict = {}

    def work() -> None:
        try:
            outcome["result"] = generate(streamer, cancel)
        except BaseException as error:  # re-raised in the caller's thread below
            outcome["error"] = error
            streamer.end()

    thread = threading.Thread(target=work, name="autotrain-stream", daemon=True)
    thread.start()
    try:
        for chunk in streamer:
            yield from holdback.feed(chunk)
        tail = holdback.flush()
        if tail:
            yield tail
    finally:
        cancel.event.set()  # no-op when generation already ended; stops it if we were closed
        thread.join()  # the streamer's queue is unbounded, so the worker never blocks on us
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


class StopStringHoldback:
    """Passes text through, holding back any suffix that could begin a stop string."""

    def __init__(self, stop_strings: Sequence[str]) -> None:
        self.stop_strings = [s for s in stop_strings if s]
        self.buffer = ""
        self.stopped = False

    def feed(self, chunk: str) -> list[str]:
        if self.stopped:
            return []
        self.buffer += chunk
        found = [i for i in (self.buffer.find(s) for s in self.stop_strings) if i >= 0]
        if found:
            self.stopped = True
            out, self.buffer = self.buffer[: min(found)], ""
            return [out] if out else []
        keep = self._partial_stop_length()
        out = self.buffer[: len(self.buffer) - keep]
        self.buffer = self.buffer[len(self.buffer) - keep :]
        return [out] if out else []

    def flush(self) -> str:
        out, self.buffer = ("" if self.stopped else self.buffer), ""
        return out

    def _partial_stop_length(self) -> int:
        """Length of the longest buffer suffix that is a proper prefix of a stop string."""
        best = 0
        for stop in self.stop_strings:
            for size in range(min(len(stop) - 1, len(self.buffer)), best, -1):
                if self.buffer.endswith(stop[:size]):
                    best = size
                    break
        return best


class _EndDroppingStreamer(TextIteratorStreamer):
    """A ``TextIteratorStreamer`` that never decodes the token that ended the reply."""

    def __init__(self, tokenizer, end_token_ids: Sequence[int]) -> None:
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=False)
        self.end_token_ids = torch.tensor(sorted(end_token_ids), dtype=torch.long)

    def put(self, value: torch.Tensor) -> None:
        if not self.next_tokens_are_prompt and self.end_token_ids.numel():
            value = value.reshape(-1).cpu()
            value = value[~torch.isin(value, self.end_token_ids)]
            if value.numel() == 0:
                return
        super().put(value)


class _CancelCriteria(StoppingCriteria):
    """Stops every row once ``event`` is set (the consumer closed the stream)."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def __call__(self, input_ids: torch.LongTensor, scores=None, **kwargs) -> torch.BoolTensor:
        stop = self.event.is_set()
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)
