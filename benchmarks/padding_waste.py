"""Padding waste of training batches: naive batches vs. length grouping vs. packing.

Padding waste is the share of padded positions among all positions the model computes on. The
data is a deterministic, long-tailed mix of chats (``synthetic:mixed_chat``: short Q&A, medium and
long multi-turn threads, roughly log-normal from ~20 to ~1000 tokens), rendered with the builtin
tokenizer and ChatML exactly as ``ChatDataModule`` would.

Strategies, same data, same ``max_length``:

- ``naive``: random order, fixed batch size (a plain shuffled DataLoader);
- ``hf_group_by_length`` (peer): ``transformers``' ``LengthGroupedSampler``, fixed batch size;
- ``ours_group_by_length``: ``LengthGroupedBatchSampler`` (same idea, fixed batch size);
- ``ours_token_budget``: ``TokenBudgetBatchSampler`` with a budget of ``batch_size x max_length``;
- ``trl_packing`` (peer): ``trl.data_utils.pack_dataset(strategy="bfd")`` rows, batched;
- ``ours_packing``: ``pack_dataset`` (best-fit decreasing) rows, batched.

Packed rows are batched ``batch_size // 4`` rows at a time and padded to the longest row.

Run: ``python benchmarks/padding_waste.py [--quick]``; writes ``benchmarks/results/padding_waste.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import datasets
import torch
import transformers
from trl.data_utils import pack_dataset as trl_pack_dataset

import autotrain_pl
from autotrain_pl.data import (
    LengthGroupedBatchSampler,
    TokenBudgetBatchSampler,
    encode_dataset,
    pack_dataset,
    padding_waste,
)
from autotrain_pl.data.formats import ROW_FORMATS
from autotrain_pl.data.sources import load_source
from autotrain_pl.rendering.chatml import ChatMLRenderer

RESULTS = Path(__file__).parent / "results" / "padding_waste.json"
TOKENIZER = Path(autotrain_pl.__file__).parent / "models" / "builtin_tokenizer"


def sample_lengths(n: int, seed: int, max_length: int) -> list[int]:
    """Token lengths of ``n`` rendered mixed-length chats (truncated to ``max_length``)."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(TOKENIZER))
    source = load_source(f"synthetic:mixed_chat?n={n}&seed={seed}")
    encoded, _ = encode_dataset(
        source,
        ROW_FORMATS["messages"],
        ChatMLRenderer(tokenizer),
        mode="sft",
        max_length=max_length,
        train_on="all_assistant_messages",
        split_name="benchmark",
    )
    return list(encoded["length"])


