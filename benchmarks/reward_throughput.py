"""Reward-model training throughput: our RewardModule vs TRL's RewardTrainer.

Both sides train the same builtin Llama as a one-label sequence classifier (the same seeded
weights and ``score`` head, fp32, CPU by default) on the same token ids (our ChatML rendering of
each pair, handed to TRL pre-tokenized as ``chosen_ids`` / ``rejected_ids``), with the same batch
size of pairs, learning rate and optimizer (AdamW, constant schedule), in one process run.

- ``ours``: ``RewardModule`` + ``ChatDataModule`` through ``lightning.Trainer``, as
  ``configs/reward.yaml`` runs it: each pair packed into one row (the prompt once,
  ``data.pair_batches``), the last decoder layer and the score head only at the two
  positions read, length-grouped batches (``group_by_length``: the same pairs, batched with pairs
  of similar length, as ``sft_throughput.py`` runs ours).
- ``ours_concat``: the same with ``pair_layout: concatenated`` (chosen rows then rejected rows,
  TRL's layout), so the effect of packing shows on its own.
- ``trl``: ``trl.RewardTrainer`` with its defaults (gradient checkpointing is on in TRL 1.x: a
  second forward per step), ``bf16=False`` (the CPU's bf16 matmuls are ~100x slower than fp32).
- ``trl_nogc``: the same with gradient checkpointing off.

Figures: pairs per second (batch size / median step time over the steps after warm-up) and real
tokens per second (both sequences of each pair, padding not counted). The runners alternate for
``--rounds`` rounds in rotating order and each keeps its fastest round; process CPU time per step
is recorded too.

Workloads (``--workload``): ``short`` (two-digit additions: ~17-token prompts, 2-5-token
replies; 16 pairs per step) and ``chat`` (a user turn of 8-40 words, replies of 20-120 words, so
the replies dominate and packing saves less; 8 pairs per step).

``ratios``: ``ours_vs_trl`` and ``ours_vs_trl_nogc`` (higher is better) and
``packed_vs_concatenated``, per workload (suffix ``_chat`` for ``chat``); ``cpu_time_ratios``
the same from process CPU time (steadier with ``--threads 1`` on a busy machine). On the shared
2-core machine the figures are noisy; compare ratios from one run.

    python benchmarks/reward_throughput.py --quick   # < 2 minutes on 2 CPU cores
    python benchmarks/reward_throughput.py
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import statistics
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from step_timing import StepTimer, time_trl_steps  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "reward_throughput.json"
RUNNERS = ("ours", "ours_concat", "trl", "trl_nogc")
WORDS = ("the model learns to answer questions about data code time people world system work "
         "life day year way part number water city story fact month study book job word issue "
         "side kind head house service friend power hour game line end member law car name team "
         "idea body information back face level office door health person art history result").split()


def short_rows(n: int) -> list[dict]:
    from autotrain_pl.data import synthetic_rows

    return synthetic_rows(f"synthetic:preference?n={n}&seed=0")


def chat_rows(n: int, seed: int = 0) -> list[dict]:
    """A user turn and two replies of unrelated lengths per pair."""
    rng = random.Random(seed)

    def text(low: int, high: int) -> str:
        return " ".join(rng.choices(WORDS, k=rng.randint(low, high)))

    return [{"prompt": text(8, 40), "chosen": text(20, 120), "rejected": text(20, 120)}
            for _ in range(n)]


def data_module(model_ref: str, rows_path: str, batch_size: int, group_by_length: bool = False):
    from autotrain_pl.data import ChatDataModule

    return ChatDataModule(rows_path, tokenizer=model_ref, chat_format="chatml",
                          batch_size=batch_size, max_length=512, seed=0,
                          group_by_length=group_by_length)


def batch_tokens(batch) -> int:
    """Real tokens of both sequences of every pair, the prompt counted in each (as TRL runs
    them): each sequence's last position + 1."""
    ends = batch["end_positions"]
    if "position_ids" in batch:  # packed: the rejected sequence's positions restart at the prompt
        ends = batch["position_ids"][batch["end_rows"], ends]
    return int((ends + 1).sum())


