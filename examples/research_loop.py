"""A research loop written only with ``TrainingClient``: SFT on generated arithmetic chats.

The loop is yours: it renders the data, picks the learning rate of every step and decides when
to evaluate; the client does forward/backward with exact token normalization, AdamW steps,
sampling and checkpoints. Calls are pipelined: the next ``forward_backward_async`` is queued
before the previous step's result is read, and the client runs everything in submission order.

    python examples/research_loop.py               # builtin:tiny, about 20 s on a 2-core CPU
    python examples/research_loop.py --steps 200 --model builtin:mini
"""

from __future__ import annotations

import argparse
import math
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from autotrain_pl.client import AdamParams, TrainingClient  # noqa: E402
from autotrain_pl.data import SFTCollator, arithmetic, resolve_pad_token_id  # noqa: E402
from autotrain_pl.generation import SamplingConfig  # noqa: E402
from autotrain_pl.rendering import Message, get_renderer  # noqa: E402


def render_batches(rows: list[dict], renderer, collate: SFTCollator, batch_size: int) -> list[dict]:
    """Chats -> (token ids, loss weights) -> padded batches; only the answer is trained."""
    examples = []
    for row in rows:
        messages = [Message.from_dict(m) for m in row["messages"]]
        input_ids, loss_weights = renderer.build_supervised_example(messages)
        examples.append({"input_ids": input_ids, "loss_weights": loss_weights})
    return [collate(examples[i : i + batch_size]) for i in range(0, len(examples), batch_size)]


def learning_rate(step: int, steps: int, peak: float, warmup: int) -> float:
    """Linear warmup, then cosine decay to 10% of the peak: the loop owns the schedule."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def main(steps: int = 50, batch_size: int = 32, lr: float = 3e-3, model: str = "builtin:tiny",
         seed: int = 0, log_every: int = 10) -> list[float]:
    """Train for ``steps`` optimizer steps; return the per-step training losses."""
    client = TrainingClient(model, renderer="chatml", seed=seed)
    renderer = get_renderer("chatml", client.tokenizer)
    collate = SFTCollator(resolve_pad_token_id(client.tokenizer))
    rows = arithmetic(n=steps * batch_size, seed=seed, n_valid=batch_size)
    batches = render_batches(rows, renderer, collate, batch_size)
    held_out = arithmetic(n=steps * batch_size, seed=seed, n_valid=batch_size, split="valid")
    valid_batch = render_batches(held_out, renderer, collate, batch_size)[0]

    losses: list[float] = []
    start = time.perf_counter()
    pending = client.forward_backward_async(batches[0])
    for step in range(steps):
        adam = AdamParams(lr=learning_rate(step, steps, lr, warmup=max(1, steps // 10)),
                          weight_decay=0.01, grad_clip_norm=1.0)
        step_future = client.optim_step_async(adam)
        following = client.forward_backward_async(batches[step + 1]) if step + 1 < steps else None
        losses.append(pending.result().loss)  # the next batch is already queued behind the step
        stats = step_future.result()
        if step % log_every == 0 or step == steps - 1:
            print(f"step {step:4d}  loss {losses[-1]:.3f}  lr {stats.lr:.2e}  "
                  f"grad_norm {stats.grad_norm:.2f}  {time.perf_counter() - start:.1f}s")
        pending = following

    valid_loss = client.forward(valid_batch).loss
    question = held_out[0]["messages"][:-1]
    (completion,) = client.sample(question, SamplingConfig(max_new_tokens=8, temperature=0.0))
    print(f"held-out loss {valid_loss:.3f}; {question[-1]['content']} -> {completion.text!r} "
          f"(reference {held_out[0]['reference']})")
    client.close()
    return losses


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--model", default="builtin:tiny")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(args.steps, args.batch_size, args.lr, args.model, args.seed)
