"""``use_enhanced_eval: true`` on the objective, from YAML through ``aitrain fit``."""

from pathlib import Path

import yaml

from autotrain_pl.callbacks.metrics_logger import read_metrics
from autotrain_pl.cli import run_cli

DATA = "synthetic:arithmetic?n=64&n_valid=6&seed=0"


def test_use_enhanced_eval_from_yaml(tmp_path: Path, one_torch_thread):
    config = {
        "seed_everything": 0,
        "model": {"class_path": "autotrain_pl.objectives.SFTModule", "init_args": {
            "model_name_or_path": "builtin:tiny", "export": False, "use_enhanced_eval": True,
            "eval_metrics": ["perplexity", "exact_match"], "eval_steps": 1}},
        "data": {"class_path": "autotrain_pl.data.ChatDataModule", "init_args": {
            "data_path": DATA, "valid_path": DATA + "&split=valid", "chat_format": "chatml",
            "batch_size": 4, "max_length": 24}},
        "trainer": {"max_steps": 2, "default_root_dir": str(tmp_path),
                    "enable_progress_bar": False, "enable_model_summary": False,
                    "num_sanity_val_steps": 0, "val_check_interval": 2},
    }
    path = tmp_path / "enhanced.yaml"
    path.write_text(yaml.safe_dump(config))
    assert run_cli(["fit", "--config", str(path)]) == 0
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["global_step"] for r in rows if "val/exact_match" in r] == [1, 2]
    assert any("val/ppl" in r for r in rows) and any("train/loss_step" in r for r in rows)
    assert (tmp_path / "plots" / "val_exact_match.png").exists()
