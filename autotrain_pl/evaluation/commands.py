"""``aitrain eval``: benchmarks, generation metrics or perplexity from the command line.

    aitrain eval --model runs/sft --benchmark mmlu --data ./mmlu --limit 100 --num_fewshot 5
    aitrain eval --model runs/sft --dataset eval.jsonl --metrics bleu,rougeL --predictions p.jsonl
    aitrain eval --model runs/sft --dataset eval.jsonl --task language_modeling

Prints a table and writes the ``EvaluationResult`` JSON (``--output``, default
``eval_results/<timestamp>.json``). A user error prints one line to stderr and returns 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import IO

from autotrain_pl.commands import SUBCOMMANDS
from autotrain_pl.errors import AutotrainError

#: SamplingConfig fields settable from the command line (generation task).
SAMPLING_FLAGS: dict[str, type] = {
    "max_new_tokens": int, "min_new_tokens": int, "temperature": float, "top_k": int,
    "top_p": float, "min_p": float, "repetition_penalty": float, "num_beams": int, "seed": int,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aitrain eval",
        description="Evaluate a model on a benchmark (mmlu, hellaswag, arc_easy, arc_challenge, "
        "truthfulqa_mc1, truthfulqa_mc2), by generation metrics, or by perplexity.",
    )
    parser.add_argument("--model", required=True,
                        help="builtin:<name>, a model dir, an exported run, or a hub id")
    parser.add_argument("--benchmark", help="benchmark name; selects the benchmark task")
    parser.add_argument("--data", help="benchmark data: a local copy in the hub layout "
                        "(default: the hub dataset); also accepted for --dataset")
    parser.add_argument("--dataset", help="chat data for generation / language_modeling")
    parser.add_argument("--task", choices=("generation", "language_modeling", "benchmark"),
                        help="default: benchmark with --benchmark, else generation when text "
                        "metrics are named, else language_modeling")
    parser.add_argument("--metrics", help="comma-separated metric names, e.g. bleu,rougeL")
    parser.add_argument("--limit", type=int, help="evaluate only the first N samples")
    parser.add_argument("--num_fewshot", type=int, default=0, help="k-shot examples (benchmarks)")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--split", help="data split (benchmarks default to the harness's)")
    parser.add_argument("--subset", help="dataset configuration, e.g. an MMLU subject")
    parser.add_argument("--max_length", type=int, help="longest sample / input in tokens")
    parser.add_argument("--chat_format", help="chat format when the model does not record one")
    parser.add_argument("--scoring", default="shared_context",
                        choices=("shared_context", "batched", "naive"),
                        help="multiple-choice scorer (all give the same numbers)")
    parser.add_argument("--add_bos_token", action=argparse.BooleanOptionalAction, default=False,
                        help="prepend BOS to benchmark prompts (harness add_bos_token)")
    parser.add_argument("--dtype", default="float32", help="float32, bfloat16, float16 or auto")
    parser.add_argument("--device", help="cuda, mps or cpu (default: the best available)")
    parser.add_argument("--output", help="result JSON path (default eval_results/<time>.json)")
    parser.add_argument("--predictions", help="write per-sample predictions as JSONL")
    group = parser.add_argument_group("sampling (generation task)")
    for name, kind in SAMPLING_FLAGS.items():
        group.add_argument(f"--{name}", type=kind, default=None)
    return parser


@SUBCOMMANDS.register("eval")
def eval_command(argv: Sequence[str], stdout: IO[str] | None = None,
                 stderr: IO[str] | None = None) -> int:
    """Run ``aitrain eval``; returns the exit code (2 for a user error)."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    try:
        args = build_parser().parse_args(list(argv))
    except SystemExit as exit_:  # --help or a usage error: argparse already printed it
        return exit_.code if isinstance(exit_.code, int) else 2
    try:
        from autotrain_pl.evaluation.evaluator import EvaluationConfig, Evaluator

        config = EvaluationConfig(**config_options(args))
        result = Evaluator(args.model, config).run()
        output = Path(args.output) if args.output else default_output_path()
        result.save(output)
    except AutotrainError as error:
        print(f"error: {' '.join(str(error).split())}", file=stderr)
        return 2
    stdout.write(result.summary_table() + "\n")
    stdout.write(f"wrote {output}\n")
    if args.predictions:
        stdout.write(f"wrote {args.predictions}\n")
    return 0


def config_options(args: argparse.Namespace) -> dict:
    """``EvaluationConfig`` keyword arguments from parsed flags."""
    if args.data and args.dataset and args.data != args.dataset:
        raise AutotrainError("give the data once: --data (benchmarks) or --dataset (chat data)")
    if not args.benchmark and not (args.data or args.dataset) and args.task != "benchmark":
        raise AutotrainError("name what to evaluate: --benchmark NAME, or --dataset PATH")
    sampling = {n: getattr(args, n) for n in SAMPLING_FLAGS if getattr(args, n) is not None}
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    return {
        "task": args.task, "data_path": args.data or args.dataset, "metrics": metrics,
        "batch_size": args.batch_size, "limit": args.limit, "chat_format": args.chat_format,
        "sampling": sampling or None, "predictions_path": args.predictions,
        "benchmark": args.benchmark, "num_fewshot": args.num_fewshot, "split": args.split,
        "subset": args.subset, "max_length": args.max_length, "scoring": args.scoring,
        "add_bos_token": args.add_bos_token, "dtype": args.dtype, "device": args.device,
    }


def default_output_path() -> Path:
    """``eval_results/<YYYYmmdd-HHMMSS>.json`` under the working directory, never overwritten."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = Path("eval_results") / f"{stamp}.json"
    counter = 1
    while path.exists():
        path = Path("eval_results") / f"{stamp}-{counter}.json"
        counter += 1
    return path
