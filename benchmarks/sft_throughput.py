"""SFT training throughput: autotrain_pl vs TRL's SFTTrainer vs a hand-written PyTorch loop.

All runners train the same builtin Llama (fp32, CPU by default) on the same generated chat data
with the same batch size, ``max_length``, learning rate and optimizer (AdamW), in one process run.
Each reports
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
- ``trl_nogc`` (opt-in via ``--runners``): the same with gradient checkpointing off; TRL 1.x turns
  it on by default, which costs it a second forward per step.
- ``handwritten``: a minimal loop: shuffled fixed batches, ``model(**batch).logits``, weighted
  cross-entropy on all positions, backward, AdamW step.
- ``cli``: what users run: ``aitrain fit --config configs/sft.yaml`` as a subprocess, LoRA off,
  chatml, the same batch size and ``max_length``, the workload's JSONL, no validation, no export,
  the CLI's own defaults otherwise (progress bar, CSV logger, ``last.ckpt``, clipping at 1.0).
  Its step time is the wall-time difference of a long and a short run divided by the step
  difference, so start-up (imports, model build, tokenization, checkpoint write) cancels. Its
  tokens are counted on the same batches, rebuilt here from the same data module and seed.
- ``trl_proc`` / ``trl_nogc_proc``: ``SFTTrainer`` (TRL defaults / gradient checkpointing off)
  timed exactly like ``cli``: each run a fresh process, the per-step time from a long and a short
  run, the tokens those steps held. ``ours_cli_vs_trl_proc`` is the like-for-like ratio of what
  users of either tool get; in-process runners share one long-lived process, whose state (memory
  held by earlier runners, the memory sampler thread) costs every in-process runner alike.

Workloads (``--workload``):

- ``short``: ~33-token arithmetic chats (system prompt, 3-digit question, answer).
- ``mixed``: ~3,000 addition chats whose user turns carry 0-12 seeded filler words before the
  question, so lengths vary and most tokens are untrained prompt (only the answer is trained).

Each runner runs ``--rounds`` times in rotating order and its median round is reported.
``ratios`` holds ``ours_vs_<peer>`` (in-process Lightning) and ``ours_cli_vs_<peer>`` (the
``aitrain fit`` subprocess; compare it with the ``*_proc`` peers) per workload: unsuffixed for ``short``, suffixed ``_mixed`` for
``mixed``.

Run: ``python benchmarks/sft_throughput.py [--quick] [--workload short|mixed|both]``; writes
``benchmarks/results/sft_throughput.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results" / "sft_throughput.json"
REPO = Path(__file__).resolve().parent.parent
SYSTEM = "You are a careful calculator. Reply with the number only."
_DEFAULT_THREADS = torch.get_num_threads()
RUNNERS = ("ours", "trl", "trl_nogc", "handwritten", "cli", "trl_proc", "trl_nogc_proc")
SUBPROCESS_RUNNERS = frozenset({"cli", "trl_proc", "trl_nogc_proc"})
PEERS = ("trl", "trl_nogc", "handwritten", "trl_proc", "trl_nogc_proc")
FILLER = ("please", "kindly", "quickly", "now", "tell", "me", "honestly", "exactly", "friend",
          "today", "again", "if", "you", "can", "so", "well", "then", "just", "really", "okay")


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


def make_mixed_rows(n: int, seed: int) -> list[dict]:
    """Addition chats whose user turns carry 0-12 filler words: varied lengths, long prompts."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        a, b = rng.randrange(100, 1000), rng.randrange(100, 1000)
        filler = " ".join(rng.choice(FILLER) for _ in range(rng.randint(0, 12)))
        question = f"{filler} What is {a} + {b}?".strip()
        rows.append({"messages": [{"role": "system", "content": SYSTEM},
                                  {"role": "user", "content": question},
                                  {"role": "assistant", "content": str(a + b)}]})
    return rows


