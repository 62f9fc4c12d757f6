"""Composite losses and StepControlCallback are configurable from YAML through ``aitrain``."""

import csv
from pathlib import Path

import yaml

from autotrain_pl.cli import run_cli


def write_config(tmp_path: Path, trainer_extra: dict, callbacks: list) -> Path:
    config = {
        "seed_everything": 0,
        "model": {
            "class_path": "autotrain_pl.objectives.SFTModule",
            "init_args": {
                "model_name_or_path": "builtin:tiny",
                "loss": {"ce": 1.0, "entropy": -0.01},
                "learning_rate": 1e-3,
                "lr_scheduler": "constant",
                "export": False,
            },
        },
        "data": {
            "class_path": "autotrain_pl.data.ChatDataModule",
            "init_args": {"data_path": "synthetic:arithmetic?n=64", "batch_size": 8,
                          "chat_format": "chatml"},
        },
        "trainer": {
            "accelerator": "cpu",
            "max_steps": 3,
            "max_epochs": 1,
            "default_root_dir": str(tmp_path),
            "enable_progress_bar": False,
            "callbacks": callbacks,
            **trainer_extra,
        },
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def logged_columns(root: Path) -> dict[str, dict[int, str]]:
    """metric name -> {step: last value logged at that step} from the CSV logger."""
    (metrics,) = root.glob("logs/version_*/metrics.csv")
    with metrics.open() as handle:
        rows = list(csv.DictReader(handle))
    return {key: {int(row["step"]): row[key] for row in rows if row[key]} for key in rows[0]}


def test_composite_loss_terms_logged_automatic_and_manual(tmp_path):
    auto_dir, manual_dir = tmp_path / "auto", tmp_path / "manual"
    auto_dir.mkdir(), manual_dir.mkdir()
    assert run_cli(["fit", "--config", str(write_config(auto_dir, {}, []))]) == 0
    callback = {"class_path": "autotrain_pl.callbacks.StepControlCallback",
                "init_args": {"optimizer_step_frequency": 2, "gradient_clip_norm": 1.0}}
    assert run_cli(["fit", "--config", str(write_config(manual_dir, {}, [callback]))]) == 0

    auto, manual = logged_columns(auto_dir), logged_columns(manual_dir)
    for columns in (auto, manual):
        for name in ("train/loss_ce", "train/loss_entropy", "train/loss_step", "train/lr",
                     "train/grad_norm"):
            assert columns.get(name), name
    assert len(set(auto["train/loss_step"].values())) == 3  # one per optimizer step
    # Manual mode: Lightning's logger step counts batches; 6 batches, 3 optimizer steps.
    assert len(set(manual["train/loss_step"].values())) == 3
    assert len(manual["train/loss_ce"]) == 6  # terms are logged per micro-batch
    assert float(manual["train/skipped_steps"][max(manual["train/skipped_steps"])]) == 0.0


def test_forbidden_trainer_settings_name_the_replacement(tmp_path, capsys):
    callback = {"class_path": "autotrain_pl.callbacks.StepControlCallback"}
    config = write_config(tmp_path, {"accumulate_grad_batches": 4}, [callback])
    assert run_cli(["fit", "--config", str(config)]) == 2
    (message,) = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert "accumulate_grad_batches=4" in message
    assert "optimizer_step_frequency: 4" in message

    config = write_config(tmp_path, {"gradient_clip_val": 0.5}, [callback])
    assert run_cli(["fit", "--config", str(config)]) == 2
    (message,) = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert "gradient_clip_val=0.5" in message and "gradient_clip_norm: 0.5" in message
