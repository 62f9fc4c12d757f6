"""Multiple-choice scoring throughput: our shared-context scorer against the naive loop.

Both sides score the same generated questions with the same model and return the same
log-likelihoods (checked):

- ours: ``LoglikelihoodScorer(method="shared_context")``: the contexts of ``batch_size``
  questions run once (left-padded, KV cache), each cache is copied to its question's choices,
  and only the choice tokens run on top; the LM head runs only at scored positions.
- naive (the peer): one ``model(context + choice)`` forward per choice with full logits, the
  plain loop most evaluation code starts from (lm-evaluation-harness at ``batch_size=1``).
- padded (extra row): one right-padded row per (question, choice), several questions per forward,
  what the harness does with ``batch_size > 1`` (``method="batched"``).

Questions have realistic lengths: ~200-token contexts and 4 choices of ~10 tokens (ARC or
HellaSwag with a few shots). A second scenario uses 1-token choices (MMLU's " A".." D"), where
ours needs no second pass at all. Rounds alternate between the sides; questions/s come from each
side's fastest round (on a shared machine other processes only ever add time), medians are kept.

    python benchmarks/eval_speed.py --quick    # builtin:mini, < 2 minutes on a 2-core CPU
    python benchmarks/eval_speed.py            # builtin:small
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from autotrain_pl.evaluation.benchmarks import (  # noqa: E402
    EncodedQuestion,
    LoglikelihoodScorer,
    encode_question,
)
from autotrain_pl.models import load_model, load_tokenizer  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "eval_speed.json"
WORDS = ("the a of to and in is that for on with as by at from which water energy plant light "
         "heat animal earth moon sun rock cell force motion river city student teacher market "
         "price number result change system process answer question group model data small "
         "large first second because when where while however therefore each every most").split()


def make_questions(tokenizer, count: int, context_tokens: int, choice_tokens: int | None,
                   seed: int = 0) -> list[EncodedQuestion]:
    """Deterministic questions; context ~``context_tokens``, 4 choices of ~``choice_tokens``."""
    rng = random.Random(seed)

    def text_of(tokens: int) -> str:
        words: list[str] = []
        while len(tokenizer.encode(" ".join(words), add_special_tokens=False)) < tokens:
            words.append(rng.choice(WORDS))
        return " ".join(words)

    questions = []
    for i in range(count):
        context = f"Question {i}: {text_of(context_tokens)}?\nAnswer:"
        if choice_tokens is None:
            choices = [" A", " B", " C", " D"]
        else:
            choices = [" " + text_of(choice_tokens + rng.randint(-2, 2)) for _ in range(4)]
        questions.append(encode_question(tokenizer, context, choices))
    return questions


@torch.inference_mode()
def naive_scores(model, questions: list[EncodedQuestion]) -> list[list[float]]:
    """The peer: one full-logits forward per (question, choice)."""
    out = []
    for question in questions:
        context = question.context_ids
        row = []
        for continuation in question.continuation_ids:
            ids = torch.tensor([context + continuation[:-1]])
            logprobs = model(input_ids=ids).logits[0, len(context) - 1:].log_softmax(-1)
            row.append(float(logprobs.gather(-1, torch.tensor(continuation)[:, None]).sum()))
        out.append(row)
    return out


def timed(fn) -> tuple[float, list[list[float]]]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def bench_scenario(model, questions, batch_size: int, rounds: int) -> dict:
    ours = LoglikelihoodScorer(model, batch_size=batch_size, method="shared_context")
    padded = LoglikelihoodScorer(model, batch_size=batch_size, method="batched")
    sides = {"ours": lambda: ours.score(questions), "naive": lambda: naive_scores(model, questions),
             "padded": lambda: padded.score(questions)}
    sides["ours"]()  # warm-up (first-call allocations, lazy imports)
    times: dict[str, list[float]] = {name: [] for name in sides}
    scores: dict[str, list[list[float]]] = {}
    for _ in range(rounds):
        for name, fn in sides.items():
            seconds, scores[name] = timed(fn)
            times[name].append(seconds)
    flat = {name: [x for row in s for x in row] for name, s in scores.items()}
    max_diff = max(abs(a - b) for a, b in zip(flat["ours"], flat["naive"], strict=True))
    n = len(questions)
    result = {
        "questions": n,
        "choices_per_question": len(questions[0].continuation_ids),
        "mean_context_tokens": statistics.mean(len(q.context_ids) for q in questions),
        "mean_choice_tokens": statistics.mean(
            len(c) for q in questions for c in q.continuation_ids
        ),
        "batch_size": batch_size,
        "seconds": times,
        "questions_per_s": {name: n / min(t) for name, t in times.items()},
        "median_questions_per_s": {name: n / statistics.median(t) for name, t in times.items()},
        "max_abs_loglikelihood_diff_vs_naive": max_diff,
    }
    qps = result["questions_per_s"]
    result["ratios"] = {"ours_vs_naive": qps["ours"] / qps["naive"],
                        "ours_vs_padded": qps["ours"] / qps["padded"]}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="builtin:mini, fewer questions")
    parser.add_argument("--model", help="model reference (default builtin:small, mini if --quick)")
    parser.add_argument("--questions", type=int, help="questions per scenario")
    parser.add_argument("--batch_size", type=int, default=8, help="questions per forward (ours)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: these small matmuls gain nothing from "
                        "more, and on a busy CPU extra threads only spin)")
    parser.add_argument("--output", default=str(RESULTS))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    ref = args.model or ("builtin:mini" if args.quick else "builtin:small")
    count = args.questions or (16 if args.quick else 32)
    tokenizer, model = load_tokenizer(ref), load_model(ref).eval()
    scenarios = {
        "choices_10_tokens": make_questions(tokenizer, count, 200, 10),
        "choices_1_token": make_questions(tokenizer, count, 200, None, seed=1),
    }
    report = {
        "benchmark": "eval_speed", "model": ref, "quick": args.quick, "device": "cpu",
        "torch_threads": torch.get_num_threads(), "platform": platform.platform(),
        "torch": torch.__version__, "scenarios": {},
    }
    print(f"{'scenario':<20} {'side':<8} {'questions/s':>12} {'median q/s':>11}")
    for name, questions in scenarios.items():
        result = bench_scenario(model, questions, args.batch_size, args.rounds)
        report["scenarios"][name] = result
        for side in ("ours", "naive", "padded"):
            print(f"{name:<20} {side:<8} {result['questions_per_s'][side]:>12.2f} "
                  f"{result['median_questions_per_s'][side]:>11.2f}")
        print(f"{name:<20} ours/naive = {result['ratios']['ours_vs_naive']:.2f}x, ours/padded = "
              f"{result['ratios']['ours_vs_padded']:.2f}x, max |Δll| = "
              f"{result['max_abs_loglikelihood_diff_vs_naive']:.2e}")
    main_result = report["scenarios"]["choices_10_tokens"]
    report["ratios"] = dict(main_result["ratios"])
    report["ratios"]["ours_vs_naive_1_token_choices"] = \
        report["scenarios"]["choices_1_token"]["ratios"]["ours_vs_naive"]
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
