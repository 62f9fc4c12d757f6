import asyncio

import pytest

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
def count_generate(model, monkeypatch):
    calls = []
    original = model.generate

    def counting(*args, **kwargs):
        calls.append(kwargs["input_ids"].shape[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(model, "generate", counting)
    return calls


def test_concurrent_requests_share_generate_calls(model, tokenizer, renderer, count_generate):
    sync = TokenCompleter(model, tokenizer, renderer)
    prompts = [tokenizer.encode(p, add_special_tokens=False) for p in PROMPTS]
    expected = [sync(p, GREEDY)[0] for p in prompts]
    count_generate.clear()
    completer = AsyncTokenCompleter(sync, max_batch_size=8, max_wait_ms=20)

    async def main():
        return await asyncio.gather(*(completer(p, GREEDY) for p in prompts))

    results = asyncio.run(main())
    assert len(count_generate) < 8
    assert count_generate == [8]
    for [got], want in zip(results, expected, strict=True):
        assert got.tokens == want.tokens and got.text == want.text
        assert got.stop_reason == want.stop_reason


def test_different_configs_go_to_different_batches(model, tokenizer, renderer, count_generate):
    completer = AsyncTokenCompleter(TokenCompleter(model, tokenizer, renderer), max_wait_ms=20)
    other = SamplingConfig(max_new_tokens=3, temperature=0)
    prompts = [tokenizer.encode(p, add_special_tokens=False) for p in PROMPTS[:6]]

    async def main():
        jobs = [completer(p, GREEDY if i % 2 else other) for i, p in enumerate(prompts)]
        return await asyncio.gather(*jobs)

    results = asyncio.run(main())
    assert sorted(count_generate) == [3, 3]
    assert [len(r[0].tokens) for r in results] == [3, 6, 3, 6, 3, 6]


def test_event_loop_stays_free_while_generating(model, tokenizer, renderer):
    completer = AsyncTokenCompleter(TokenCompleter(model, tokenizer, renderer), max_wait_ms=0)
    ticks = []

    async def ticker(stop: asyncio.Event):
        while not stop.is_set():
            ticks.append(1)
            await asyncio.sleep(0.001)

    async def main():
        stop = asyncio.Event()
        task = asyncio.create_task(ticker(stop))
        await completer(tokenizer.encode("x"), SamplingConfig(max_new_tokens=60, temperature=0))
        stop.set()
        await task

    asyncio.run(main())
    assert len(ticks) > 3


def test_async_message_completer_matches_sync(model, tokenizer, renderer, count_generate):
    sync = MessageCompleter(model, tokenizer, renderer)
    chats = [[Message("user", p)] for p in PROMPTS]
    expected = [sync(c, GREEDY) for c in chats]
    count_generate.clear()
    completer = AsyncMessageCompleter(sync, max_batch_size=4, max_wait_ms=20)

    async def main():
        return await asyncio.gather(*(completer(c, GREEDY) for c in chats))

    assert asyncio.run(main()) == expected
    assert count_generate == [4, 4]


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
