"""Bad sweep input: one line on stderr that names the key, exit code 2, before any trial runs."""

import pytest
from conftest import write_sweep

from autotrain_pl.cli import run_cli

LR = "model.init_args.learning_rate"


@pytest.mark.parametrize(("settings", "flags", "needles"), [
    ({"search_space": {"model.init_args.learnin_rate": [1e-3]}}, [],
     ["model.init_args.learnin_rate", "did you mean learning_rate"]),
    ({"search_space": {"trainer.max_stepz": [3]}}, [], ["trainer.max_stepz"]),
    ({"search_space": {LR: {"type": "float", "low": 1e-2, "high": 1e-4}}}, [],
     [LR, "low=0.01 is above high=0.0001"]),
    ({"search_space": {LR: {"type": "float", "low": 0.0, "high": 1e-2, "log": True}}}, [],
     [LR, "log range must stay above 0"]),
    ({"search_space": {LR: [1e-3]}, "sampler": "bayesian"}, [],
     ["sampler='bayesian' is not a sampler", "tpe, random, grid, cmaes"]),
    ({"search_space": {LR: [1e-3]}}, ["--storage", "postgresql://postgres@127.0.0.1:1/none"],
     ["storage=postgresql://postgres@127.0.0.1:1/none", "cannot open the study database"]),
    ({"search_space": {LR: [1e-3]}, "base_config": "missing.yaml"}, [],
     ["base_config=missing.yaml: no such file"]),
])
def test_bad_sweeps_fail_in_one_line(tmp_path, capsys, settings, flags, needles):
    config = write_sweep(tmp_path / "sweep.yaml", **settings)
    assert run_cli(["sweep", "--config", str(config), *flags]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("aitrain: error: "), errors
    assert all(needle in errors[0] for needle in needles), errors[0]
    assert not list((tmp_path / "sweep").glob("trial_*"))  # no trial ran
