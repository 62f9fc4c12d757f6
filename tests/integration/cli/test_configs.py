"""Every YAML in configs/ runs as is (for 2 steps), so none of them rots.

Configs that need a model hub say so on their first line (``# requires-hub: ...``); they are
skipped here and parsed by their own tests instead. Configs that start from the export of another
run (``# requires-quickstart``, ``# requires-run``) run on the export of a 2-step quickstart.
"""

from pathlib import Path

import pytest

from autotrain_pl.cli import run_cli

CONFIG_DIR = Path(__file__).parents[3] / "configs"


def first_line(path: Path) -> str:
    with path.open(encoding="utf-8") as handle:
        return handle.readline()


#: Run elsewhere: sweep.yaml by the sweep tests, ``# requires-launch`` configs by the distributed
#: tests (they start several processes), ``# requires-gpu`` ones only parse on this machine.
ELSEWHERE = ("# requires-hub", "# requires-launch", "# requires-gpu")
CONFIGS = sorted(p for p in CONFIG_DIR.glob("*.yaml")
                 if p.name != "sweep.yaml" and not first_line(p).startswith(ELSEWHERE))
PARSE_ONLY = sorted(p for p in CONFIG_DIR.glob("*.yaml")
                    if first_line(p).startswith(("# requires-launch", "# requires-gpu")))
#: Two steps on the first 128 rows of each source, then one validation batch of 8 rows: the
#: config is checked whole (every key parses, instantiates, trains and validates) without
#: tokenizing tens of thousands of rows, or playing a hundred validation games, it never needs.
TWO_STEPS = ["--trainer.max_steps", "2", "--trainer.max_epochs", "1",
             "--trainer.val_check_interval", "2", "--trainer.limit_val_batches", "1",
             "--trainer.num_sanity_val_steps", "0", "--trainer.enable_progress_bar", "false",
             "--data.init_args.max_samples", "128", "--data.init_args.eval_batch_size", "8"]


@pytest.fixture(scope="module")
def quickstart_export(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("quickstart")
    code = run_cli(["fit", "--config", str(CONFIG_DIR / "quickstart.yaml"), *TWO_STEPS,
                    "--trainer.default_root_dir", str(root)])
    assert code == 0
    return root / "export"


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_config_runs_two_steps(config: Path, tmp_path: Path, request):
    extra = []
    if first_line(config).startswith(("# requires-quickstart", "# requires-run")):
        export = request.getfixturevalue("quickstart_export")
        extra = ["--model.init_args.model_name_or_path", str(export)]
    code = run_cli(["fit", "--config", str(config), *TWO_STEPS, *extra,
                    "--trainer.default_root_dir", str(tmp_path)])
    assert code == 0
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()
    assert (tmp_path / "export" / "autotrain.json").exists()


@pytest.mark.parametrize("config", PARSE_ONLY, ids=lambda p: p.stem)
def test_launch_and_gpu_configs_parse(config: Path, capsys):
    assert run_cli(["fit", "--config", str(config), "--print_config"]) == 0
    assert "strategy" in capsys.readouterr().out
