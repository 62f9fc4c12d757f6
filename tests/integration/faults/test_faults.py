"""Faults a real run meets, and that nothing is lost: NaN, a corrupt checkpoint, a full disk.
kill -9, SIGTERM and Ctrl-C of a real ``aitrain fit`` subprocess are in
``tests/integration/cli/test_cli_resume.py``."""

import errno
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from autotrain_pl.callbacks.resume import last_checkpoint
from autotrain_pl.cli import run_cli

HERE = Path(__file__).parent
STEPS, EVERY = 40, 10
CONFIG = f"""
seed_everything: 0
model:
  class_path: autotrain_pl.objectives.SFTModule
  init_args: {{model_name_or_path: "builtin:tiny", learning_rate: 1.0e-3, lr_scheduler: constant,
              export_mode: full}}
data:
  class_path: autotrain_pl.data.ChatDataModule
  init_args: {{data_path: "synthetic:arithmetic?n=400&seed=0", chat_format: chatml, batch_size: 4,
              max_length: 64}}
trainer:
  accelerator: cpu
  precision: 32-true
  max_steps: {STEPS}
  limit_val_batches: 0
  num_sanity_val_steps: 0
  enable_progress_bar: false
  enable_model_summary: false
checkpoint_every_n_steps: {EVERY}
"""


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("faults") / "sft.yaml"
    path.write_text(CONFIG)
    return path


def fit(config: Path, root: Path, *extra: str) -> int:
    return run_cli(["fit", "--config", str(config), "--trainer.default_root_dir", str(root),
                    *extra])


def weights(root: Path) -> dict[str, torch.Tensor]:
    (path,) = (root / "export").glob("*.safetensors")
    return load_file(path)


def checkpoint_step(root: Path) -> int:
    return torch.load(last_checkpoint(root), map_location="cpu", weights_only=False)["global_step"]


def test_a_nan_step_is_skipped_and_counted(config, tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(HERE))
    code = fit(config, tmp_path, "--model.class_path", "fault_models.NaNLossSFT",
               "--model.init_args.nan_steps", "[3, 7]", "--trainer.max_steps", "12")
    assert code == 0, capsys.readouterr().err[-2000:]
    (metrics,) = tmp_path.glob("logs/*/metrics.csv")
    rows = [line.split(",") for line in metrics.read_text().splitlines()]
    skipped = [float(r[rows[0].index("train/skipped_steps")]) for r in rows[1:]
               if r[rows[0].index("train/skipped_steps")]]
    assert skipped[-1] == 2.0
    assert all(torch.isfinite(t).all() for t in weights(tmp_path).values())


def test_k_nan_steps_in_a_row_stop_the_run_and_keep_the_checkpoint(config, tmp_path,
                                                                    monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(HERE))
    code = fit(config, tmp_path, "--model.class_path", "fault_models.NaNLossSFT",
               "--model.init_args.nan_from_step", "12",
               "--model.init_args.max_consecutive_skipped_steps", "3")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("aitrain: error: 3 optimizer steps in a row had non-finite")
    state = torch.load(last_checkpoint(tmp_path), map_location="cpu", weights_only=False)
    assert state["global_step"] == EVERY
    assert all(torch.isfinite(t).all() for t in state["state_dict"].values())
    assert not (tmp_path / "export").exists()


@pytest.mark.parametrize("damage", ["truncated", "corrupt", "missing"])
def test_a_damaged_checkpoint_is_one_line_naming_it(config, tmp_path, capsys, damage):
    source = tmp_path / "good"
    assert fit(config, source, "--trainer.max_steps", "2") == 0
    bad = tmp_path / "bad.ckpt"
    data = last_checkpoint(source).read_bytes()
    if damage == "truncated":
        bad.write_bytes(data[: len(data) // 2])
    elif damage == "corrupt":
        middle = len(data) // 2
        bad.write_bytes(data[:middle] + bytes(b ^ 0xFF for b in data[middle:middle + 64])
                        + data[middle + 64:])
    capsys.readouterr()
    code = fit(config, tmp_path / "resumed", "--ckpt_path", str(bad))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("aitrain: error: --ckpt_path") and str(bad) in err[-1]
    assert {"truncated": "truncated", "corrupt": "checksum", "missing": "no checkpoint"}[damage] \
        in err[-1]


def test_disk_full_while_checkpointing_keeps_the_previous_checkpoint(config, tmp_path,
                                                                     monkeypatch, capsys):
    from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

    assert fit(config, tmp_path, "--trainer.max_steps", str(EVERY)) == 0
    good = last_checkpoint(tmp_path).read_bytes()

    def disk_full(self, checkpoint, path, storage_options=None):
        Path(path).write_bytes(b"half a checkpoint")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(TorchCheckpointIO, "save_checkpoint", disk_full)
    code = fit(config, tmp_path, "--ckpt_path", "last", "--trainer.max_steps", str(2 * EVERY))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "No space left on device" in err[-1] and "is intact" in err[-1]
    assert last_checkpoint(tmp_path).read_bytes() == good
    assert not list(tmp_path.glob("checkpoints/.*partial"))


def test_disk_full_at_export_is_one_line(config, tmp_path, monkeypatch, capsys):
    from autotrain_pl.objectives.base import ObjectiveModule

    def disk_full(self, out_dir):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(ObjectiveModule, "export", disk_full)
    code = fit(config, tmp_path, "--trainer.max_steps", "2")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("aitrain: error: could not write the export to")
    assert "--ckpt_path last" in err[-1]
    assert checkpoint_step(tmp_path) == 2
