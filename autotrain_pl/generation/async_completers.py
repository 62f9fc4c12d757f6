"""Async completers: many concurrent ``await completer(...)`` calls share batched ``generate`` calls.

An RL rollout or an evaluation written as ``asyncio.gather(*(completer(p, s) for p in prompts))``
gets the throughput of batched generation without batching by hand (see ``batcher.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

from autotrain_pl.generation.batcher import RequestBatcher
from autotrain_pl.generation.message_completer import MessageCompleter, MessagesLike
from autotrain_pl.generation.sampling import SamplingConfig
from autotrain_pl.generation.token_completer import TokenCompleter, TokenCompletion
from autotrain_pl.rendering.messages import Message


class AsyncTokenCompleter:
    """``await completer(prompt_ids, sampling)`` -> ``num_return_sequences`` completions.

    Args:
        completer: the synchronous completer that runs each batch.
        max_batch_size: most prompts per ``generate`` call.
        max_wait_ms: how long a request may wait for others to join its batch.
    """

    def __init__(
        self, completer: TokenCompleter, *, max_batch_size: int = 32, max_wait_ms: float = 5.0
    ) -> None:
        self.completer = completer
        self.batcher: RequestBatcher[list[int], list[TokenCompletion]] = RequestBatcher(
            self._run_batch, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms
        )

    async def __call__(
        self, prompt_ids: Sequence[int], sampling: SamplingConfig | None = None
    ) -> list[TokenCompletion]:
        sampling = sampling or SamplingConfig()
        return await self.batcher.submit(list(prompt_ids), sampling)

    @property
    def num_batches(self) -> int:
        """How many batched calls have run (each is one ``generate`` per ``max_batch_size``)."""
        return self.batcher.num_batches

    def _run_batch(
        self, prompts: list[list[int]], sampling: SamplingConfig
    ) -> list[list[TokenCompletion]]:
        flat = self.completer.batch_complete(prompts, sampling, batch_size=len(prompts))
        n = sampling.num_return_sequences
        return [flat[i * n : (i + 1) * n] for i in range(len(prompts))]


class AsyncMessageCompleter:
    """``await completer(messages, sampling)`` -> the assistant ``Message``.

    Rendering and parsing happen in the caller's coroutine, so ``strict`` errors belong to the
    request that caused them; only the token generation is batched.
    """

    def __init__(
        self, completer: MessageCompleter, *, max_batch_size: int = 32, max_wait_ms: float = 5.0
    ) -> None:
        self.completer = completer
        self.token_completer = AsyncTokenCompleter(
            completer.token_completer, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms
        )

    async def __call__(
        self, messages: MessagesLike, sampling: SamplingConfig | None = None, strict: bool = False
    ) -> Message:
        sampling = sampling or SamplingConfig()
        replies = await self.complete_many(messages, sampling, strict=strict)
        return replies[0]

    async def complete_many(
        self, messages: MessagesLike, sampling: SamplingConfig | None = None, strict: bool = False
    ) -> list[Message]:
        """All ``num_return_sequences`` replies to one conversation."""
        prompt = self.completer.build_prompt(messages)
        completions = await self.token_completer(prompt, sampling)
        return [self.completer.to_message(c, strict=strict) for c in completions]

    @property
    def num_batches(self) -> int:
        return self.token_completer.num_batches
