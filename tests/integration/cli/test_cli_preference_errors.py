"""Bad preference settings fail with one line naming the field, exit 2, before a model loads."""

from pathlib import Path

import pytest

from autotrain_pl.cli import run_cli

ROOT = Path(__file__).parents[3]
TINY = ("--model.init_args.model_name_or_path", "builtin:tiny")
SFT_DATA = ("--data.init_args.data_path", "synthetic:arithmetic?n=8",
            "--data.init_args.valid_path", "null")


@pytest.mark.parametrize(
    ("config", "override", "expected"),
    [
        ("dpo", ["--model.init_args.loss_type", "sigmoidd"],
         "model.loss_type='sigmoidd' is not a DPO or reference-free loss type; did you mean "
         "'sigmoid'?"),
        ("dpo", ["--model.init_args.beta", "0"], "model.beta=0"),
        ("dpo", ["--model.init_args.loss_type", "hinge", "--model.init_args.label_smoothing",
                 "0.1"], "model.label_smoothing"),
        ("simpo", ["--model.init_args.precompute_ref_log_probs", "true"],
         "remove model.precompute_ref_log_probs"),
        ("dpo", list(SFT_DATA), "holds chat rows (no chosen/rejected pair), which DPOModule"),
        ("sft", ["--data.init_args.data_path", "synthetic:preference?n=8",
                 "--data.init_args.valid_path", "null"], "holds preference pairs"),
    ],
)
def test_bad_preference_config_is_one_line_before_any_model_loads(
        config, override, expected, tmp_path, monkeypatch, capsys):
    import autotrain_pl.objectives.base as base

    def no_model_load(*args, **kwargs):
        raise AssertionError("a model was loaded before the config was validated")

    monkeypatch.setattr(base, "load_model", no_model_load)
    code = run_cli(["fit", "--config", str(ROOT / "configs" / f"{config}.yaml"), *TINY,
                    "--trainer.default_root_dir", str(tmp_path), *override])
    err = capsys.readouterr().err
    assert code == 2, err
    error_lines = [line for line in err.splitlines() if line.startswith("aitrain: error:")]
    assert len(error_lines) == 1, err
    assert expected in error_lines[0]
