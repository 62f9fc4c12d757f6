"""Every YAML in configs/ runs as is (for 2 steps), so none of them rots.

Configs that need a model hub say so on their first line (``# requires-hub: ...``); they are
skipped here and parsed by their own tests instead.
"""

from pathlib import Path

import pytest

from autotrain_pl.cli import run_cli


def needs_hub(path: Path) -> bool:
    """Configs whose first line contains ``# requires-hub`` download models; CI is offline."""
    with path.open(encoding="utf-8") as handle:
        return "# requires-hub" in handle.readline()


CONFIGS = sorted(p for p in (Path(__file__).parents[3] / "configs").glob("*.yaml")
                 if p.name != "sweep.yaml" and not needs_hub(p))


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
