"""SFT training throughput: autotrain_pl vs TRL's SFTTrainer vs a hand-written PyTorch loop.

All three train the same builtin Llama (fp32, CPU by default) on the same generated chat data
with the same batch size, learning rate and optimizer (AdamW), in one process run. Each reports
trained tokens per second: non-padding tokens of the steps after warm-up, divided by their wall
time. We also report peak memory growth (RSS on CPU, allocator peak on CUDA), our MFU against a
measured fp32 matmul peak (Lightning's ThroughputMonitor knows no CPU peak, so we measure one),
and our hardware utilization: the matmul FLOPs we really execute, counted by
``torch.utils.flop_counter``, over the same peak.
Peak memory growth on CPU is RSS growth over the run before it, so later runs can reuse memory the
allocator already holds: compare memory across runs with care.

- ``ours``: ``SFTModule`` + ``ChatDataModule`` through ``lightning.Trainer`` with our defaults
  (length-grouped batches, LM head and last layer only at trained positions, exact step
  normalization, fused AdamW).
- ``trl``: ``trl.SFTTrainer`` on the same rows as conversational prompt/completion pairs,
  completion-only loss, the tokenizer carrying the ChatML template our renderer uses.
- ``handwritten``: a minimal loop: shuffled fixed batches, ``model(**batch).logits``, weighted
  cross-entropy on all positions, backward, AdamW step.

Each runner runs ``--rounds`` times in rotating order and its median round is reported.

Run: ``python benchmarks/sft_throughput.py [--quick]``; writes ``benchmarks/results/sft_throughput.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results" / "sft_throughput.json"
SYSTEM = "You are a careful calculator. Reply with the number only."


class PeakMemory:
    """Peak resident memory growth while the block runs (CUDA: allocator peak)."""

    def __enter__(self):
        self.cuda = torch.cuda.is_available()
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
            return self
        self.base = self.peak = _rss()
        self._running = True
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while self._running:
            self.peak = max(self.peak, _rss())
            time.sleep(0.01)

    def __exit__(self, *exc):
        if self.cuda:
            self.peak = torch.cuda.max_memory_allocated()
        else:
            self._running = False
            self._thread.join()
        self.growth_mb = (self.peak - self.base) / 2**20


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def matmul_peak_gflops(size: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def make_rows(n: int, seed: int) -> list[dict]:
    from autotrain_pl.data import synthetic_rows

    return synthetic_rows(f"synthetic:arithmetic?n={n}&seed={seed}&digits=3&system_prompt={SYSTEM}")


class StepTimer:
    """Times steps after ``warmup`` and counts their non-padding tokens."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.steps, self.tokens, self.seconds, self._start = warmup, 0, 0, 0.0, None

    def start(self) -> None:
        self._start = time.perf_counter()

    def stop(self, tokens: int) -> None:
        elapsed = time.perf_counter() - self._start
        self.steps += 1
        if self.steps > self.warmup:
            self.tokens += tokens
            self.seconds += elapsed

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / max(self.seconds, 1e-9)