def measure(batches: list[list[int]], lengths: list[int], seconds: float) -> dict[str, float]:
    real = sum(lengths[i] for b in batches for i in b)
    padded = sum(max(lengths[i] for i in b) * len(b) for b in batches)
    sizes = [len(b) for b in batches]
    return {
        "padding_waste": padding_waste(batches, lengths),
        "real_tokens": real,
        "padded_tokens": padded,
        "batches": len(batches),
        "mean_batch_size": sum(sizes) / len(sizes),
        "max_padded_tokens_per_batch": max(max(lengths[i] for i in b) * len(b) for b in batches),
        "seconds": seconds,
    }


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def fixed_batches(order: list[int], batch_size: int) -> list[list[int]]:
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def run(n: int, max_length: int, batch_size: int, seed: int) -> dict:
    lengths = sample_lengths(n, seed, max_length)
    results: dict[str, dict[str, float]] = {}

    def naive():
        order = list(range(n))
        random.Random(seed).shuffle(order)
        return fixed_batches(order, batch_size)

    def hf_grouped():
        generator = torch.Generator().manual_seed(seed)
        sampler = transformers.trainer_pt_utils.LengthGroupedSampler(
            batch_size, lengths=lengths, generator=generator
        )
        return fixed_batches(list(sampler), batch_size)

    budget = batch_size * max_length
    strategies = {
        "naive": naive,
        "hf_group_by_length": hf_grouped,
        "ours_group_by_length": lambda: list(LengthGroupedBatchSampler(lengths, batch_size, seed)),
        "ours_token_budget": lambda: list(TokenBudgetBatchSampler(lengths, budget, seed=seed)),
    }
    for name, build in strategies.items():
        batches, seconds = timed(build)
        results[name] = measure(batches, lengths, seconds)

    rows_per_batch = max(1, batch_size // 4)
    # Both packers get the same tokenized dataset (ids + weights) and build packed rows from it.
    tokenized = datasets.Dataset.from_dict(
        {"input_ids": [[1] * n for n in lengths], "loss_weights": [[1.0] * n for n in lengths]}
    )
    packed, seconds = timed(lambda: pack_dataset(tokenized, max_length, seed=seed))
    results["ours_packing"] = measure_packed(list(packed["length"]), rows_per_batch, seed, seconds)
    packed, seconds = timed(lambda: trl_pack_dataset(tokenized, max_length, strategy="bfd"))
    trl_rows = [len(ids) for ids in packed["input_ids"]]
    results["trl_packing"] = measure_packed(trl_rows, rows_per_batch, seed, seconds)
    return {"lengths": summarize(lengths), "strategies": results}


def measure_packed(row_lengths: list[int], rows_per_batch: int, seed: int, seconds: float):
    order = list(range(len(row_lengths)))
    random.Random(seed).shuffle(order)
    out = measure(fixed_batches(order, rows_per_batch), row_lengths, seconds)
    out["rows"] = len(row_lengths)
    return out


def summarize(lengths: list[int]) -> dict[str, float]:
    ordered = sorted(lengths)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {
        "samples": len(lengths),
        "tokens": sum(lengths),
        "min": ordered[0],
        "p50": pick(0.5),
        "p90": pick(0.9),
        "p99": pick(0.99),
        "max": ordered[-1],
    }


def ratio(numerator: float, denominator: float) -> float:
    return numerator / max(denominator, 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (seconds)")
    parser.add_argument("--samples", type=int, default=None)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    datasets.disable_progress_bars()
    n = args.samples or (5000 if args.quick else 20000)
    report = run(n, args.max_length, args.batch_size, args.seed)
    s = {k: v["padding_waste"] for k, v in report["strategies"].items()}
    report["ratios"] = {
        # Waste ratios: the peer's padding waste divided by ours (higher is better for us).
        "ours_vs_naive": ratio(s["naive"], s["ours_token_budget"]),
        "ours_vs_hf_group_by_length": ratio(s["hf_group_by_length"], s["ours_token_budget"]),
        "ours_group_by_length_vs_hf_group_by_length": ratio(
            s["hf_group_by_length"], s["ours_group_by_length"]
        ),
        "ours_packing_vs_naive": ratio(s["naive"], s["ours_packing"]),
        "ours_packing_vs_trl_packing": ratio(s["trl_packing"], s["ours_packing"]),
        # Computed positions per real token, peer over ours: the compute saved by less padding.
        "ours_vs_naive_compute": ratio(1 / (1 - s["naive"]), 1 / (1 - s["ours_token_budget"])),
        "ours_packing_speed_vs_trl_packing": ratio(
            report["strategies"]["trl_packing"]["seconds"],
            report["strategies"]["ours_packing"]["seconds"],
        ),
    }
    report["config"] = {
        "samples": n,
        "max_length": args.max_length,
        "batch_size": args.batch_size,
        "token_budget": args.batch_size * args.max_length,
        "seed": args.seed,
        "quick": args.quick,
        "data": f"synthetic:mixed_chat?n={n}&seed={args.seed}",
        "tokenizer": "builtin (ChatML)",
    }
    print(f"lengths: {report['lengths']}")
    print(f"{'strategy':<24}{'waste':>9}{'batches':>9}{'mean bs':>9}{'padded tok':>12}{'secs':>8}")
    for name, row in report["strategies"].items():
        print(
            f"{name:<24}{row['padding_waste']:>8.2%}{row['batches']:>9}"
            f"{row['mean_batch_size']:>9.1f}{row['padded_tokens']:>12}{row['seconds']:>8.3f}"
        )
    for name, value in report["ratios"].items():
        print(f"{name:<44}{value:>10.2f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
