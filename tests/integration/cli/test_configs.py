"""Every YAML in configs/ runs as is (for 2 steps), so none of them rots."""

from pathlib import Path

import pytest

from autotrain_pl.cli import run_cli

CONFIGS = sorted(p for p in (Path(__file__).parents[3] / "configs").glob("*.yaml")
                 if p.name != "sweep.yaml")


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_config_runs_two_steps(config: Path, tmp_path: Path):
    code = run_cli([
        "fit", "--config", str(config),
        "--trainer.max_steps", "2",
        "--trainer.max_epochs", "1",
        "--trainer.limit_val_batches", "2",
        "--trainer.default_root_dir", str(tmp_path),
        "--trainer.enable_progress_bar", "false",
    ])
    assert code == 0
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()
    assert (tmp_path / "export" / "autotrain.json").exists()
