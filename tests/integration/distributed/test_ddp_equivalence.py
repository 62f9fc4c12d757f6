"""DDP on two CPU processes (gloo) trains exactly as one process over the same global batches.

Two ranks with ``batch_size`` B each take global batches 2k and 2k+1 at step k (the batch
samplers shard whole batches); one process with batch size B and ``accumulate_grad_batches=2``
takes the same two. The step normalizes by the weighted tokens (or pairs) of the whole step,
summed over micro-batches and ranks, so loss and weights must agree to fp32 tolerance.

The ranks are started by ``torchrun``, as the README launches them, once as one node with two
processes and once as two "nodes" on loopback (``--nnodes 2``, a node rank each). One rank
process runs all objectives in a row (``rank_runner.py``), so the imports are paid once.
"""

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from autotrain_pl.cli import run_cli
from autotrain_pl.models import load_model

HERE = Path(__file__).parent
CONFIG_DIR = HERE.parents[2] / "configs"
STEPS = 3

TRAINER = """
trainer:
  accelerator: cpu
  precision: 32-true
  max_steps: {steps}
  limit_val_batches: 0
  num_sanity_val_steps: 0
  enable_progress_bar: false
  enable_model_summary: false
  callbacks:
    - class_path: autotrain_pl.callbacks.MetricsLoggerCallback
      init_args: {{plots: false}}
"""

CONFIGS = {
    "sft": """
model:
  class_path: autotrain_pl.objectives.SFTModule
  init_args: {model_name_or_path: "builtin:tiny", learning_rate: 1.0e-3, lr_scheduler: constant,
              export_mode: full}
data:
  class_path: autotrain_pl.data.ChatDataModule
  init_args: {data_path: "synthetic:mixed_chat?n=48&seed=0", chat_format: chatml, batch_size: 4,
              max_length: 256}
""",
    "distill": """
model:
  class_path: autotrain_pl.objectives.DistillationModule
  init_args: {model_name_or_path: "builtin:tiny", teacher_model: "builtin:mini", alpha: 0.7,
              temperature: 2.0, learning_rate: 1.0e-3, lr_scheduler: constant, export_mode: full}
data:
  class_path: autotrain_pl.data.ChatDataModule
  init_args: {data_path: "synthetic:arithmetic?n=48&seed=0", chat_format: chatml, batch_size: 4,
              max_length: 64}
""",
    "dpo": """
model:
  class_path: autotrain_pl.objectives.DPOModule
  init_args: {model_name_or_path: "builtin:tiny", beta: 0.1, precompute_ref_log_probs: true,
              learning_rate: 1.0e-3, lr_scheduler: constant, export_mode: full}
data:
  class_path: autotrain_pl.data.ChatDataModule
  init_args: {data_path: "synthetic:preference?n=48&seed=0", chat_format: chatml, batch_size: 4,
              max_length: 64}
""",
    # One optimizer step per training batch (manual optimization, no accumulation): the data is
    # exactly one global batch, so every epoch is one step over the same 8 prompts.
    "grpo": """
model:
  class_path: seeded_grpo.PromptSeededGRPO
  init_args: {model_name_or_path: "builtin:tiny", num_generations: 4, max_new_tokens: 6,
              loss_type: dapo, beta: 0.0, rl_env_type: arithmetic, rl_reward_fn: seeded_grpo.digit_share,
              learning_rate: 1.0e-3, lr_scheduler: constant, export_mode: full}
data:
  class_path: autotrain_pl.data.ChatDataModule
  init_args: {data_path: "synthetic:arithmetic?n=8&seed=0", chat_format: chatml, batch_size: 4,
              max_length: 64}
""",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_config(root: Path, name: str) -> Path:
    path = root / f"{name}.yaml"
    path.write_text(CONFIGS[name] + TRAINER.format(steps=STEPS))
    return path


def fit_argv(config: Path, run_dir: Path, *extra: str) -> list[str]:
    return ["fit", "--config", str(config), "--trainer.default_root_dir", str(run_dir), *extra]


def torchrun(spec: list[list[str]], tmp: Path, *, nnodes: int, nproc: int, timeout: float = 300
             ) -> None:
    """Run ``rank_runner.py`` on ``nnodes`` x ``nproc`` ranks over loopback; fail with the logs."""
    spec_path = tmp / "spec.json"
    spec_path.write_text(json.dumps(spec))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    port = str(_free_port())
    procs = []
    for node in range(nnodes):
        log = open(tmp / f"node{node}.log", "w")
        procs.append((subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", f"--nnodes={nnodes}",
             f"--node_rank={node}", f"--nproc_per_node={nproc}", "--master_addr=127.0.0.1",
             f"--master_port={port}", str(HERE / "rank_runner.py"), str(spec_path)],
            env=env, stdout=log, stderr=subprocess.STDOUT), log))
    for proc, log in procs:
        code = proc.wait(timeout=timeout)
        log.close()
        if code:
            logs = "\n".join((tmp / f"node{n}.log").read_text()[-4000:] for n in range(nnodes))
            pytest.fail(f"torchrun exited {code}:\n{logs}")


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    (weights,) = (run_dir / "export").glob("*.safetensors")
    return load_file(weights)


