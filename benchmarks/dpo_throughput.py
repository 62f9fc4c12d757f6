"""DPO training throughput: our DPOModule vs TRL 1.16's DPOTrainer, in one process run.

Both sides train the same builtin Llama (``builtin:small``, fp32, CPU by default) with the sigmoid
DPO loss (beta 0.1) on the same ``synthetic:preference`` pairs rendered with ChatML, with the same
batch size (pairs), learning rate, constant schedule, fused AdamW (no weight decay), gradient
clipping at 1.0 (TRL's default; ``gradient_clip_val=1.0`` on our Trainer) and the same number of
optimizer steps, of which the same first ``--warmup`` are not timed. ``max_length`` is far above
the longest pair, so nothing truncates.

Two settings, each run by both sides:

- ``precompute``: reference log-probabilities computed once before training. Ours:
  ``precompute_ref_log_probs=True`` with a fresh ``ref_cache_dir`` (a temp dir per run, so the
  pass really runs); TRL: ``precompute_ref_log_probs=True`` (a fresh dataset fingerprint per run,
  so ``datasets`` does not reuse an earlier run's cache file). The pass is NOT in the step times;
  its wall time is reported separately (``precompute_s``; TRL's includes its ``hash_module`` of
  the model, which names its cache).
- ``live``: a frozen reference copy scored every step. Ours by default (``FrozenModel.copy``);
  TRL creates its own ``ref_model`` from the policy's config path (the builtin's cache folder),
  as it does for a user who passes none.

Runners: ``ours`` (``lightning.Trainer(accelerator="cpu", precision="32-true")``, no logger, no
checkpointing, ``export=False``, our default packed pair layout: prompt encoded once, 4-D mask),
``trl`` (``DPOTrainer`` with its defaults, i.e. gradient checkpointing ON) and ``trl_nogc``
(``gradient_checkpointing=False``), each per setting: ``ours_pre``, ``trl_pre``,
``trl_nogc_pre``, ``ours_live``, ``trl_live``, ``trl_nogc_live``.

Why in-process ``Trainer.fit`` / ``DPOTrainer.train()`` and not fresh subprocesses (as
sft_throughput's ``cli``/``trl_proc``): the question is the speed of a training step, and the
precompute pass must be cut out of it; per-step hooks inside the process give exactly the steps,
while the two-run subtraction of subprocess timing would fold the precompute (which scales with
the data, not the steps) and start-up noise into it. Start-up is not what DPO users wait on.

Timing: the wall (and process CPU) time between the ends of consecutive optimizer steps
(``on_train_batch_end`` / ``on_step_end``), so each interval holds everything a step costs:
fetching and collating the batch (our 4-D mask included), the reference forward (live), the
policy forward/backward, clipping and the optimizer step. The first ``--warmup`` steps are left
out. A runner's figure is its MEDIAN step time (spikes from other processes do not move it);
``pairs_per_s`` = batch size / median step; ``mean_pairs_per_s`` uses the mean instead. Runners
rotate order every round; each runner's median round is reported. ``ratios``: ours / peer pairs
per second, higher is better (``ours_vs_trl_<setting>``, ``ours_vs_trl_nogc_<setting>``);
``cpu_time_ratios`` the same from median process CPU time per step (steadier on a busy machine
with ``--threads 1``).

Data: TRL 1.16's ``_prepare_dataset`` always re-tokenizes (it needs ``prompt``/``chosen``/
``rejected``; pre-tokenized ``prompt_ids`` columns are not passed through), so TRL gets the rows
as conversational messages, its tokenizer carrying the ChatML template of our renderer. Every TRL
run checks that its tokenized ``prompt_ids``/``chosen_ids``/``rejected_ids`` equal ours
(``ChatDataModule(...).train_dataset``) row by row (``tokens_identical``).

    python benchmarks/dpo_throughput.py --quick   # under ~3 minutes on 2 CPU cores
    python benchmarks/dpo_throughput.py           # ~6-8 minutes

Writes ``benchmarks/results/dpo_throughput.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TQDM_DISABLE", "1")

import torch  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "dpo_throughput.json"
SETTINGS = ("pre", "live")
SIDES = ("ours", "trl", "trl_nogc")
PEERS = ("trl", "trl_nogc")
BETA = 0.1
_TRL_RUNS = [0]  # TRL runs so far (fresh dataset fingerprints)


class StepTimer:
    """Wall and CPU time between the ends of consecutive steps; the first ``warmup`` steps (and
    the interval before step 1, which holds set-up) are left out."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.steps = warmup, 0
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self._last: tuple[float, float] | None = None

    def step_end(self) -> None:
        now = (time.perf_counter(), time.process_time())
        self.steps += 1
        if self.steps > self.warmup and self._last is not None:
            self.wall.append(now[0] - self._last[0])
            self.cpu.append(now[1] - self._last[1])
        self._last = now

    def summary(self, batch_size: int) -> dict:
        if not self.wall:
            raise RuntimeError(f"no timed steps ({self.steps} steps, {self.warmup} warm-up)")
        wall, cpu = statistics.median(self.wall), statistics.median(self.cpu)
        return {"pairs_per_s": batch_size / wall, "mean_pairs_per_s": batch_size / statistics.mean(self.wall),
                "cpu_pairs_per_s": batch_size / cpu, "median_step_s": wall,
                "mean_step_s": statistics.mean(self.wall), "min_step_s": min(self.wall),
                "max_step_s": max(self.wall), "median_cpu_step_s": cpu,
                "steps": self.steps, "timed_steps": len(self.wall)}


