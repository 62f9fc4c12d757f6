import asyncio
import threading
from contextlib import contextmanager

import pytest
import torch

from autotrain_pl.generation import (
    AsyncMessageCompleter,
    AsyncTokenCompleter,
    MessageCompleter,
    RequestBatcher,
    SamplingConfig,
    TokenCompleter,
)
from autotrain_pl.rendering.messages import Message

GREEDY = SamplingConfig(max_new_tokens=6, temperature=0)
PROMPTS = ["Hi", "The quick brown fox", "12+34=", "tea or coffee", "a", "Once upon a time there",
           "zebra", "Python is"]


@pytest.fixture
def generate_calls(model, monkeypatch):
    """Records each ``model.generate`` call: its prompts (padding removed) and its thread."""
    calls: list[dict] = []
    original = model.generate

    def recording(*args, **kwargs):
        ids, mask = kwargs["input_ids"], kwargs["attention_mask"]
        prompts = [row[keep.bool()].tolist() for row, keep in zip(ids, mask, strict=True)]
        calls.append({"prompts": prompts, "thread": threading.get_ident()})
        return original(*args, **kwargs)

    monkeypatch.setattr(model, "generate", recording)
    return calls


def batch_sizes(calls: list[dict]) -> list[int]:
    return [len(call["prompts"]) for call in calls]


# max_wait_ms=0: a batch takes the requests already queued when the batcher's worker runs, and
# asyncio.gather starts every request (each queues itself) before that worker gets its first
# turn, so which requests share a batch follows from the scheduling order, not from the clock.


def test_concurrent_requests_share_one_generate_call(model, tokenizer, renderer, generate_calls):
    sync = TokenCompleter(model, tokenizer, renderer)
    prompts = [tokenizer.encode(p, add_special_tokens=False) for p in PROMPTS]
    expected = [sync(p, GREEDY)[0] for p in prompts]
    # Every prompt gets a different completion, so a result handed to the wrong caller shows.
    assert len({tuple(e.tokens) for e in expected}) == len(expected)
    generate_calls.clear()
    completer = AsyncTokenCompleter(sync, max_batch_size=8, max_wait_ms=0)

    async def main():
        return await asyncio.gather(*(completer(p, GREEDY) for p in prompts))

    results = asyncio.run(main())
    assert batch_sizes(generate_calls) == [8] and completer.num_batches == 1
    assert sorted(generate_calls[0]["prompts"]) == sorted(prompts)
    for [got], want in zip(results, expected, strict=True):
        assert got.tokens == want.tokens and got.text == want.text
        assert got.stop_reason == want.stop_reason


def test_max_batch_size_splits_the_queue(model, tokenizer, renderer, generate_calls):
    completer = AsyncTokenCompleter(TokenCompleter(model, tokenizer, renderer),
                                    max_batch_size=3, max_wait_ms=0)
    prompts = [tokenizer.encode(p, add_special_tokens=False) for p in PROMPTS]

    async def main():
        return await asyncio.gather(*(completer(p, GREEDY) for p in prompts))

    asyncio.run(main())
    assert batch_sizes(generate_calls) == [3, 3, 2]
    # First come, first served: batches hold the requests in the order they were made.
    # (each generate call sees its prompts sorted by length, hence the sorting here).
    assert [sorted(call["prompts"]) for call in generate_calls] == [
        sorted(prompts[:3]), sorted(prompts[3:6]), sorted(prompts[6:])]


def test_a_late_request_joins_a_waiting_batch(model, tokenizer, renderer, generate_calls):
    # The first request waits for company (up to a minute, far more than this needs); the second
    # arrives after the worker has started waiting and fills the batch, which then runs at once.
    completer = AsyncTokenCompleter(TokenCompleter(model, tokenizer, renderer),
                                    max_batch_size=2, max_wait_ms=60_000)
    first, second = (tokenizer.encode(p, add_special_tokens=False) for p in PROMPTS[:2])

    async def main():
        early = asyncio.create_task(completer(first, GREEDY))
        for _ in range(5):
            await asyncio.sleep(0)  # let the worker start and wait on the lone request
        assert not early.done() and not generate_calls
        late = asyncio.create_task(completer(second, GREEDY))
        return await asyncio.wait_for(asyncio.gather(early, late), timeout=120)

    asyncio.run(main())
    assert batch_sizes(generate_calls) == [2]
    assert sorted(generate_calls[0]["prompts"]) == sorted([first, second])