def run_ours(model_ref: str, rows_path: str, steps: int, batch_size: int, lr: float, warmup: int,
             pair_layout: str) -> dict:
    import lightning as L

    from autotrain_pl.objectives import RewardModule

    timer = StepTimer(warmup)

    class Timing(L.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            timer.start()

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            timer.stop(batch_tokens(batch))

    torch.manual_seed(0)
    module = RewardModule(model_ref, learning_rate=lr, lr_scheduler="constant", export=False,
                          pair_layout=pair_layout)
    trainer = L.Trainer(accelerator="auto", precision="32-true", max_steps=steps, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[Timing()], num_sanity_val_steps=0)
    trainer.fit(module, datamodule=data_module(model_ref, rows_path, batch_size,
                                               group_by_length=True))
    return timer.summary(batch_size, "pairs")


def tokenized_pairs(model_ref: str, rows_path: str, batch_size: int) -> tuple[list[dict], object]:
    """Our rendering of every pair as TRL's pre-tokenized ``chosen_ids``/``rejected_ids``."""
    data = data_module(model_ref, rows_path, batch_size)
    data.setup("fit")
    pairs = [{"chosen_ids": list(r["prompt_ids"]) + list(r["chosen_ids"]),
              "rejected_ids": list(r["prompt_ids"]) + list(r["rejected_ids"])}
             for r in data.train_dataset]
    return pairs, data.tokenizer


def run_trl(model_ref: str, pairs: list[dict], tokenizer, steps: int, batch_size: int, lr: float,
            warmup: int, out_dir: str, gradient_checkpointing: bool | None = None) -> dict:
    import datasets
    from trl import RewardConfig, RewardTrainer

    from autotrain_pl.models import load_model

    timer = StepTimer(warmup)
    torch.manual_seed(0)
    model = load_model(model_ref, head="reward")  # the same seeded score head as ours
    config = RewardConfig(
        output_dir=out_dir, per_device_train_batch_size=batch_size, max_steps=steps,
        learning_rate=lr, lr_scheduler_type="constant", report_to="none", logging_steps=10**6,
        save_strategy="no", bf16=False, fp16=False, use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0, disable_tqdm=True, seed=0, max_length=None,
        # None keeps TRL's default (on in TRL 1.x: a second forward per step).
        **({} if gradient_checkpointing is None
           else {"gradient_checkpointing": gradient_checkpointing}))
    trainer = RewardTrainer(model=model, args=config, processing_class=tokenizer,
                            train_dataset=datasets.Dataset.from_list(pairs))
    time_trl_steps(trainer, timer, lambda inputs: int(inputs["attention_mask"].sum()))
    trainer.train()
    return timer.summary(batch_size, "pairs")


def run_workload(name: str, rows: list[dict], steps: int, batch_size: int, args,
                 work: Path) -> dict:
    from autotrain_pl.data import write_jsonl

    rows_path = str(write_jsonl(rows, work / f"{name}.jsonl"))
    pairs, tokenizer = tokenized_pairs(args.model, rows_path, batch_size)
    runners = {
        "ours": lambda: run_ours(args.model, rows_path, steps, batch_size, args.lr,
                                 args.warmup, "packed"),
        "ours_concat": lambda: run_ours(args.model, rows_path, steps, batch_size,
                                        args.lr, args.warmup, "concatenated"),
        "trl": lambda: run_trl(args.model, pairs, tokenizer, steps, batch_size,
                               args.lr, args.warmup, str(work / "trl")),
        "trl_nogc": lambda: run_trl(args.model, pairs, tokenizer, steps, batch_size,
                                    args.lr, args.warmup, str(work / "trl"), False),
    }
    runs: dict[str, list[dict]] = {runner: [] for runner in args.runners}
    for index in range(args.rounds):
        order = args.runners[index % len(args.runners):] + args.runners[:index % len(args.runners)]
        for runner in order:
            runs[runner].append(runners[runner]())
            gc.collect()  # trainers and modules hold reference cycles; free them between runs
    results = {}
    for runner, rounds in runs.items():
        best = dict(max(rounds, key=lambda r: r["pairs_per_s"]))
        best["pairs_per_s_all_rounds"] = [r["pairs_per_s"] for r in rounds]
        best["cpu_pairs_per_s"] = statistics.median(r["cpu_pairs_per_s"] for r in rounds)
        results[runner] = best
    lengths = [len(p["chosen_ids"]) + len(p["rejected_ids"]) for p in pairs]
    return {"pairs": len(pairs), "steps": steps, "batch_size": batch_size,
            "mean_tokens_per_pair": statistics.mean(lengths), "results": results}


def ratios(workloads: dict, key: str = "pairs_per_s") -> dict:
    out = {}
    for name, workload in workloads.items():
        suffix = "" if name == "short" else f"_{name}"
        results = workload["results"]
        for peer in ("trl", "trl_nogc"):
            if "ours" in results and peer in results:
                out[f"ours_vs_{peer}{suffix}"] = results["ours"][key] / results[peer][key]
        if "ours" in results and "ours_concat" in results:
            out[f"packed_vs_concatenated{suffix}"] = (results["ours"][key]
                                                      / results["ours_concat"][key])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a run of under two minutes")
    parser.add_argument("--model", default="builtin:small")
    parser.add_argument("--workload", choices=("short", "chat", "both"), default=None)
    parser.add_argument("--batch_size", type=int, default=16, help="pairs per step (short)")
    parser.add_argument("--chat_batch_size", type=int, default=8,
                        help="pairs per step of the chat workload (TRL without checkpointing "
                             "holds ~5 GB of activations at 16)")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps per run (short)")
    parser.add_argument("--chat_steps", type=int, default=None,
                        help="optimizer steps per run of the chat workload (~7x the tokens)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed first steps")
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds (best kept)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--runners", nargs="+", choices=RUNNERS, default=list(RUNNERS))
    parser.add_argument("--lr", type=float, default=1e-5)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    args.steps = args.steps or (12 if args.quick else 30)
    args.chat_steps = args.chat_steps or (8 if args.quick else 12)
    args.rounds = args.rounds or (1 if args.quick else 2)
    workload = args.workload or ("short" if args.quick else "both")
    names = ("short", "chat") if workload == "both" else (workload,)
    rows = {"short": short_rows, "chat": chat_rows}
    steps = {"short": args.steps, "chat": args.chat_steps}
    batch_sizes = {"short": args.batch_size, "chat": args.chat_batch_size}

    work = Path(tempfile.mkdtemp(prefix="reward_bench_"))
    load_before = os.getloadavg()[0]
    report = {
        "model": args.model, "warmup": args.warmup, "rounds": args.rounds,
        "device": "cuda" if torch.cuda.is_available() else "cpu", "precision": "32-true",
        "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "load_average_before": load_before, "cpu": platform.processor() or platform.machine(),
        "note": "shared 2-core machine with other jobs running: wall-clock figures are noisy",
    }
    workloads: dict[str, dict] = {}
    for name in names:
        # 50 batches of rows (at least), of which each run trains its first ``steps``: length
        # grouping works in mega-batches of up to 50 batches, as in a real run.
        size = batch_sizes[name]
        workloads[name] = run_workload(name, rows[name](size * max(50, steps[name])),
                                       steps[name], size, args, work)
        report.update(workloads=workloads, ratios=ratios(workloads),
                      cpu_time_ratios=ratios(workloads, "cpu_pairs_per_s"))
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(report, indent=2) + "\n")  # each workload as it ends
    print(f"{args.model}, batch {batch_sizes} pairs, steps {steps} ({args.warmup} untimed), "
          f"{args.rounds} round(s), {report['threads']} threads, {report['device']}")
    print(f"{'workload':<9}{'run':<13}{'pairs/s':>9}{'tokens/s':>10}{'cpu pairs/s':>13}")
    for name, workload_result in workloads.items():
        for runner, result in workload_result["results"].items():
            print(f"{name:<9}{runner:<13}{result['pairs_per_s']:>9.2f}"
                  f"{result['tokens_per_s']:>10.0f}{result['cpu_pairs_per_s']:>13.2f}")
    print("ratios (wall):", {k: round(v, 2) for k, v in report["ratios"].items()})
    print("ratios (cpu): ", {k: round(v, 2) for k, v in report["cpu_time_ratios"].items()})
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
