"""TrainingClient step overhead: ``forward_backward`` + ``optim_step`` against hand-written PyTorch.

Peers, each on its own copy of the same model and the same batch, in one process run:

1. ``handwritten``: the minimal loop a researcher would write: full forward, weighted
   cross-entropy over all positions (mean over loss weight), backward, ``torch.optim.AdamW``
   step, ``zero_grad``. This is the peer of the ``ours_vs_handwritten`` ratio (target >= 0.95,
   i.e. our step costs at most 1.05x).
2. ``handwritten_same_math``: the same loop, but with the client's own forward
   (``forward_trained_logits``: LM head and last layer only at trained positions), so its ratio
   isolates the client's pure overhead (Fabric, bookkeeping, exact normalization, the
   grad-norm/non-finite check, logprob outputs).

Steps are timed one at a time, rotating the order of the peers every repeat, after warmup; the
medians are reported. Writes ``benchmarks/results/client_overhead.json`` (raw times and
``ratios`` = peer time / our time, higher is better).

    python benchmarks/client_overhead.py --quick     # builtin:mini, < 2 minutes on a 2-core CPU
    python benchmarks/client_overhead.py             # builtin:small
    python benchmarks/client_overhead.py --threads 1 # steadier when other jobs share the CPU
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from autotrain_pl.client import AdamParams, TrainingClient  # noqa: E402
from autotrain_pl.data import SFTCollator, mixed_chat, resolve_pad_token_id  # noqa: E402
from autotrain_pl.models import load_model, load_tokenizer  # noqa: E402
from autotrain_pl.rendering import Message, get_renderer  # noqa: E402
from autotrain_pl.training.tokens import forward_trained_logits  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "client_overhead.json"
ADAM = dict(lr=1e-5, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0)


def make_batch(tokenizer, rows: int, max_length: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Chats of mixed length, all assistant replies trained, right-padded."""
    renderer = get_renderer("chatml", tokenizer)
    examples = []
    for row in mixed_chat(n=rows, seed=seed, median_words=24, sigma=0.5):
        messages = [Message.from_dict(m) for m in row["messages"]]
        ids, weights = renderer.build_supervised_example(messages, "all_assistant_messages")
        examples.append({"input_ids": ids[:max_length], "loss_weights": weights[:max_length]})
    return SFTCollator(resolve_pad_token_id(tokenizer))(examples)


def handwritten_step(model, optimizer, batch) -> Callable[[], float]:
    ids, mask, weights = batch["input_ids"], batch["attention_mask"], batch["loss_weights"]
    target_weights = (weights[:, 1:] * mask[:, 1:]).reshape(-1)

    def step() -> float:
        logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
        nll = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                              ids[:, 1:].reshape(-1), reduction="none")
        loss = (nll * target_weights).sum() / target_weights.sum()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    return step


def handwritten_same_math_step(model, optimizer, batch) -> Callable[[], float]:
    def step() -> float:
        # The client's own forward (LM head and last layer at trained positions only), so the
        # ratio against this peer isolates the client's bookkeeping.
        logits, selection = forward_trained_logits(model, batch)
        nll = F.cross_entropy(logits, selection.labels, reduction="none")
        loss = (nll * selection.weights).sum() / selection.weights.sum()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    return step


def client_step(client: TrainingClient, batch) -> Callable[[], float]:
    adam = AdamParams(**ADAM)

    def step() -> float:
        loss = client.forward_backward(batch).loss
        client.optim_step(adam)
        return loss

    return step


def run(model_ref: str, rows: int, max_length: int, repeats: int, warmup: int) -> dict:
    tokenizer = load_tokenizer(model_ref)
    batch = make_batch(tokenizer, rows, max_length)
    steps: dict[str, Callable[[], float]] = {}
    client = TrainingClient(model_ref, accelerator="cpu", precision="32-true")
    steps["ours"] = client_step(client, batch)
    for name, build in (("handwritten", handwritten_step),
                        ("handwritten_same_math", handwritten_same_math_step)):
        model = load_model(model_ref)
        model.train()
        steps[name] = build(model, torch.optim.AdamW(model.parameters(), **ADAM), batch)
    first_losses = {name: fn() for name, fn in steps.items()}  # identical weights: same loss
    for _ in range(warmup - 1):
        for fn in steps.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in steps}
    cpu_times: dict[str, list[float]] = {name: [] for name in steps}
    names = list(steps)
    for repeat in range(repeats):
        for name in names[repeat % len(names):] + names[: repeat % len(names)]:
            start, cpu_start = time.perf_counter(), time.process_time()
            steps[name]()
            times[name].append(time.perf_counter() - start)
            cpu_times[name].append(time.process_time() - cpu_start)
    medians = {name: statistics.median(values) for name, values in times.items()}
    cpu_medians = {name: statistics.median(values) for name, values in cpu_times.items()}
    trained = float((batch["loss_weights"][:, 1:] * batch["attention_mask"][:, 1:] > 0).sum())
    return {
        "model": model_ref,
        "parameters": sum(p.numel() for p in client.params),
        "batch_shape": list(batch["input_ids"].shape),
        "trained_fraction": trained / batch["attention_mask"][:, 1:].sum().item(),
        "repeats": repeats,
        "first_step_loss": first_losses,
        "median_step_s": medians,
        "step_times_s": times,
        # Process CPU time (all threads): steadier than wall time on a shared, busy machine.
        "median_step_cpu_s": cpu_medians,
        "cpu_ratios": {f"ours_vs_{name}": cpu_medians[name] / cpu_medians["ours"]
                       for name in cpu_medians if name != "ours"},
        "ratios": {f"ours_vs_{name}": medians[name] / medians["ours"]
                   for name in medians if name != "ours"},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="builtin:mini, < 2 minutes")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (1 gives steady timings on a shared machine)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model_ref = "builtin:mini" if args.quick else "builtin:small"
    repeats = args.repeats or (15 if args.quick else 15)
    result = run(model_ref, rows=16, max_length=64, repeats=repeats, warmup=2)
    result.update({"quick": args.quick, "torch": torch.__version__,
                   "threads": torch.get_num_threads(), "machine": platform.machine(),
                   "processor": platform.processor() or platform.platform()})
    print(f"{model_ref}: {result['parameters'] / 1e6:.1f}M trained parameters, batch "
          f"{result['batch_shape']}, {result['trained_fraction']:.0%} of targets trained, "
          f"{repeats} interleaved repeats")
    print(f"{'step':<24}{'median s':>10}{'peer/ours':>11}{'median cpu s':>14}{'peer/ours':>11}")
    for name, median in result["median_step_s"].items():
        ratio = result["ratios"].get(f"ours_vs_{name}")
        cpu = result["median_step_cpu_s"][name]
        cpu_ratio = result["cpu_ratios"].get(f"ours_vs_{name}")
        print(f"{name:<24}{median:>10.4f}{(f'{ratio:.3f}' if ratio else '-'):>11}"
              f"{cpu:>14.4f}{(f'{cpu_ratio:.3f}' if cpu_ratio else '-'):>11}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    result["load_average_1min"] = load
    print(f"1-minute load average {load:.2f} on {os.cpu_count()} CPUs (timings are noisy when it "
          "exceeds the CPU count)")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
