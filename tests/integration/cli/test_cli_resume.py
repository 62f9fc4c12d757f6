"""A real ``aitrain fit`` killed after 100 steps resumes with ``--ckpt_path last`` and ends with the
weights of a run that was never interrupted: after Ctrl-C (SIGINT, which saves before exiting)
and after SIGKILL (which loses at most one checkpoint interval)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

STEPS = 140
EVERY = 100  # checkpoint interval: SIGKILL after step 100 resumes from step 100


def write_config(path: Path) -> Path:
    config = {
        "seed_everything": 0,
        "model": {"class_path": "autotrain_pl.objectives.SFTModule", "init_args": {
            "model_name_or_path": "builtin:tiny", "learning_rate": 1e-3, "export": False}},
        "data": {"class_path": "autotrain_pl.data.ChatDataModule", "init_args": {
            "data_path": "synthetic:arithmetic?n=4000&seed=0", "chat_format": "chatml",
            "batch_size": 4, "max_length": 64}},
        "trainer": {"max_steps": STEPS, "accelerator": "cpu", "enable_progress_bar": False,
                    "enable_model_summary": False, "limit_val_batches": 0},
        "checkpoint_every_n_steps": EVERY,
    }
    path.write_text(yaml.safe_dump(config))
    return path


def aitrain(config: Path, root: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    command = [sys.executable, "-c", "from autotrain_pl.cli import main; main()", "fit",
               "--config", str(config), "--trainer.default_root_dir", str(root), *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env)


def finish(process: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
    output, _ = process.communicate(timeout=timeout)
    return process.returncode, output


def weights(root: Path) -> dict[str, torch.Tensor]:
    checkpoint = torch.load(root / "checkpoints" / "last.ckpt", map_location="cpu",
                            weights_only=False)
    assert checkpoint["global_step"] == STEPS
    return checkpoint["state_dict"]


def wait_for_checkpoint(process: subprocess.Popen, root: Path, timeout: float = 240) -> None:
    last = root / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + timeout
    while not last.exists():
        assert process.poll() is None, finish(process)[1][-3000:]
        assert time.monotonic() < deadline, "no checkpoint after step 100"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    root = tmp_path_factory.mktemp("straight")
    code, output = finish(aitrain(write_config(root / "config.yaml"), root / "run"))
    assert code == 0, output[-3000:]
    return weights(root / "run")


@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL],
                         ids=["sigint", "sigterm", "sigkill"])
def test_killed_run_resumes_to_the_same_weights(sent, uninterrupted, tmp_path):
    """Ctrl-C and SIGTERM (preemption, SLURM's time limit) finish the optimizer step in flight,
    save there and exit without an export; kill -9 loses at most one checkpoint interval. Each
    resumes with ``--ckpt_path last`` to the weights of the uninterrupted run."""
    config, root = write_config(tmp_path / "config.yaml"), tmp_path / "run"
    process = aitrain(config, root)
    wait_for_checkpoint(process, root)  # written at step 100
    process.send_signal(sent)
    code, output = finish(process)
    step = torch.load(root / "checkpoints" / "last.ckpt", weights_only=False)["global_step"]
    if sent != signal.SIGKILL:
        assert code == 1 and "Resume with: aitrain fit" in output, output[-2000:]
        assert "--ckpt_path last" in output and f"Stopped at step {step} (" in output
        assert EVERY < step < STEPS  # it finished the step in flight, then saved there
        assert not (root / "export").exists()  # a partial run is not exported
    else:
        assert code == -signal.SIGKILL and step == EVERY  # the last periodic checkpoint
    code, output = finish(aitrain(config, root, "--ckpt_path", "last"))
    assert code == 0, output[-3000:]
    resumed = weights(root)
    assert resumed.keys() == uninterrupted.keys()
    for name, value in uninterrupted.items():
        assert torch.equal(resumed[name], value), name