class StepTimer:
    """Times steps after ``warmup``; counts their non-padding and trained (target) tokens.

    Records wall and process CPU time per step. With ``--threads 1`` CPU time ignores the time
    other processes held the core, so it is the steadier figure on a shared machine.
    """

    def __init__(self, warmup: int) -> None:
        self.warmup, self.steps, self.tokens, self.trained = warmup, 0, 0, 0
        self.per_step: list[tuple[int, int]] = []  # (tokens, trained) of every step
        self.seconds = self.cpu_seconds = 0.0
        self._start = self._cpu_start = None

    def start(self) -> None:
        self._start, self._cpu_start = time.perf_counter(), time.process_time()

    def stop(self, tokens: int, trained: int = 0) -> None:
        elapsed = time.perf_counter() - self._start
        cpu = time.process_time() - self._cpu_start
        self.steps += 1
        self.per_step.append((tokens, trained))
        if self.steps > self.warmup:
            self.tokens += tokens
            self.trained += trained
            self.seconds += elapsed
            self.cpu_seconds += cpu

    def result(self) -> dict:
        seconds = max(self.seconds, 1e-9)
        timed = self.steps - self.warmup
        return {"tokens_per_s": self.tokens / seconds, "trained_tokens_per_s": self.trained / seconds,
                "steps_per_s": timed / seconds, "timed_steps": timed, "timed_tokens": self.tokens,
                "timed_trained_tokens": self.trained,
                "cpu_tokens_per_s": self.tokens / max(self.cpu_seconds, 1e-9),
                "per_step": self.per_step}


def real_tokens(batch) -> int:
    """Non-padding tokens of a batch; packed rows (4-D block masks) count every position."""
    mask = batch.get("attention_mask")
    if mask is not None and mask.dim() == 2:
        return int(mask.sum())
    return batch["input_ids"].numel()


def trained_targets(batch) -> int:
    """Targets that carry loss weight (our batch convention: weight of token t as a target)."""
    weights = batch["loss_weights"][:, 1:] != 0
    mask = batch.get("attention_mask")
    if mask is not None and mask.dim() == 2:
        weights = weights & (mask[:, 1:] > 0)
    return int(weights.sum())


def data_module(model_ref: str, rows_path: str, batch_size: int, max_length: int, **kwargs):
    from autotrain_pl.data import ChatDataModule

    return ChatDataModule(rows_path, tokenizer=model_ref, chat_format="chatml", batch_size=batch_size,
                          max_length=max_length, seed=0, **kwargs)


