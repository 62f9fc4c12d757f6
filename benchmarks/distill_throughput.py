"""Distillation throughput: our DistillationModule (live teacher, cached teacher logits) vs TRL GKD.

All runs distil the same builtin teacher into the same builtin student (fp32, CPU by default) on
the same generated chat rows, batch size, learning rate and optimizer (AdamW), in one process.
Every side trains on the last assistant reply only, with the teacher seeing the same prompt.

- ``ours_live``: ``DistillationModule`` (forward KL, alpha 1, T 1), teacher forward every step.
- ``ours_cache``: the same with ``teacher_cache: disk`` (top-32): epoch 1 fills the cache, and
  only steps of epoch 2 onwards are timed; they run no teacher forward (counted).
- ``trl_gkd``: ``trl.experimental.gkd.GKDTrainer`` with ``lmbda=0`` (no on-policy sampling) and
  ``seq_kd=False``, i.e. offline distillation on the dataset replies, ``beta=0`` (forward KL);
  its ``DataCollatorForChatML`` reads the same ChatML template our renderer uses.

Figures: student optimizer steps per second and trained tokens per second over the steps after
warm-up. On a shared machine other processes only add time, so each run reports its MEDIAN step
time (spikes do not move it), the three runs alternate for ``--rounds`` rounds, and each side
keeps its fastest round. Process CPU time per step is recorded too; with ``--threads 1`` it
ignores the time other processes held the core, so its ratios are the steadiest on a busy box. Writes ``benchmarks/results/distill_throughput.json`` with raw
figures and ``ratios`` (higher is better): ``cache_vs_live`` and ``ours_vs_trl_gkd`` (live teacher
against TRL's live teacher), plus ``ours_cache_vs_trl_gkd``.

    python benchmarks/distill_throughput.py --quick   # mini -> tiny, < 2 minutes on 2 CPU cores
    python benchmarks/distill_throughput.py           # small -> mini
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

import torch  # noqa: E402
from step_timing import StepTimer, time_trl_steps  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "distill_throughput.json"


def trained_tokens(weights: torch.Tensor) -> int:
    return int((weights[:, 1:] != 0).sum())


def run_ours(teacher: str, student: str, rows_path: str, batch_size: int, lr: float,
             warmup: int, epochs: int, cache_dir: str | None) -> dict:
    """Live teacher (``cache_dir=None``: first epoch timed) or cached logits (epochs >= 2 timed)."""
    import lightning as L

    from autotrain_pl.data import ChatDataModule
    from autotrain_pl.objectives import DistillationModule

    timer = StepTimer(warmup)
    forwards_timed = [0]

    class Timing(L.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            self.forwards = module.teacher.forward_calls
            timer.start()

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            timed = cache_dir is None or trainer.current_epoch >= 1
            timer.stop(trained_tokens(batch["loss_weights"]), timed)
            if timed and timer.seen > timer.warmup:
                forwards_timed[0] += module.teacher.forward_calls - self.forwards

    torch.manual_seed(0)
    cache = {"teacher_cache": "disk", "teacher_cache_dir": cache_dir} if cache_dir else {}
    module = DistillationModule(student, teacher_model=teacher, alpha=1.0, temperature=1.0,
                                kd_loss="forward_kl", learning_rate=lr, lr_scheduler="constant",
                                export=False, **cache)
    data = ChatDataModule(rows_path, tokenizer=student, chat_format="chatml",
                          batch_size=batch_size, max_length=512, seed=0)
    trainer = L.Trainer(accelerator="auto", precision="32-true", max_epochs=epochs, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[Timing()], num_sanity_val_steps=0)
    trainer.fit(module, datamodule=data)
    result = timer.summary()
    result["teacher_forwards_in_timed_steps"] = forwards_timed[0]
    for fingerprint_cache in module.distiller.logit_caches.values():
        result["cache_disk_mib"] = fingerprint_cache.disk_bytes / 2**20
        result["cache_ram_kib"] = fingerprint_cache.memory_bytes / 2**10
        result["cache_top_k"] = fingerprint_cache.columns["values"][1]
    return result


def run_trl_gkd(teacher: str, student: str, rows: list[dict], batch_size: int, lr: float,
                warmup: int, steps: int, out_dir: str) -> dict:
    import datasets
    from trl.experimental.gkd import GKDConfig, GKDTrainer

    from autotrain_pl.models import load_model, load_tokenizer
    from autotrain_pl.rendering import get_renderer

    tokenizer = load_tokenizer(student)
    tokenizer.chat_template = get_renderer("chatml", tokenizer).chat_template()
    timer = StepTimer(warmup)
    torch.manual_seed(0)
    config = GKDConfig(
        output_dir=out_dir, per_device_train_batch_size=batch_size, max_steps=steps,
        learning_rate=lr, lr_scheduler_type="constant", report_to="none", logging_steps=10**6,
        save_strategy="no", bf16=False, fp16=False, use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0, disable_tqdm=True, seed=0, lmbda=0.0, beta=0.0,
        temperature=1.0, seq_kd=False, max_length=512,
    )
    trainer = GKDTrainer(model=load_model(student), teacher_model=load_model(teacher), args=config,
                         train_dataset=datasets.Dataset.from_list(rows), processing_class=tokenizer)
    time_trl_steps(trainer, timer, lambda inputs: int((inputs["labels"][:, 1:] != -100).sum()))
    trainer.train()
    return timer.summary()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a run of under two minutes")
    parser.add_argument("--teacher", default=None)
    parser.add_argument("--student", default=None)
    parser.add_argument("--rows", type=int, default=None, help="training rows (one epoch)")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds (best kept)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    teacher = args.teacher or ("builtin:mini" if args.quick else "builtin:small")
    student = args.student or ("builtin:tiny" if args.quick else "builtin:mini")
    n_rows = args.rows or (96 if args.quick else 256)
    warmup, lr = 2, 1e-4

    from autotrain_pl.data import synthetic_rows, write_jsonl
    from autotrain_pl.models import load_model

    # Long-tailed chat lengths; rows over ~300 words are left out so that no side truncates
    # (TRL keeps the end of an over-long row, we cut its end: different tokens otherwise).
    rows = [row for row in synthetic_rows(
        f"synthetic:mixed_chat?n={2 * n_rows}&seed=0&median_words=40")
        if sum(len(m["content"].split()) for m in row["messages"]) <= 300][:n_rows]
    work = Path(tempfile.mkdtemp(prefix="distill_bench_"))
    rows_path = str(write_jsonl(rows, work / "rows.jsonl"))
    steps = -(-n_rows // args.batch_size)
    params = {ref: sum(p.numel() for p in load_model(ref).parameters())
              for ref in (teacher, student)}

    runners = {
        "ours_live": lambda i: run_ours(teacher, student, rows_path, args.batch_size, lr, warmup,
                                        1, None),
        "ours_cache": lambda i: run_ours(teacher, student, rows_path, args.batch_size, lr,
                                         warmup, 2, str(work / f"cache{i}")),
        "trl_gkd": lambda i: run_trl_gkd(teacher, student, rows, args.batch_size, lr, warmup,
                                         steps, str(work / "trl")),
    }
    rounds = args.rounds or (2 if args.quick else 3)
    all_rounds: dict[str, list[dict]] = {name: [] for name in runners}
    for i in range(rounds):
        for name, runner in runners.items():
            all_rounds[name].append(runner(i))
    results = {}
    for name, runs in all_rounds.items():
        best = dict(max(runs, key=lambda r: r["steps_per_s"]))
        best["cpu_steps_per_s"] = statistics.median(r["cpu_steps_per_s"] for r in runs)
        best["steps_per_s_all_rounds"] = [r["steps_per_s"] for r in runs]
        results[name] = best
    live, cache, trl = (results[k]["steps_per_s"] for k in ("ours_live", "ours_cache", "trl_gkd"))
    cpu = {k: v["cpu_steps_per_s"] for k, v in results.items()}
    report = {
        "teacher": teacher, "student": student, "params": params, "rows": n_rows,
        "batch_size": args.batch_size, "device": "cuda" if torch.cuda.is_available() else "cpu",
        "precision": "32-true", "threads": torch.get_num_threads(), "rounds": rounds,
        "cpu": platform.processor() or platform.machine(),
        "results": results,
        "ratios": {
            "cache_vs_live": cache / live,
            "ours_vs_trl_gkd": live / trl,
            "ours_cache_vs_trl_gkd": cache / trl,
        },
        "cpu_time_ratios": {
            "cache_vs_live": cpu["ours_cache"] / cpu["ours_live"],
            "ours_vs_trl_gkd": cpu["ours_live"] / cpu["trl_gkd"],
            "ours_cache_vs_trl_gkd": cpu["ours_cache"] / cpu["trl_gkd"],
        },
    }
    print(f"teacher {teacher} ({params[teacher] / 1e6:.1f}M) -> student {student} "
          f"({params[student] / 1e6:.1f}M), {n_rows} rows, batch {args.batch_size}, "
          f"{report['threads']} threads, {report['device']}")
    print(f"{'run':<12}{'steps/s':>10}{'tokens/s':>11}{'cpu steps/s':>13}{'timed':>7}")
    for name, r in results.items():
        print(f"{name:<12}{r['steps_per_s']:>10.2f}{r['tokens_per_s']:>11.0f}"
              f"{r['cpu_steps_per_s']:>13.2f}{r['timed_steps']:>7}")
    print("ratios (wall):", {k: round(v, 2) for k, v in report["ratios"].items()})
    print("ratios (cpu): ", {k: round(v, 2) for k, v in report["cpu_time_ratios"].items()})
    print(f"cache: {cache_mib:.2f} MiB on disk" if (cache_mib := results["ours_cache"].get(
        "cache_disk_mib")) is not None else "cache: none")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