def run_ours(model_ref: str, rows_path: str, steps: int, batch_size: int, lr: float, warmup: int):
    import lightning as L

    from autotrain_pl.data import ChatDataModule
    from autotrain_pl.objectives import SFTModule
    from autotrain_pl.objectives.base import count_real_tokens

    timer = StepTimer(warmup)

    class Timing(L.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            timer.start()

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            timer.stop(count_real_tokens(batch))

    torch.manual_seed(0)
    data = ChatDataModule(rows_path, tokenizer=model_ref, chat_format="chatml",
                          batch_size=batch_size, group_by_length=True, seed=0)
    module = SFTModule(model_ref, learning_rate=lr, lr_scheduler="constant", export=False)
    trainer = L.Trainer(accelerator="auto", precision="32-true", max_steps=steps, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[Timing()])
    trainer.fit(module, datamodule=data)
    return timer


def executed_flops_per_token(model_ref: str, rows_path: str, batch_size: int, batches: int = 4) -> float:
    """Matmul FLOPs our SFT step really executes (forward + backward) per non-padding token.

    Counted by ``torch.utils.flop_counter`` on a few real batches, so the skipped LM-head rows and
    last-layer positions are not counted; this gives hardware utilization beside MFU.
    """
    from torch.utils.flop_counter import FlopCounterMode

    from autotrain_pl.data import ChatDataModule
    from autotrain_pl.objectives import SFTModule
    from autotrain_pl.objectives.base import count_real_tokens

    data = ChatDataModule(rows_path, tokenizer=model_ref, chat_format="chatml",
                          batch_size=batch_size, group_by_length=True, seed=0)
    data.setup("fit")
    module = SFTModule(model_ref, export=False)
    module.attach_tokenizer(data.tokenizer, data.renderer)
    flops = tokens = 0
    for index, batch in enumerate(data.train_dataloader()):
        if index == batches:
            break
        with FlopCounterMode(display=False) as counter:
            loss, _ = module.compute_loss(batch)
            loss.backward()
        flops += counter.get_total_flops()
        tokens += count_real_tokens(batch)
    return flops / tokens


def run_trl(model_ref: str, rows: list[dict], steps: int, batch_size: int, lr: float, warmup: int,
            out_dir: str):
    import datasets
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from autotrain_pl.models import load_model, load_tokenizer
    from autotrain_pl.rendering import get_renderer

    tokenizer = load_tokenizer(model_ref)
    tokenizer.chat_template = get_renderer("chatml", tokenizer).chat_template()
    timer = StepTimer(warmup)
    pad = tokenizer.pad_token_id

    class Timing(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            timer.start()

        def on_step_end(self, args, state, control, **kwargs):
            timer.stop(self.tokens)

    timing = Timing()
    dataset = datasets.Dataset.from_list([
        {"prompt": r["messages"][:-1], "completion": r["messages"][-1:]} for r in rows
    ])
    torch.manual_seed(0)
    model = load_model(model_ref)
    config = SFTConfig(output_dir=out_dir, per_device_train_batch_size=batch_size, max_steps=steps,
                       learning_rate=lr, lr_scheduler_type="constant", report_to="none",
                       logging_steps=10**6, save_strategy="no", bf16=False, fp16=False,
                       use_cpu=not torch.cuda.is_available(), dataloader_num_workers=0,
                       disable_tqdm=True, seed=0)
    trainer = SFTTrainer(model=model, args=config, train_dataset=dataset,
                         processing_class=tokenizer, callbacks=[timing])
    original = trainer.training_step

    def counting_step(model, inputs, *args, **kwargs):
        timing.tokens = int((inputs["input_ids"] != pad).sum()) if "attention_mask" not in inputs \
            else int(inputs["attention_mask"].sum())
        return original(model, inputs, *args, **kwargs)

    trainer.training_step = counting_step
    trainer.train()
    return timer


def run_handwritten(model_ref: str, rows_path: str, steps: int, batch_size: int, lr: float,
                    warmup: int):
    from autotrain_pl.data import ChatDataModule
    from autotrain_pl.models import load_model

    device = "cuda" if torch.cuda.is_available() else "cpu"
    data = ChatDataModule(rows_path, tokenizer=model_ref, chat_format="chatml",
                          batch_size=batch_size, seed=0)
    data.setup("fit")
    torch.manual_seed(0)
    model = load_model(model_ref).to(device)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    timer = StepTimer(warmup)
    done = 0
    while done < steps:
        for batch in data.train_dataloader():
            timer.start()
            batch = {k: v.to(device) for k, v in batch.items()}
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            weights = batch["loss_weights"][:, 1:]
            nll = torch.nn.functional.cross_entropy(
                logits[:, :-1].flatten(0, 1), batch["input_ids"][:, 1:].flatten(), reduction="none")
            loss = (nll * weights.flatten()).sum() / weights.sum()
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            timer.stop(int(batch["attention_mask"].sum()))
            done += 1
            if done >= steps:
                break
    return timer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a run of under two minutes")
    parser.add_argument("--model", default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=None,
                        help="runs per runner, median reported (default 3; 1 with --quick)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model_ref = args.model or ("builtin:mini" if args.quick else "builtin:small")
    steps = args.steps or (12 if args.quick else 40)
    warmup, lr = 2, 1e-4
    args.rounds = args.rounds or (1 if args.quick else 3)

    import tempfile

    from autotrain_pl.data import write_jsonl
    from autotrain_pl.models import load_model

    rows = make_rows(steps * args.batch_size + 64, seed=0)
    work = Path(tempfile.mkdtemp(prefix="sft_bench_"))
    rows_path = str(write_jsonl(rows, work / "rows.jsonl"))
    model = load_model(model_ref)
    params = sum(p.numel() for p in model.parameters())
    # MFU counts 6 x non-embedding parameters per token (the PaLM convention): the input
    # embedding is a lookup, not a matmul. We skip LM-head rows at untrained positions, so our
    # model-FLOPs utilization counts work a full forward would do and can exceed hardware use.
    flop_params = params - model.get_input_embeddings().weight.numel()
    del model
    peak = matmul_peak_gflops()

    runners = {
        "ours": lambda: run_ours(model_ref, rows_path, steps, args.batch_size, lr, warmup),
        "trl": lambda: run_trl(model_ref, rows, steps, args.batch_size, lr, warmup, str(work / "trl")),
        "handwritten": lambda: run_handwritten(model_ref, rows_path, steps, args.batch_size, lr,
                                               warmup),
    }
    # The order rotates every round, so drift of a shared machine (thermal, neighbours) does not
    # always hit the same runner; each runner's median round is reported.
    rounds: dict[str, list[dict]] = {name: [] for name in runners}
    names = list(runners)
    for round_index in range(args.rounds):
        for name in names[round_index % len(names):] + names[:round_index % len(names)]:
            with PeakMemory() as memory:
                timer = runners[name]()
            rounds[name].append({"tokens_per_s": timer.tokens_per_s, "timed_steps": timer.steps - warmup,
                                 "timed_tokens": timer.tokens, "peak_memory_growth_mb": memory.growth_mb})
    results = {name: {**sorted(runs, key=lambda r: r["tokens_per_s"])[len(runs) // 2],
                      "rounds_tokens_per_s": [r["tokens_per_s"] for r in runs]}
               for name, runs in rounds.items()}
    ours = results["ours"]["tokens_per_s"]
    achieved = 6 * flop_params * ours / 1e9
    executed = executed_flops_per_token(model_ref, rows_path, args.batch_size) * ours / 1e9
    report = {
        "model": model_ref, "rounds": args.rounds, "params": params, "non_embedding_params": flop_params, "batch_size": args.batch_size, "steps": steps,
        "device": "cuda" if torch.cuda.is_available() else "cpu", "precision": "32-true",
        "matmul_peak_gflops": peak, "ours_gflops": achieved, "ours_mfu": achieved / peak,
        "ours_executed_gflops": executed, "ours_hardware_utilization": executed / peak,
        "results": results,
        "ratios": {
            "ours_vs_trl": ours / results["trl"]["tokens_per_s"],
            "ours_vs_handwritten": ours / results["handwritten"]["tokens_per_s"],
            "ours_vs_trl_per_round": [o["tokens_per_s"] / t["tokens_per_s"]
                                      for o, t in zip(rounds["ours"], rounds["trl"], strict=True)],
        },
    }
    print(f"model {model_ref} ({params / 1e6:.1f}M params), batch {args.batch_size}, "
          f"{steps} steps ({warmup} warm-up), matmul peak {peak:.0f} GFLOP/s")
    print(f"{'run':<12} {'tokens/s':>10} {'peak mem MB':>12}")
    for name, r in results.items():
        print(f"{name:<12} {r['tokens_per_s']:>10.0f} {r['peak_memory_growth_mb']:>12.0f}")
    print(f"ours vs TRL {report['ratios']['ours_vs_trl']:.2f}x, "
          f"vs handwritten {report['ratios']['ours_vs_handwritten']:.2f}x, "
          f"MFU {report['ours_mfu']:.1%} (hardware utilization {report['ours_hardware_utilization']:.1%})")
    per_round = report["ratios"]["ours_vs_trl_per_round"]
    print(f"ours vs TRL per round: {min(per_round):.2f}x to {max(per_round):.2f}x")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
