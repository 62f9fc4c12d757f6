"""Bad config values fail with one line and exit code 2, before any model loads."""

import subprocess
import sys
from pathlib import Path

import pytest

from autotrain_pl.cli import run_cli

ROOT = Path(__file__).parents[3]
# configs/sft.yaml starts from the quickstart's export; these tests must not need one.
TINY = ("--model.init_args.model_name_or_path", "builtin:tiny")


def run_aitrain(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from autotrain_pl.cli import main; main()", *args],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (["--model.init_args.learning_rate", "-1"], "learning_rate"),
        (["--data.init_args.chat_format", "klingon"], "klingon"),
        (["--data.init_args.data_path", "/nonexistent/chats.jsonl"], "/nonexistent/chats.jsonl"),
    ],
)
def test_bad_config_value_is_one_line_exit_2(override, expected, tmp_path, monkeypatch, capsys):
    import autotrain_pl.objectives.base as base

    def no_model_load(*args, **kwargs):
        raise AssertionError("a model was loaded before the config was validated")

    monkeypatch.setattr(base, "load_model", no_model_load)
    code = run_cli(["fit", "--config", str(ROOT / "configs" / "sft.yaml"), *TINY,
                    "--trainer.default_root_dir", str(tmp_path), *override])
    err = capsys.readouterr().err
    assert code == 2
    error_lines = [line for line in err.splitlines() if line.startswith("aitrain: error:")]
    assert len(error_lines) == 1, err
    assert expected in error_lines[0]


def test_console_script_exit_code_on_user_error(tmp_path):
    result = run_aitrain("fit", "--config", str(ROOT / "configs" / "sft.yaml"), *TINY,
                         "--trainer.default_root_dir", str(tmp_path),
                         "--model.init_args.learning_rate", "-0.1")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("aitrain: error: model.learning_rate")
    assert "Traceback" not in result.stderr


def test_print_config_lists_fixed_keys():
    result = run_aitrain("fit", "--config", str(ROOT / "configs" / "sft.yaml"), "--print_config")
    assert result.returncode == 0, result.stderr
    for key in ("model_name_or_path", "data_path", "chat_format", "batch_size", "max_length"):
        assert key in result.stdout