def test_different_configs_go_to_different_batches(model, tokenizer, renderer, generate_calls):
    completer = AsyncTokenCompleter(TokenCompleter(model, tokenizer, renderer), max_wait_ms=0)
    other = SamplingConfig(max_new_tokens=3, temperature=0)
    prompts = [tokenizer.encode(p, add_special_tokens=False) for p in PROMPTS[:6]]

    async def main():
        jobs = [completer(p, GREEDY if i % 2 else other) for i, p in enumerate(prompts)]
        return await asyncio.gather(*jobs)

    results = asyncio.run(main())
    # The key of the oldest request (prompt 0, ``other``) goes first.
    assert [sorted(call["prompts"]) for call in generate_calls] == [
        sorted(prompts[0::2]), sorted(prompts[1::2])]
    assert [len(r[0].tokens) for r in results] == [3, 6, 3, 6, 3, 6]


def test_generate_runs_off_the_event_loop(model, tokenizer, renderer, generate_calls):
    # generate blocks until a coroutine on the loop has run while it was generating; if it ran
    # on the loop's thread that coroutine could not run and the wait would give up (False).
    completer = AsyncTokenCompleter(TokenCompleter(model, tokenizer, renderer), max_wait_ms=0)
    generating, loop_ran = threading.Event(), threading.Event()
    waited: list[bool] = []
    original = model.generate

    def blocking(*args, **kwargs):
        generating.set()
        waited.append(loop_ran.wait(timeout=30))
        return original(*args, **kwargs)

    model.generate = blocking  # generate_calls' monkeypatch restores the original afterwards

    async def main():
        task = asyncio.create_task(completer(tokenizer.encode("x"), GREEDY))
        while not generating.is_set() and not task.done():
            await asyncio.sleep(0.001)
        loop_ran.set()
        await task
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert waited == [True]
    assert len(generate_calls) == 1 and generate_calls[0]["thread"] != loop_thread


def test_async_message_completer_maps_replies_to_their_chats(model, tokenizer, renderer,
                                                             generate_calls):
    # Each row's reply repeats the last token of its user message, so every chat gets its own.
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    chats = [[Message("user", p)] for p in PROMPTS]
    sync = MessageCompleter(model, tokenizer, renderer)
    with echo_last_user_token(model, end):
        expected = [sync(c, GREEDY) for c in chats]
        generate_calls.clear()
        completer = AsyncMessageCompleter(sync, max_batch_size=4, max_wait_ms=0)

        async def main():
            return await asyncio.gather(*(completer(c, GREEDY) for c in chats))

        results = asyncio.run(main())
    for chat, reply in zip(chats, expected, strict=True):  # by hand: the echoed token, 6 times
        last = tokenizer.encode(chat[0].content, add_special_tokens=False)[-1]
        assert reply.content == tokenizer.decode([last] * 6).strip()
    assert len({reply.content for reply in expected}) == len(chats)
    assert results == expected
    assert batch_sizes(generate_calls) == [4, 4]


@contextmanager
def echo_last_user_token(model, end_id: int):
    """Biases each row's logits toward the token before the row's first ``end_id``."""
    targets: list[torch.Tensor] = []

    def remember(module, args, kwargs):
        ids = kwargs.get("input_ids")
        if ids is not None and ids.shape[1] > 1:  # the prefill sees the whole prompt
            first_end = (ids == end_id).int().argmax(dim=1)
            targets[:] = [ids[torch.arange(ids.shape[0]), first_end - 1]]

    def bias(module, args, output):
        output = output.clone()
        output[torch.arange(output.shape[0]), :, targets[0]] += 1e4
        return output

    handles = [model.register_forward_pre_hook(remember, with_kwargs=True),
               model.lm_head.register_forward_hook(bias)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def test_batch_errors_reach_every_caller():
    def broken(items, key):
        raise ValueError("boom")

    batcher = RequestBatcher(broken, max_batch_size=4, max_wait_ms=5)

    async def main():
        return await asyncio.gather(*(batcher.submit(i, "k") for i in range(3)),
                                    return_exceptions=True)

    results = asyncio.run(main())
    assert all(isinstance(r, ValueError) for r in results)
    assert batcher.num_batches == 1


def test_batcher_works_across_event_loops():
    batcher = RequestBatcher(lambda items, key: [i * 2 for i in items], max_wait_ms=1)
    for _ in range(2):
        async def main():
            return await asyncio.gather(*(batcher.submit(i, None) for i in range(5)))

        assert asyncio.run(main()) == [0, 2, 4, 6, 8]
