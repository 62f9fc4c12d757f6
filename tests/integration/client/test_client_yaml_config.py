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


def test_composite_loss_terms_logged_per_step_with_and_without_step_control(tmp_path):
    plain_dir, controlled_dir = tmp_path / "plain", tmp_path / "controlled"
    plain_dir.mkdir(), controlled_dir.mkdir()
    assert run_cli(["fit", "--config", str(write_config(plain_dir, {}, []))]) == 0
    callback = {"class_path": "autotrain_pl.callbacks.StepControlCallback",
                "init_args": {"optimizer_step_frequency": 2, "gradient_clip_norm": 1.0}}
    assert run_cli(["fit", "--config", str(write_config(controlled_dir, {}, [callback]))]) == 0

    plain, controlled = logged_columns(plain_dir), logged_columns(controlled_dir)
    for columns in (plain, controlled):
        for name in ("train/loss_ce", "train/loss_entropy", "train/loss_step", "train/lr",
                     "train/grad_norm", "train/ppl"):
            assert columns.get(name), name
        # One row per optimizer step (3), even with 2 micro-batches per step: terms are the
        # step's means per trained token, like the loss, whose value they add up to.
        assert len(columns["train/loss_step"]) == 3 and len(columns["train/loss_ce"]) == 3
        for step, loss in columns["train/loss_step"].items():
            ce, entropy = (float(columns[f"train/loss_{t}"][step]) for t in ("ce", "entropy"))
            assert abs(float(loss) - (ce - 0.01 * entropy)) < 1e-4
    assert float(controlled["train/skipped_steps"][max(controlled["train/skipped_steps"])]) == 0


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
