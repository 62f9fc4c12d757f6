"""``aitrain eval``: benchmarks, generation metrics or perplexity from the command line.

    aitrain eval --model runs/sft --benchmark mmlu --data ./mmlu --limit 100 --num_fewshot 5
    aitrain eval --model runs/sft --dataset eval.jsonl --metrics bleu,rougeL --predictions p.jsonl
    aitrain eval --model runs/sft --dataset eval.jsonl --task language_modeling
    aitrain eval --model runs/sft --dataset qa.csv --column_mapping '{"question": "prompt",
        "answer": "completion"}' --metrics f1,exact_match
    aitrain eval --model runs/sft --dataset eval.jsonl --metrics bertscore \
        --metric_kwargs '{"bertscore": {"model_name_or_path": "/models/roberta-large"}}'

Prints a table and writes the ``EvaluationResult`` JSON (``--output``, default
``eval_results/<timestamp>.json``). A user error prints ``aitrain: error: <one line>`` to stderr
and returns 2; metric names, ``--metric_kwargs`` and the data options are checked before the
model loads, and error hints name this command's flags.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import IO

from autotrain_pl.commands import SUBCOMMANDS
from autotrain_pl.errors import AutotrainError

#: Row formats of chat data (``autotrain_pl.data.formats.ROW_FORMATS``), for the help text.
ROW_FORMAT_NAMES = ("auto", "messages", "prompt_completion", "text", "alpaca", "sharegpt",
                    "preference", "unpaired_preference")
#: SamplingConfig fields settable from the command line (generation task).
SAMPLING_FLAGS: dict[str, type] = {
    "max_new_tokens": int, "min_new_tokens": int, "temperature": float, "top_k": int,
    "top_p": float, "min_p": float, "repetition_penalty": float, "num_beams": int, "seed": int,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aitrain eval",
        description="Evaluate a model on a benchmark (mmlu, hellaswag, arc_easy, arc_challenge, "
        "truthfulqa_mc1, truthfulqa_mc2; arc and truthfulqa mean arc_challenge and "
        "truthfulqa_mc2, as on the Open LLM Leaderboard), by generation metrics, or by "
        "perplexity (perplexity beside text metrics: both in one run).",
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
    parser.add_argument("--metrics", help="comma-separated metric names, e.g. bleu,rougeL: "
                        "perplexity, bleu, sacrebleu, chrf, chrf++, rouge (rouge1, rouge2 and "
                        "rougeL together), rouge1, rouge2, rougeL, "
                        "rougeLsum, meteor, bertscore, exact_match, f1 (SQuAD token F1 of the "
                        "answer; same as token_f1), accuracy, f1_macro, f1_micro (class labels), "
                        "or an import path")
    parser.add_argument("--metric_kwargs", metavar="JSON",
                        help='per-metric arguments as a JSON object, e.g. '
                        '\'{"bertscore": {"model_name_or_path": "/path/to/roberta-large"}}\'')
    parser.add_argument("--row_format", default="auto",
                        help=f"row format of --dataset: {', '.join(ROW_FORMAT_NAMES)} "
                        "(default: detected from the columns)")
    parser.add_argument("--column_mapping", metavar="JSON",
                        help="rename columns of --dataset before the row format is detected, "
                        'as a JSON object, e.g. \'{"question": "prompt", "answer": "completion"}\'')
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
        from autotrain_pl.data.validation import spell_options
        from autotrain_pl.evaluation.evaluator import EvaluationConfig, Evaluator

        with spell_options(option_spelling(args)):
            config = EvaluationConfig(**config_options(args))
            result = Evaluator(args.model, config).run()
        output = Path(args.output) if args.output else default_output_path()
        result.save(output)
    except AutotrainError as error:
        print(f"aitrain: error: {' '.join(str(error).split())}", file=stderr)
        return 2
    stdout.write(result.summary_table() + "\n")
    stdout.write(f"wrote {output}\n")
    if args.predictions:
        stdout.write(f"wrote {args.predictions}\n")
    return 0


def option_spelling(args: argparse.Namespace) -> dict[str, str]:
    """How error hints name each ``EvaluationConfig`` field: as the flag that sets it.

    Options that ``aitrain eval`` does not have (``overlong_policy``, ``train_on``,
    ``token_weights``) are spelled ``""``, so hints leave them out.
    """
    flags = ("task", "metrics", "metric_kwargs", "batch_size", "limit", "chat_format",
             "benchmark", "num_fewshot", "split", "subset", "max_length", "scoring",
             "row_format", "column_mapping", "dtype", "device")
    spelling = {name: f"--{name}" for name in flags}
    spelling.update({
        "data_path": "--data" if args.benchmark or args.task == "benchmark" else "--dataset",
        "predictions_path": "--predictions",
        "sampling": "the sampling flags (--max_new_tokens, --temperature, ...)",
        "overlong_policy": "", "train_on": "", "token_weights": "",
    })
    return spelling


def _json_object(flag: str, text: str | None, example: str) -> dict | None:
    """A ``--flag '{...}'`` value as a dict; one-line error naming the flag otherwise."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise AutotrainError(
            f"{flag} is not valid JSON ({error.msg} at column {error.colno}); write it as a "
            f"quoted JSON object, e.g. {flag} '{example}'"
        ) from None
    if not isinstance(value, dict):
        raise AutotrainError(
            f"{flag} must be a JSON object, got {type(value).__name__}; e.g. {flag} '{example}'"
        )
    return value


def config_options(args: argparse.Namespace) -> dict:
    """``EvaluationConfig`` keyword arguments from parsed flags.

    Metric names and ``--metric_kwargs`` are checked here, at argument-parsing time, with
    errors that name the flags.
    """
    if args.data and args.dataset and args.data != args.dataset:
        raise AutotrainError("give the data once: --data (benchmarks) or --dataset (chat data)")
    if not args.benchmark and not (args.data or args.dataset) and args.task != "benchmark":
        raise AutotrainError("name what to evaluate: --benchmark NAME, or --dataset PATH")
    sampling = {n: getattr(args, n) for n in SAMPLING_FLAGS if getattr(args, n) is not None}
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    metric_kwargs = _json_object(
        "--metric_kwargs", args.metric_kwargs,
        '{"bertscore": {"model_name_or_path": "/path/to/roberta-large"}}')
    column_mapping = _json_object(
        "--column_mapping", args.column_mapping, '{"question": "prompt", "answer": "completion"}')
    if metrics or metric_kwargs:
        from autotrain_pl.evaluation.metrics import check_metrics

        if metric_kwargs and not metrics:
            raise AutotrainError(
                f"--metric_kwargs sets arguments of {sorted(metric_kwargs)}; name them in "
                f"--metrics too, e.g. --metrics {','.join(metric_kwargs)}"
            )
        check_metrics(metrics, metric_kwargs)
    return {
        "task": args.task, "data_path": args.data or args.dataset, "metrics": metrics,
        "batch_size": args.batch_size, "limit": args.limit, "chat_format": args.chat_format,
        "sampling": sampling or None, "predictions_path": args.predictions,
        "benchmark": args.benchmark, "num_fewshot": args.num_fewshot, "split": args.split,
        "subset": args.subset, "max_length": args.max_length, "scoring": args.scoring,
        "add_bos_token": args.add_bos_token, "dtype": args.dtype, "device": args.device,
        "metric_kwargs": metric_kwargs, "row_format": args.row_format,
        "column_mapping": column_mapping,
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