def run_ours(model_ref: str, rows_path: str, steps: int, batch_size: int, max_length: int, lr: float,
             warmup: int) -> dict:
    import lightning as L

    from autotrain_pl.objectives import SFTModule

    timer = StepTimer(warmup)

    class Timing(L.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            timer.start()

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            timer.stop(real_tokens(batch), trained_targets(batch))

    torch.manual_seed(0)
    data = data_module(model_ref, rows_path, batch_size, max_length, group_by_length=True)
    module = SFTModule(model_ref, learning_rate=lr, lr_scheduler="constant", export=False)
    trainer = L.Trainer(accelerator="auto", precision="32-true", max_steps=steps, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[Timing()])
    trainer.fit(module, datamodule=data)
    return timer.result()


def executed_flops_per_token(model_ref: str, rows_path: str, batch_size: int, max_length: int,
                             batches: int = 4) -> float:
    """Matmul FLOPs our SFT step really executes (forward + backward) per non-padding token.

    Counted by ``torch.utils.flop_counter`` on a few real batches, so the skipped LM-head rows and
    last-layer positions are not counted; this gives hardware utilization beside MFU.
    """
    from torch.utils.flop_counter import FlopCounterMode

    from autotrain_pl.objectives import SFTModule

    data = data_module(model_ref, rows_path, batch_size, max_length, group_by_length=True)
    data.setup("fit")
    module = SFTModule(model_ref, export=False)
    module.attach_tokenizer(data.tokenizer, data.renderer)
    flops = tokens = 0
    for index, batch in enumerate(data.train_dataloader()):
        if index == batches:
            break
        with FlopCounterMode(display=False) as counter:
            out = module.compute_loss(batch)  # a (loss, metrics) pair or a LossOutput
            (out[0] if isinstance(out, tuple) else out.loss_sum).backward()
        flops += counter.get_total_flops()
        tokens += real_tokens(batch)
    return flops / tokens


def run_trl(model_ref: str, rows: list[dict], steps: int, batch_size: int, max_length: int, lr: float,
            warmup: int, out_dir: str, gradient_checkpointing: bool | None = None) -> dict:
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
            timer.stop(self.tokens, self.trained)

    timing = Timing()
    # Conversational prompt/completion rows: TRL's completion-only loss trains the assistant
    # answer (and its end-of-turn token) alone, like our last_assistant_message default.
    dataset = datasets.Dataset.from_list([
        {"prompt": r["messages"][:-1], "completion": r["messages"][-1:]} for r in rows
    ])
    torch.manual_seed(0)
    model = load_model(model_ref)
    config = SFTConfig(output_dir=out_dir, per_device_train_batch_size=batch_size, max_steps=steps,
                       max_length=max_length, completion_only_loss=True,
                       learning_rate=lr, lr_scheduler_type="constant", report_to="none",
                       logging_steps=10**6, save_strategy="no", bf16=False, fp16=False,
                       use_cpu=not torch.cuda.is_available(), dataloader_num_workers=0,
                       disable_tqdm=True, seed=0,
                       # None keeps TRL's default (on in TRL 1.x: a second forward per step).
                       **({} if gradient_checkpointing is None
                          else {"gradient_checkpointing": gradient_checkpointing}))
    trainer = SFTTrainer(model=model, args=config, train_dataset=dataset,
                         processing_class=tokenizer, callbacks=[timing])
    original = trainer.training_step

    def counting_step(model, inputs, *args, **kwargs):
        timing.tokens = int((inputs["input_ids"] != pad).sum()) if "attention_mask" not in inputs \
            else int(inputs["attention_mask"].sum())
        timing.trained = int((inputs["labels"][:, 1:] != -100).sum()) if "labels" in inputs else 0
        return original(model, inputs, *args, **kwargs)

    trainer.training_step = counting_step
    trainer.train()
    return timer.result()


def two_run_result(steps: tuple[int, int], seconds: dict[int, float], cpu: dict[int, float],
                   tokens: int, trained: int) -> dict:
    """Per-step figures from a long and a short run of the same job: start-up cancels."""
    short, long = steps
    # NaN, not an absurd rate, when start-up noise outweighed the extra steps (use more steps).
    delta = seconds[long] - seconds[short] if seconds[long] > seconds[short] else math.nan
    return {"tokens_per_s": tokens / delta, "trained_tokens_per_s": trained / delta,
            "steps_per_s": (long - short) / delta, "timed_steps": long - short,
            "timed_tokens": tokens, "timed_trained_tokens": trained,
            "cpu_tokens_per_s": tokens / (cpu[long] - cpu[short] if cpu[long] > cpu[short]
                                          else math.nan),
            "seconds_short_run": seconds[short], "seconds_long_run": seconds[long],
            "startup_seconds": seconds[short] - short * delta / (long - short)}


def run_trl_subprocess(model_ref: str, rows_path: str, steps: tuple[int, int], batch_size: int,
                       max_length: int, lr: float, work: Path, round_index: int,
                       gradient_checkpointing: bool | None = None) -> dict:
    """``SFTTrainer`` timed as ``run_cli`` times ``aitrain fit``: a fresh process per run, the
    per-step time from a long and a short run, so both sides pay the same process conditions.
    The tokens are the ones the long run's own steps ``short..long-1`` held."""
    short, long = steps
    seconds, cpu, per_step = {}, {}, {}
    for n in (short, long) if round_index % 2 == 0 else (long, short):
        out = work / f"trl_{n}.json"
        command = [sys.executable, __file__, "--child_trl", rows_path, "--child_out", str(out),
                   "--steps", str(n), "--model", model_ref, "--batch_size", str(batch_size),
                   "--max_length", str(max_length), "--child_lr", str(lr)]
        if gradient_checkpointing is not None:
            command += ["--child_gradient_checkpointing", str(gradient_checkpointing).lower()]
        with open(work / f"trl_{n}.log", "w") as log:
            start, used = time.perf_counter(), _children_cpu()
            done = subprocess.run(command, cwd=REPO, env=_cli_env(), stdout=log,
                                  stderr=subprocess.STDOUT, check=False)
            seconds[n], cpu[n] = time.perf_counter() - start, _children_cpu() - used
        if done.returncode != 0:
            raise RuntimeError(f"SFTTrainer child failed; see {work / f'trl_{n}.log'}")
        per_step[n] = json.loads(out.read_text())
    tokens = sum(t for t, _ in per_step[long][short:long])
    trained = sum(t for _, t in per_step[long][short:long])
    return two_run_result(steps, seconds, cpu, tokens, trained)


def trl_child(args) -> None:
    """``--child_trl``: one ``SFTTrainer`` run of ``--steps`` steps; writes its per-step tokens."""
    import tempfile

    rows = [json.loads(line) for line in Path(args.child_trl).read_text().splitlines() if line]
    gradient_checkpointing = (None if args.child_gradient_checkpointing is None
                              else args.child_gradient_checkpointing == "true")
    result = run_trl(args.model, rows, args.steps, args.batch_size, args.max_length,
                     args.child_lr, 0, tempfile.mkdtemp(prefix="trl_child_"),
                     gradient_checkpointing=gradient_checkpointing)
    Path(args.child_out).write_text(json.dumps(result["per_step"]))


def run_handwritten(model_ref: str, rows_path: str, steps: int, batch_size: int, max_length: int,
                    lr: float, warmup: int) -> dict:
    from autotrain_pl.models import load_model

    device = "cuda" if torch.cuda.is_available() else "cpu"
    data = data_module(model_ref, rows_path, batch_size, max_length)
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
            timer.stop(int(batch["attention_mask"].sum()), trained_targets(batch))
            done += 1
            if done >= steps:
                break
    return timer.result()


def aitrain_command() -> list[str]:
    """The ``aitrain`` entry point of this interpreter's environment (else the same via -c)."""
    script = Path(sys.executable).with_name("aitrain")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from autotrain_pl.cli import main; main()"]


def cli_args(model_ref: str, rows_path: str, batch_size: int, max_length: int, steps: int,
             root: str) -> list[str]:
    """``aitrain fit`` on ``configs/sft.yaml``: full fine-tuning, chatml, no validation/export.

    Everything else (batching, clipping, logging, checkpointing, progress bar) is the config's
    and the CLI's own: what a user of the config gets.
    """
    return [
        "fit", "--config", str(REPO / "configs" / "sft.yaml"),
        "--model.init_args.model_name_or_path", model_ref,
        "--model.init_args.lora", "null",
        "--model.init_args.export", "false",
        "--data.init_args.data_path", rows_path,
        "--data.init_args.valid_path", "null",
        "--data.init_args.valid_fraction", "0",
        "--data.init_args.chat_format", "chatml",
        "--data.init_args.batch_size", str(batch_size),
        "--data.init_args.max_length", str(max_length),
        "--data.init_args.seed", "0",
        "--trainer.callbacks=[]",  # no generation eval callbacks: validation off
        "--trainer.limit_val_batches", "0",
        "--trainer.val_check_interval", "1.0",
        "--trainer.max_steps", str(steps),
        "--trainer.default_root_dir", root,
    ]


def _cli_env() -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    if torch.get_num_threads() != _DEFAULT_THREADS:  # --threads: the child uses as many
        env["OMP_NUM_THREADS"] = str(torch.get_num_threads())
    return env


_CLI_DATA_CONFIG: dict[tuple, dict] = {}


def cli_data_config(model_ref: str, rows_path: str, batch_size: int, max_length: int) -> dict:
    """The data module arguments ``aitrain fit`` resolves for the runs (``--print_config``).

    Resolved once per process (a CLI start-up costs seconds); only ``data_path`` differs between
    workloads.
    """
    key = (model_ref, batch_size, max_length)
    if key not in _CLI_DATA_CONFIG:
        import yaml

        args = cli_args(model_ref, rows_path, batch_size, max_length, 1, os.devnull)
        done = subprocess.run(aitrain_command() + args + ["--print_config"], cwd=REPO, env=_cli_env(),
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"aitrain fit --print_config failed:\n{done.stderr[-3000:]}")
        config = yaml.safe_load(done.stdout)
        config = config.get("fit", config)
        _CLI_DATA_CONFIG[key] = dict(config["data"].get("init_args") or {})
    init_args = dict(_CLI_DATA_CONFIG[key])
    init_args["data_path"] = rows_path
    init_args["tokenizer"] = model_ref  # linked from the model reference
    return init_args


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_cli(args: list[str], log_path: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one ``aitrain`` run as a subprocess (raises if it fails)."""
    env = _cli_env()
    with open(log_path, "w") as log:
        start, cpu = time.perf_counter(), _children_cpu()
        done = subprocess.run(aitrain_command() + args, cwd=REPO, env=env, stdout=log,
                              stderr=subprocess.STDOUT, check=False)
        seconds, cpu = time.perf_counter() - start, _children_cpu() - cpu
    if done.returncode != 0:
        raise RuntimeError(f"aitrain fit failed ({done.returncode}); see {log_path}:\n"
                           + log_path.read_text()[-3000:])
    return seconds, cpu


def cli_batch_tokens(model_ref: str, rows_path: str, batch_size: int, max_length: int,
                     first: int, stop: int) -> tuple[int, int]:
    """Non-padding and trained tokens of the CLI's batches ``first..stop-1``.

    Rebuilt here from the data module arguments the CLI resolves, so the same seed and sampler
    (length-grouped or not, as the config says) give the same batches.
    """
    from autotrain_pl.data import ChatDataModule

    data = ChatDataModule(**cli_data_config(model_ref, rows_path, batch_size, max_length))
    tokens = trained = 0
    for index, batch in enumerate(data.train_dataloader()):
        if index >= stop:
            break
        if index >= first:
            tokens += real_tokens(batch)
            trained += trained_targets(batch)
    return tokens, trained


def run_cli(model_ref: str, rows_path: str, steps: tuple[int, int], batch_size: int,
            max_length: int, work: Path, round_index: int, batch_tokens: tuple[int, int]) -> dict:
    """Per-step time of ``aitrain fit`` from a long and a short run, start-up cancelled."""
    short, long = steps
    seconds, cpu = {}, {}
    # Alternate which run goes first, so drift of a shared machine does not favour one length.
    for n in (short, long) if round_index % 2 == 0 else (long, short):
        root = work / f"cli_{n}"
        shutil.rmtree(root, ignore_errors=True)
        seconds[n], cpu[n] = time_cli(
            cli_args(model_ref, rows_path, batch_size, max_length, n, str(root)), work / f"cli_{n}.log")
        shutil.rmtree(root, ignore_errors=True)
    return two_run_result(steps, seconds, cpu, *batch_tokens)


def run_workload(name: str, rows: list[dict], args, model_ref: str, steps: int, cli_steps,
                 warmup: int, lr: float, work: Path, runner_names: list[str]) -> dict:
    from autotrain_pl.data import write_jsonl

    work = work / name
    work.mkdir(parents=True, exist_ok=True)
    rows_path = str(write_jsonl(rows, work / "rows.jsonl"))
    bs, ml = args.batch_size, args.max_length
    runners = {
        "ours": lambda r: run_ours(model_ref, rows_path, steps, bs, ml, lr, warmup),
        "trl": lambda r: run_trl(model_ref, rows, steps, bs, ml, lr, warmup, str(work / "trl")),
        "trl_nogc": lambda r: run_trl(model_ref, rows, steps, bs, ml, lr, warmup, str(work / "trl"),
                                      gradient_checkpointing=False),
        "handwritten": lambda r: run_handwritten(model_ref, rows_path, steps, bs, ml, lr, warmup),
    }
    for runner, checkpointing in (("trl_proc", None), ("trl_nogc_proc", False)):
        runners[runner] = (lambda r, gc=checkpointing: run_trl_subprocess(
            model_ref, rows_path, cli_steps, bs, ml, lr, work, r, gradient_checkpointing=gc))
    if "cli" in runner_names:
        tokens = cli_batch_tokens(model_ref, rows_path, bs, ml, *cli_steps)
        runners["cli"] = lambda r: run_cli(model_ref, rows_path, cli_steps, bs, ml, work, r, tokens)
    runners = {n: runners[n] for n in runner_names}
    # The order rotates every round, so drift of a shared machine (thermal, neighbours) does not
    # always hit the same runner; each runner's median round is reported.
    rounds: dict[str, list[dict]] = {n: [] for n in runners}
    names = list(runners)
    for round_index in range(args.rounds):
        shift = round_index % len(names)
        for runner in names[shift:] + names[:shift]:
            with PeakMemory() as memory:
                result = runners[runner](round_index)
            result.pop("per_step", None)
            # Subprocess runners: this process does not see their memory.
            result["peak_memory_growth_mb"] = None if runner in SUBPROCESS_RUNNERS \
                else memory.growth_mb
            rounds[runner].append(result)
            print(f"  [{name}] round {round_index + 1} {runner}: "
                  f"{result['tokens_per_s']:.0f} tokens/s, {result['steps_per_s']:.2f} steps/s",
                  flush=True)
    results = {n: {**sorted(runs, key=lambda r: r["tokens_per_s"])[len(runs) // 2],
                   "rounds_tokens_per_s": [r["tokens_per_s"] for r in runs]}
               for n, runs in rounds.items()}
    ratios = {}
    for ours, label in (("ours", "ours"), ("cli", "ours_cli")):
        for peer in PEERS:
            if ours in results and peer in results:
                ratios[f"{label}_vs_{peer}"] = (results[ours]["tokens_per_s"]
                                                / results[peer]["tokens_per_s"])
                ratios[f"{label}_vs_{peer}_per_round"] = [
                    o["tokens_per_s"] / p["tokens_per_s"]
                    for o, p in zip(rounds[ours], rounds[peer], strict=True)]
    if "ours" in results and "cli" in results:
        ratios["ours_cli_vs_ours"] = results["cli"]["tokens_per_s"] / results["ours"]["tokens_per_s"]
    # Process CPU time: the steadier basis on a busy machine, but only with --threads 1 (several
    # threads count idle spinning too).
    cpu = {n: statistics.median(r["cpu_tokens_per_s"] for r in runs) for n, runs in rounds.items()}
    cpu_ratios = {f"{label}_vs_{peer}": cpu[ours] / cpu[peer]
                  for ours, label in (("ours", "ours"), ("cli", "ours_cli"))
                  for peer in PEERS if ours in cpu and peer in cpu}
    lengths = [len(r["messages"][1]["content"].split()) for r in rows]
    report = {"rows": len(rows), "user_words_min": min(lengths), "user_words_max": max(lengths),
              "results": results, "ratios": ratios, "cpu_time_ratios": cpu_ratios}
    if "ours" in results:
        report["ours_executed_flops_per_token"] = executed_flops_per_token(model_ref, rows_path, bs, ml)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a run of under two minutes")
    parser.add_argument("--model", default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--cli_steps", type=int, nargs=2, default=None, metavar=("SHORT", "LONG"),
                        help="max_steps of the two aitrain runs (default 4 24; 2 22 with --quick)")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--max_length", type=int, default=128)
    parser.add_argument("--workload", choices=("short", "mixed", "both"), default="both")
    parser.add_argument("--mixed_rows", type=int, default=None,
                        help="rows of the mixed workload (default 3000; 640 with --quick)")
    parser.add_argument("--runners", default="ours,trl,handwritten,cli,trl_proc,trl_nogc_proc",
                        help=f"comma-separated subset of {','.join(RUNNERS)} (*_nogc: SFTTrainer "
                             "with gradient checkpointing off, not TRL's default; *_proc: timed "
                             "in fresh processes like cli)")
    parser.add_argument("--child_trl", help=argparse.SUPPRESS)
    parser.add_argument("--child_out", help=argparse.SUPPRESS)
    parser.add_argument("--child_lr", type=float, default=1e-4, help=argparse.SUPPRESS)
    parser.add_argument("--child_gradient_checkpointing", choices=("true", "false"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=None,
                        help="runs per runner, median reported (default 3; 1 with --quick)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads here and in the aitrain subprocess")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where the JSON goes")
    args = parser.parse_args()
    if args.child_trl:
        trl_child(args)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    model_ref = args.model or ("builtin:mini" if args.quick else "builtin:small")
    steps = args.steps or (10 if args.quick else 40)
    cli_steps = tuple(args.cli_steps or ((2, 22) if args.quick else (4, 24)))
    if not 0 < cli_steps[0] < cli_steps[1]:
        parser.error("--cli_steps SHORT LONG needs 0 < SHORT < LONG")
    warmup, lr = 2, 1e-4
    args.rounds = args.rounds or (1 if args.quick else 3)
    mixed_rows = args.mixed_rows or (640 if args.quick else 3000)
    runner_names = [n.strip() for n in args.runners.split(",") if n.strip()]
    unknown = set(runner_names) - set(RUNNERS)
    if unknown:
        parser.error(f"unknown runners {sorted(unknown)}")

    import tempfile

    from autotrain_pl.models import load_model

    # Enough rows that no run (in-process or CLI) reaches the end of its first epoch.
    rows_needed = max(steps, cli_steps[1]) * args.batch_size + 64
    workloads = {
        "short": lambda: make_rows(rows_needed, seed=0),
        "mixed": lambda: make_mixed_rows(max(mixed_rows, rows_needed), seed=0),
    }
    chosen = list(workloads) if args.workload == "both" else [args.workload]
    work = Path(tempfile.mkdtemp(prefix="sft_bench_"))
    model = load_model(model_ref)
    params = sum(p.numel() for p in model.parameters())
    # MFU counts 6 x non-embedding parameters per token (the PaLM convention): the input
    # embedding is a lookup, not a matmul. We skip LM-head rows at untrained positions, so our
    # model-FLOPs utilization counts work a full forward would do and can exceed hardware use.
    flop_params = params - model.get_input_embeddings().weight.numel()
    del model
    peak = matmul_peak_gflops()
    print(f"model {model_ref} ({params / 1e6:.1f}M params), batch {args.batch_size}, max_length "
          f"{args.max_length}, {steps} steps ({warmup} warm-up), aitrain fit {cli_steps[0]} vs "
          f"{cli_steps[1]} steps, matmul peak {peak:.0f} GFLOP/s, torch threads "
          f"{torch.get_num_threads()}", flush=True)

    report = {
        "model": model_ref, "rounds": args.rounds, "params": params, "non_embedding_params": flop_params,
        "batch_size": args.batch_size, "max_length": args.max_length, "steps": steps,
        "cli_steps": list(cli_steps), "device": "cuda" if torch.cuda.is_available() else "cpu",
        "precision": "32-true", "torch_threads": torch.get_num_threads(),
        "load_average_before": os.getloadavg()[0], "cpu_count": os.cpu_count(),
        "matmul_peak_gflops": peak, "workloads": {}, "ratios": {}, "cpu_time_ratios": {},
    }
    if report["load_average_before"] > (os.cpu_count() or 1) - 0.5:
        print(f"warning: load average {report['load_average_before']:.1f} on {os.cpu_count()} "
              "cores; other processes distort wall times (compare cpu-time ratios with --threads 1)")
    for name in chosen:
        result = run_workload(name, workloads[name](), args, model_ref, steps, cli_steps, warmup, lr,
                              work, runner_names)
        if "ours" in result["results"]:
            ours = result["results"]["ours"]["tokens_per_s"]
            result["ours_gflops"] = 6 * flop_params * ours / 1e9
            result["ours_mfu"] = result["ours_gflops"] / peak
            result["ours_executed_gflops"] = result["ours_executed_flops_per_token"] * ours / 1e9
            result["ours_hardware_utilization"] = result["ours_executed_gflops"] / peak
        report["workloads"][name] = result
        suffix = "" if name == "short" else f"_{name}"
        report["ratios"].update({f"{key}{suffix}" if not key.endswith("_per_round")
                                 else key.replace("_per_round", f"{suffix}_per_round"): value
                                 for key, value in result["ratios"].items()})
        report["cpu_time_ratios"].update({f"{key}{suffix}": value
                                          for key, value in result["cpu_time_ratios"].items()})
        if name == "short":  # the README's figures keep their top-level places
            for key in ("results", "ours_gflops", "ours_mfu", "ours_executed_gflops",
                        "ours_hardware_utilization"):
                if key in result:
                    report[key] = result[key]

    for name, result in report["workloads"].items():
        print(f"\n[{name}] {result['rows']} rows, user turns of {result['user_words_min']}-"
              f"{result['user_words_max']} words")
        print(f"{'run':<12} {'tokens/s':>10} {'trained/s':>10} {'steps/s':>8} {'tokens/cpu-s':>13} "
              f"{'peak mem MB':>12}")
        for runner, r in result["results"].items():
            memory = "-" if r["peak_memory_growth_mb"] is None else f"{r['peak_memory_growth_mb']:.0f}"
            print(f"{runner:<12} {r['tokens_per_s']:>10.0f} {r['trained_tokens_per_s']:>10.0f} "
                  f"{r['steps_per_s']:>8.2f} {r['cpu_tokens_per_s']:>13.0f} {memory:>12}")
        if "cli" in result["results"]:
            cli = result["results"]["cli"]
            print(f"aitrain fit: {cli['seconds_short_run']:.1f} s ({cli_steps[0]} steps) vs "
                  f"{cli['seconds_long_run']:.1f} s ({cli_steps[1]} steps), start-up "
                  f"{cli['startup_seconds']:.1f} s")
        for key, value in result["ratios"].items():
            if key.endswith("_per_round"):
                print(f"  {key}: {', '.join(f'{v:.2f}x' for v in value)}")
            else:
                print(f"  {key}: {value:.2f}x")
        print("  cpu-time ratios: " + ", ".join(f"{k} {v:.2f}x"
                                                for k, v in result["cpu_time_ratios"].items()))
        if "ours_mfu" in result:
            print(f"  ours MFU {result['ours_mfu']:.1%} (hardware utilization "
                  f"{result['ours_hardware_utilization']:.1%})")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
