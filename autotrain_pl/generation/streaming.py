"""Streaming: yield text chunks while ``generate`` is still running.

``generate`` runs in a worker thread and pushes tokens into a ``TextIteratorStreamer``; the
caller's generator pulls decoded chunks from its queue. Two details keep the streamed text equal
to the final ``TokenCompletion.text``:

- the token that ends the reply (EOS, end of turn, a stop id) is dropped before decoding;
- text that could be the start of a stop string is held back until it is known not to be one, so
  a stop string is never shown, not even in part.

The generator's return value (``StopIteration.value``, or ``x = yield from ...``) is the finished
completion, which ``ChatSession.stream`` records. Closing the generator early stops generation.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Sequence

import torch
from transformers import StoppingCriteria, TextIteratorStreamer

from autotrain_pl.errors import AutotrainError
from autotrain_pl.generation.message_completer import MessageCompleter
from autotrain_pl.generation.sampling import SamplingConfig
from autotrain_pl.generation.token_completer import TokenCompleter, TokenCompletion, _seeded
from autotrain_pl.rendering.messages import Message


def stream_tokens(
    completer: TokenCompleter, prompt_ids: Sequence[int], sampling: SamplingConfig | None = None
) -> Generator[str, None, TokenCompletion]:
    """Yield the completion of one token prompt as text chunks; return the ``TokenCompletion``."""
    sampling = sampling or SamplingConfig()
    if sampling.num_return_sequences != 1 or sampling.is_beam_search:
        raise AutotrainError(
            "streaming produces one sequence; set sampling.num_return_sequences=1 and num_beams=1"
        )
    conditions = completer.stop_conditions(sampling)
    streamer = _EndDroppingStreamer(completer.tokenizer, conditions.single_token_ids())
    cancel = _CancelCriteria()
    holdback = StopStringHoldback(
        list(conditions.stop_strings)
        + [completer.tokenizer.decode(list(s)) for s in conditions.multi_token_sequences()]
    )
    outcome: dict = {}

    def work() -> None:
        try:
            with _seeded(sampling.seed, completer.device):
                outcome["completion"] = completer.generate_batch(
                    [list(prompt_ids)], sampling, streamer=streamer, stopping_criteria=[cancel]
                )[0]
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
    return outcome["completion"]


def stream_messages(
    completer: MessageCompleter,
    messages: Sequence[Message | dict],
    sampling: SamplingConfig | None = None,
    strict: bool = False,
) -> Generator[str, None, Message]:
    """Yield an assistant reply as text chunks; return the parsed ``Message``."""
    prompt = completer.build_prompt(messages)
    completion = yield from stream_tokens(completer.token_completer, prompt, sampling)
    return completer.to_message(completion, strict=strict)


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