def data_module(model_ref: str, data_path: str, batch_size: int, max_length: int):
    from autotrain_pl.data import ChatDataModule

    return ChatDataModule(data_path, tokenizer=model_ref, chat_format="chatml",
                          batch_size=batch_size, max_length=max_length, seed=0)


def run_ours(model_ref: str, data_path: str, steps: int, batch_size: int, max_length: int,
             lr: float, warmup: int, precompute: bool, cache_dir: str | None) -> dict:
    import lightning as L

    from autotrain_pl.objectives import DPOModule

    timer = StepTimer(warmup)
    reference_forwards = [0, 0]  # in timed steps, total

    class Timing(L.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            self.forwards = module.reference.frozen.forward_calls

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            timer.step_end()
            calls = module.reference.frozen.forward_calls - self.forwards
            reference_forwards[1] += calls
            if timer.steps > warmup:
                reference_forwards[0] += calls

    torch.manual_seed(0)
    data = data_module(model_ref, data_path, batch_size, max_length)
    extra = {"precompute_ref_log_probs": True, "ref_cache_dir": cache_dir} if precompute else {}
    module = DPOModule(model_ref, loss_type="sigmoid", beta=BETA, learning_rate=lr,
                       lr_scheduler="constant", export=False, **extra)
    fill_seconds = [0.0]
    original_fill = module.reference.fill

    def timed_fill(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original_fill(*args, **kwargs)
        finally:
            fill_seconds[0] += time.perf_counter() - start

    module.reference.fill = timed_fill
    trainer = L.Trainer(accelerator="cpu", precision="32-true", max_steps=steps, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, gradient_clip_val=1.0,
                        num_sanity_val_steps=0, callbacks=[Timing()])
    trainer.fit(module, datamodule=data)
    result = timer.summary(batch_size)
    result["optimizer_steps"] = trainer.global_step
    result["reference_forwards_timed"], result["reference_forwards_total"] = reference_forwards
    if precompute:
        result["precompute_s"] = fill_seconds[0]
    return result


def trl_rows(rows: list[dict], run_index: int) -> list[dict]:
    """Conversational prompt/chosen/rejected rows; ``bench_run`` (unique per run) only changes
    the dataset's fingerprint, so TRL never reuses an earlier run's precompute cache file."""
    return [{"prompt": [{"role": "user", "content": r["prompt"]}],
             "chosen": [{"role": "assistant", "content": r["chosen"]}],
             "rejected": [{"role": "assistant", "content": r["rejected"]}],
             "bench_run": run_index} for r in rows]


def run_trl(model_ref: str, rows: list[dict], ours_ids: dict[str, list], steps: int,
            batch_size: int, max_length: int, lr: float, warmup: int, precompute: bool,
            out_dir: str, gradient_checkpointing: bool | None) -> dict:
    import datasets
    import trl.trainer.dpo_trainer as dpo_module
    from transformers import PrinterCallback, TrainerCallback
    from trl import DPOConfig, DPOTrainer

    from autotrain_pl.models import load_model, load_tokenizer
    from autotrain_pl.rendering import get_renderer

    tokenizer = load_tokenizer(model_ref)
    tokenizer.chat_template = get_renderer("chatml", tokenizer).chat_template()
    timer = StepTimer(warmup)
    precompute_seconds = [0.0]

    class Timing(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            timer.step_end()

    def timed(fn):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                precompute_seconds[0] += time.perf_counter() - start
        return wrapper

    class TimedDPOTrainer(DPOTrainer):
        def _precompute_ref_logps(self, *args, **kwargs):
            return timed(super()._precompute_ref_logps)(*args, **kwargs)

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # gradient_checkpointing's new name
        config = DPOConfig(
            output_dir=out_dir, per_device_train_batch_size=batch_size, max_steps=steps,
            max_length=max_length, beta=BETA, loss_type="sigmoid", learning_rate=lr,
            lr_scheduler_type="constant", weight_decay=0.0, max_grad_norm=1.0,
            report_to="none", logging_steps=10**6, save_strategy="no", bf16=False, fp16=False,
            use_cpu=not torch.cuda.is_available(), dataloader_num_workers=0, disable_tqdm=True,
            seed=0, precompute_ref_log_probs=precompute,
            # None keeps TRL's default (on in TRL 1.x: a second policy forward per step).
            **({} if gradient_checkpointing is None
               else {"gradient_checkpointing": gradient_checkpointing}))
    _TRL_RUNS[0] += 1
    dataset = datasets.Dataset.from_list(trl_rows(rows, _TRL_RUNS[0]))
    original_hash = dpo_module.hash_module
    dpo_module.hash_module = timed(original_hash)  # names TRL's precompute cache: part of it
    try:
        trainer = TimedDPOTrainer(model=load_model(model_ref), args=config, train_dataset=dataset,
                                  processing_class=tokenizer, callbacks=[Timing()])
    finally:
        dpo_module.hash_module = original_hash
    trainer.remove_callback(PrinterCallback)  # no metrics dict printed at the end
    prepared = trainer.train_dataset
    identical = all(prepared[column] == ours_ids[column] for column in ours_ids)
    trainer.train()
    result = timer.summary(batch_size)
    result["optimizer_steps"] = trainer.state.global_step
    result["tokens_identical"] = identical
    result["gradient_checkpointing"] = bool(trainer.args.gradient_checkpointing)
    result["has_ref_model"] = trainer.ref_model is not None
    if precompute:
        result["precompute_s"] = precompute_seconds[0]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a run of under ~3 minutes")
    parser.add_argument("--model", default="builtin:small")
    parser.add_argument("--steps", type=int, default=None,
                        help="optimizer steps per run, warm-up included (default 20; 10 quick)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first steps")
    parser.add_argument("--batch_size", type=int, default=16, help="pairs per step")
    parser.add_argument("--max_length", type=int, default=512)
    parser.add_argument("--digits", type=int, default=2, help="of the synthetic:preference sums")
    parser.add_argument("--rounds", type=int, default=None, help="default 3; 1 with --quick")
    parser.add_argument("--settings", default="pre,live", help="comma-separated: pre, live")
    parser.add_argument("--sides", default="ours,trl,trl_nogc",
                        help="comma-separated: ours, trl (TRL defaults), trl_nogc")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's, i.e. the core count)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    threads = args.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    steps = args.steps or (10 if args.quick else 20)
    rounds = args.rounds or (1 if args.quick else 3)
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    if set(settings) - set(SETTINGS) or set(sides) - set(SIDES):
        parser.error(f"--settings from {SETTINGS}, --sides from {SIDES}")
    if steps <= args.warmup + 1:
        parser.error("--steps must exceed --warmup + 1")

    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    import logging

    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "autotrain_pl"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*gradient_checkpointing.*is deprecated.*")

    import trl

    from autotrain_pl.data import synthetic_rows
    from autotrain_pl.models import load_model

    # One epoch exactly: both sides precompute the same pairs and no run reaches a second epoch.
    n_rows = steps * args.batch_size
    data_path = f"synthetic:preference?n={n_rows}&seed=0&digits={args.digits}"
    rows = synthetic_rows(data_path)
    ours_data = data_module(args.model, data_path, args.batch_size, args.max_length)
    ours_data.setup("fit")
    ours_ids = {c: ours_data.train_dataset[c] for c in ("prompt_ids", "chosen_ids", "rejected_ids")}
    if len(ours_ids["prompt_ids"]) != n_rows:
        raise RuntimeError(f"our data module kept {len(ours_ids['prompt_ids'])} of {n_rows} pairs")
    lengths = [len(p) + len(c) + len(r) for p, c, r in zip(*ours_ids.values(), strict=True)]
    trl_lengths = [len(p) + max(len(c), len(r)) for p, c, r in zip(*ours_ids.values(), strict=True)]
    if max(trl_lengths) > args.max_length:
        raise RuntimeError(f"--max_length {args.max_length} would truncate ({max(trl_lengths)})")
    params = sum(p.numel() for p in load_model(args.model).parameters())
    work = Path(tempfile.mkdtemp(prefix="dpo_bench_"))

    def make(side: str, setting: str):
        pre = setting == "pre"
        if side == "ours":
            return lambda r: run_ours(args.model, data_path, steps, args.batch_size,
                                      args.max_length, 1e-6, args.warmup, pre,
                                      str(work / f"ref_cache_{setting}_{r}") if pre else None)
        return lambda r: run_trl(args.model, rows, ours_ids, steps, args.batch_size,
                                 args.max_length, 1e-6, args.warmup, pre, str(work / "trl"),
                                 None if side == "trl" else False)

    runners = {f"{side}_{setting}": make(side, setting) for setting in settings for side in sides}
    load = os.getloadavg()[0]
    print(f"model {args.model} ({params / 1e6:.1f}M params), {n_rows} pairs "
          f"(prompt+chosen+rejected {min(lengths)}-{max(lengths)} tokens), batch {args.batch_size} "
          f"pairs, {steps} steps ({args.warmup} warm-up), {rounds} round(s), {threads} threads, "
          f"load average {load:.1f} on {os.cpu_count()} cores, trl {trl.__version__}", flush=True)
    if load > (os.cpu_count() or 1) - 0.5:
        print("warning: the machine is busy; wall times are noisy (cpu-time ratios with "
              "--threads 1 are steadier)", flush=True)

    all_rounds: dict[str, list[dict]] = {name: [] for name in runners}
    names = list(runners)
    started = time.perf_counter()
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            torch.set_num_threads(threads)
            result = runners[name](round_index)
            all_rounds[name].append(result)
            extra = f", precompute {result['precompute_s']:.1f} s" if "precompute_s" in result else ""
            print(f"  round {round_index + 1} {name}: {result['pairs_per_s']:.1f} pairs/s "
                  f"(median step {result['median_step_s'] * 1000:.0f} ms{extra})", flush=True)
    results = {}
    for name, runs in all_rounds.items():
        chosen = dict(sorted(runs, key=lambda r: r["pairs_per_s"])[len(runs) // 2])
        chosen["cpu_pairs_per_s"] = statistics.median(r["cpu_pairs_per_s"] for r in runs)
        chosen["pairs_per_s_all_rounds"] = [r["pairs_per_s"] for r in runs]
        if "precompute_s" in chosen:
            chosen["precompute_s_all_rounds"] = [r["precompute_s"] for r in runs]
        results[name] = chosen
    ratios, cpu_ratios = {}, {}
    for setting in settings:
        ours = results.get(f"ours_{setting}")
        for peer in PEERS:
            other = results.get(f"{peer}_{setting}")
            if ours and other:
                key = f"ours_vs_{peer}_{setting}"
                ratios[key] = ours["pairs_per_s"] / other["pairs_per_s"]
                ratios[f"{key}_per_round"] = [
                    o["pairs_per_s"] / p["pairs_per_s"]
                    for o, p in zip(all_rounds[f"ours_{setting}"], all_rounds[f"{peer}_{setting}"],
                                    strict=True)]
                cpu_ratios[key] = ours["cpu_pairs_per_s"] / other["cpu_pairs_per_s"]
    for side in sides:
        if f"{side}_pre" in results and f"{side}_live" in results:
            ratios[f"{side}_pre_vs_live"] = (results[f"{side}_pre"]["pairs_per_s"]
                                             / results[f"{side}_live"]["pairs_per_s"])
    report = {
        "model": args.model, "params": params, "pairs": n_rows, "data": data_path,
        "chat_format": "chatml", "batch_size_pairs": args.batch_size, "steps": steps,
        "warmup_steps": args.warmup, "max_length": args.max_length, "rounds": rounds,
        "quick": args.quick, "command": " ".join(sys.argv[1:]), "loss_type": "sigmoid", "beta": BETA, "learning_rate": 1e-6,
        "optimizer": "fused AdamW, weight decay 0, constant lr, clip 1.0",
        "pair_tokens_min_max": [min(lengths), max(lengths)],
        "device": "cuda" if torch.cuda.is_available() else "cpu", "precision": "32-true",
        "torch_threads": threads, "cpu_count": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(), "load_average_before": load,
        "torch": torch.__version__, "trl": trl.__version__, "transformers": transformers.__version__,
        "wall_seconds": time.perf_counter() - started,
        "results": results, "ratios": ratios, "cpu_time_ratios": cpu_ratios,
    }

    print(f"\n{'run':<15}{'pairs/s':>9}{'mean p/s':>10}{'cpu p/s':>9}{'step ms':>9}"
          f"{'timed':>7}{'precompute s':>14}")
    for name, r in results.items():
        pre = f"{r['precompute_s']:.2f}" if "precompute_s" in r else "-"
        print(f"{name:<15}{r['pairs_per_s']:>9.1f}{r['mean_pairs_per_s']:>10.1f}"
              f"{r['cpu_pairs_per_s']:>9.1f}{r['median_step_s'] * 1000:>9.0f}{r['timed_steps']:>7}"
              f"{pre:>14}")
    for key, value in ratios.items():
        if key.endswith("_per_round"):
            print(f"  {key}: {', '.join(f'{v:.2f}x' for v in value)}")
        else:
            print(f"  {key}: {value:.2f}x")
    print("  cpu-time ratios: " + ", ".join(f"{k} {v:.2f}x" for k, v in cpu_ratios.items()))
    mismatched = [n for n, r in results.items() if r.get("tokens_identical") is False]
    if mismatched:
        print(f"warning: TRL tokenized differently from us in {mismatched}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output} ({report['wall_seconds']:.0f} s of runs)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
