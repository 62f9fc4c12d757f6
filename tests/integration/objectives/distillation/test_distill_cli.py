"""Distillation from the command line: the SFT switch in YAML, and the hub config parses."""

import csv
from pathlib import Path

from autotrain_pl.cli import _build_cli_class, run_cli

CONFIGS = Path(__file__).parents[4] / "configs"
SWITCH = ["--model.init_args.model_name_or_path", "builtin:tiny",
          "--model.init_args.use_distillation", "true",
          "--model.init_args.teacher_model", "builtin:tiny",
          "--model.init_args.distillation", "{temperature: 2.0, kd_loss: jsd, beta: 0.5}"]


def test_use_distillation_on_the_sft_config_distils(tmp_path):
    cli = _build_cli_class()(args=["--config", str(CONFIGS / "sft.yaml"), *SWITCH,
                                   "--trainer.default_root_dir", str(tmp_path)], run=False)
    assert cli.model.distiller is not None and cli.model.teacher.ref == "builtin:tiny"
    assert cli.model.distill.temperature == 2.0 and cli.model.distill.kd_loss == "jsd"
    assert cli.model.hparams.lora is not None  # the SFT config's student options still apply


def test_use_distillation_on_the_sft_config_trains_with_kd(tmp_path):
    code = run_cli(["fit", "--config", str(CONFIGS / "sft.yaml"), *SWITCH,
                    "--trainer.max_steps", "2", "--trainer.limit_val_batches", "1",
                    "--trainer.default_root_dir", str(tmp_path),
                    "--trainer.enable_progress_bar", "false"])
    assert code == 0
    (metrics,) = tmp_path.glob("logs/*/metrics.csv")
    header = next(csv.reader(metrics.open()))
    assert "train/loss_kd" in header and "train/loss_ce" in header
    assert (tmp_path / "export" / "autotrain.json").exists()


def test_hub_config_is_marked_and_parses(capsys):
    config = CONFIGS / "distill_hub_lora.yaml"
    assert config.read_text().splitlines()[0].startswith("# requires-hub")
    assert run_cli(["fit", "--config", str(config), "--print_config"]) == 0
    printed = capsys.readouterr().out
    for key in ("teacher_model: Qwen/Qwen2.5-1.5B-Instruct", "model_name_or_path: Qwen/Qwen2.5-0.5B",
                "response_source: teacher", "teacher_cache: disk", "target_modules: all-linear"):
        assert key in printed