def train_losses(run_dir: Path) -> list[float]:
    """The step loss, from the run's CSV log (one file: rank 0 alone writes it)."""
    (metrics,) = run_dir.glob("logs/*/metrics.csv")
    return [float(row["train/loss_step"]) for row in csv.DictReader(open(metrics))
            if row.get("train/loss_step")]


def assert_same_training(distributed: Path, single: Path) -> None:
    losses = train_losses(distributed)
    assert len(losses) == STEPS
    assert losses == pytest.approx(train_losses(single), rel=1e-4, abs=1e-5)
    ours, reference = final_weights(distributed), final_weights(single)
    assert ours.keys() == reference.keys()
    for name, tensor in reference.items():
        torch.testing.assert_close(ours[name], tensor, rtol=1e-4, atol=2e-5, msg=name)
    start = load_model("builtin:tiny").state_dict()
    moved = max(float((reference[name] - start[name]).abs().max()) for name in reference)
    assert moved > 1e-3  # the runs trained: the agreement is not vacuous


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """All objectives on 2 DDP ranks (one node), and each in one process with accumulation 2."""
    tmp = tmp_path_factory.mktemp("ddp")
    configs = {name: write_config(tmp, name) for name in CONFIGS}
    ddp = ["--trainer.strategy", "ddp", "--trainer.devices", "2"]
    resumed = tmp / "ddp" / "sft_resumed"
    torchrun([*(fit_argv(configs[name], tmp / "ddp" / name, *ddp) for name in CONFIGS),
              # stopped after step 2 of 3, mid-epoch, then resumed from its last.ckpt
              fit_argv(configs["sft"], resumed, *ddp, "--trainer.max_steps", str(STEPS - 1),
                       "--checkpoint_every_n_steps", "1"),
              fit_argv(configs["sft"], resumed, *ddp, "--ckpt_path", "last"),
              # the shipped DDP config, shortened
              ["fit", "--config", str(CONFIG_DIR / "ddp.yaml"), "--trainer.max_steps", "2",
               "--data.init_args.max_samples", "256", "--trainer.limit_val_batches", "1",
               "--trainer.default_root_dir", str(tmp / "ddp" / "shipped")]],
             tmp, nnodes=1, nproc=2)
    sys.path.insert(0, str(HERE))
    try:
        for name in CONFIGS:
            single = ["--trainer.devices", "1"] + (
                ["--data.init_args.batch_size", "8"] if name == "grpo" else
                ["--trainer.accumulate_grad_batches", "2"])
            assert run_cli(fit_argv(configs[name], tmp / "single" / name, *single)) == 0
    finally:
        sys.path.remove(str(HERE))
    return tmp


@pytest.mark.parametrize("objective", list(CONFIGS))
def test_ddp_matches_one_process(runs, objective):
    assert_same_training(runs / "ddp" / objective, runs / "single" / objective)


def test_ddp_side_effects_happen_once(runs):
    """Rank 0 alone writes the export, the CSV log and metrics.jsonl; every rank reaches the
    barriers (the run finished), and the metrics file holds each step once."""
    run = runs / "ddp" / "sft"
    assert len(list(run.glob("logs/*/metrics.csv"))) == 1
    assert len(list(run.glob("**/config.json"))) == 1  # one export
    steps = [json.loads(line).get("step") for line in open(run / "metrics.jsonl")
             if '"train/loss_step"' in line]
    assert steps == sorted(set(steps)) and len(steps) == STEPS
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert not list(run.glob("checkpoints/.*partial"))


def test_ddp_resumes_mid_epoch_exactly(runs):
    """A DDP run stopped at step 2 of an epoch and resumed with ``--ckpt_path last`` ends with
    the weights of the uninterrupted run: each rank continues with its next unseen batch."""
    resumed, whole = final_weights(runs / "ddp" / "sft_resumed"), final_weights(runs / "ddp" / "sft")
    for name, tensor in whole.items():
        torch.testing.assert_close(resumed[name], tensor, rtol=0, atol=1e-6, msg=name)


def test_shipped_ddp_config_runs(runs):
    run = runs / "ddp" / "shipped"
    assert (run / "export" / "autotrain.json").is_file()
    assert len(train_losses(run)) == 2


def test_two_nodes_on_loopback_match_one_process(runs, tmp_path):
    """``num_nodes=2`` with one process per node (node ranks 0 and 1, MASTER_ADDR=127.0.0.1)."""
    config = write_config(tmp_path, "sft")
    argv = fit_argv(config, tmp_path / "two_nodes", "--trainer.strategy", "ddp",
                    "--trainer.devices", "1", "--trainer.num_nodes", "2")
    torchrun([argv], tmp_path, nnodes=2, nproc=1)
    assert_same_training(tmp_path / "two_nodes", runs / "single" / "sft")
