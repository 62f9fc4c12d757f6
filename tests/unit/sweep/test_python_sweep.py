"""HyperparameterSweep on plain Python functions: samplers find the optimum, failures are kept
with their reason, and a study in a database resumes without repeating a trial."""

import math
import os
import socket
import subprocess
import sys

import optuna
import pytest
from optuna.trial import TrialState

from autotrain_pl.errors import AutotrainError
from autotrain_pl.sweep import HyperparameterSweep, ParameterRange, run_autotrain_sweep
from autotrain_pl.sweep.study import FAIL_REASON, INTERRUPTED, RETRY_OF, WORKER

optuna.logging.set_verbosity(optuna.logging.ERROR)


def bowl(params: dict) -> float:
    return (params["x"] - 1.0) ** 2


def x_range(**kwargs) -> ParameterRange:
    return ParameterRange("x", "float", low=-5.0, high=5.0, **kwargs)


@pytest.mark.parametrize("backend", ["optuna", "random", "cmaes"])
def test_each_sampler_finds_the_bottom_of_a_bowl(backend):
    sweep = HyperparameterSweep(objective_function=bowl, optimization_metric="loss",
                                num_trials=40, backend=backend, seed=0)
    result = sweep.add_parameter(x_range()).run()
    assert abs(result.best_params["x"] - 1.0) < 0.5, result.best_params
    assert result.best_value == min(t.value for t in result.trials)
    assert len(result.trials) == 40


def test_grid_runs_the_full_product_or_stops_at_n_trials():
    space = {"x": {"type": "int", "low": -1, "high": 2}, "k": ["a", "b"]}
    seen = []
    full = run_autotrain_sweep({"fixed": 1}, space, lambda p: seen.append(p) or bowl(p),
                               backend="grid", n_trials=None)
    assert len(full.trials) == 8 and len({(p["x"], p["k"]) for p in seen}) == 8
    assert all(p["fixed"] == 1 for p in seen)  # the model config reaches the function
    assert full.best_params["x"] == 1
    capped = run_autotrain_sweep({}, space, bowl, backend="grid", n_trials=3)
    assert len(capped.trials) == 3


def test_a_failing_or_nan_trial_is_recorded_and_the_study_goes_on():
    def objective(params):
        if params["x"] > 3:
            raise RuntimeError("out of memory")
        if params["x"] < -3:
            return math.nan
        return bowl(params)

    result = HyperparameterSweep(objective, num_trials=30, backend="random", seed=0,
                                 parameters=[x_range()]).run()
    failed = [t for t in result.trials if t.state == TrialState.FAIL]
    reasons = {t.user_attrs[FAIL_REASON] for t in failed}
    assert len(result.trials) == 30 and failed
    assert "RuntimeError: out of memory" in reasons
    assert "the objective returned nan" in reasons
    assert result.best_value is not None and result.best_value >= 0


def test_a_second_run_on_the_same_storage_adds_only_the_missing_trials(tmp_path):
    storage = f"sqlite:///{tmp_path}/study.db"
    calls = []

    def sweep(n: int):
        return HyperparameterSweep(lambda p: calls.append(p["x"]) or bowl(p), num_trials=n,
                                   parameters=[x_range()], storage=storage, backend="random")

    sweep(3).run()
    result = sweep(5).run()
    assert len(calls) == 5 and len(set(calls)) == 5  # nothing ran twice
    assert [t.number for t in result.trials] == [0, 1, 2, 3, 4]
    assert len(sweep(5).run().trials) == 5  # already done: runs nothing
    assert len(calls) == 5


def test_an_interrupted_trial_runs_again_with_its_parameters(tmp_path):
    storage = f"sqlite:///{tmp_path}/study.db"
    seen = []

    def stop_at_third(params):
        seen.append(params["x"])
        if len(seen) == 3:
            raise KeyboardInterrupt
        return bowl(params)

    with pytest.raises(KeyboardInterrupt):
        HyperparameterSweep(stop_at_third, num_trials=4, parameters=[x_range()],
                            storage=storage, backend="random").run()
    result = HyperparameterSweep(lambda p: seen.append(p["x"]) or bowl(p), num_trials=4,
                                 parameters=[x_range()], storage=storage,
                                 backend="random").run()
    complete = [t for t in result.trials if t.state == TrialState.COMPLETE]
    interrupted = [t for t in result.trials if t.user_attrs.get(INTERRUPTED)]
    assert len(complete) == 4 and len(interrupted) == 1
    retry = [t for t in complete if t.user_attrs.get(RETRY_OF) == interrupted[0].number]
    assert retry and retry[0].params == interrupted[0].params
    assert seen[3] == seen[2]  # the interrupted point ran again first


def test_a_trial_left_running_by_a_dead_worker_is_run_again(tmp_path):
    storage = f"sqlite:///{tmp_path}/study.db"
    study = optuna.create_study(study_name="sweep", storage=storage)
    orphan = study.ask({"x": optuna.distributions.FloatDistribution(-5, 5)})
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan.set_user_attr(WORKER, f"{socket.gethostname()}:{dead.pid}")
    result = HyperparameterSweep(bowl, num_trials=2, parameters=[x_range()], storage=storage,
                                 backend="random").run()
    by_number = {t.number: t for t in result.trials}
    assert by_number[orphan.number].state == TrialState.FAIL
    retried = [t for t in result.trials if t.user_attrs.get(RETRY_OF) == orphan.number]
    assert retried[0].state == TrialState.COMPLETE
    assert retried[0].params == by_number[orphan.number].params
    assert sum(t.state == TrialState.COMPLETE for t in result.trials) == 2
    assert os.getpid() != dead.pid


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"backend": "hyperopt"}, "backend='hyperopt'"),
    ({"objective_function": 3}, "objective_function must be callable"),
    ({"storage": "postgresql://nobody@127.0.0.1:1/none"}, "cannot open the study database"),
])
def test_bad_python_arguments_fail_in_one_line(kwargs, needle):
    arguments = {"objective_function": bowl, "parameters": [x_range()], **kwargs}
    with pytest.raises(AutotrainError) as error:
        HyperparameterSweep(**arguments).run()
    assert needle in str(error.value) and "\n" not in str(error.value)


def test_the_same_seed_proposes_the_same_points():
    def points(seed):
        sweep = HyperparameterSweep(bowl, num_trials=5, parameters=[x_range()], seed=seed)
        return [t.params["x"] for t in sweep.run().trials]

    assert points(3) == points(3) and points(3) != points(4)


def test_a_timeout_ends_a_sweep_without_n_trials():
    import time

    result = HyperparameterSweep(lambda p: time.sleep(0.05) or bowl(p), num_trials=None,
                                 timeout=0.3, parameters=[x_range()]).run()
    assert 1 <= len(result.trials) < 50
    with pytest.raises(AutotrainError, match="n_trials and timeout are both unset"):
        HyperparameterSweep(bowl, num_trials=None, parameters=[x_range()]).run()


@pytest.mark.parametrize(("spec", "kind"), [
    ("none", optuna.pruners.NopPruner), ("median", optuna.pruners.MedianPruner),
    ({"type": "median", "n_warmup_steps": 5}, optuna.pruners.MedianPruner),
    ("hyperband", optuna.pruners.HyperbandPruner),
])
def test_pruners_by_name(spec, kind):
    from autotrain_pl.sweep.study import make_pruner

    assert isinstance(make_pruner(spec, max_resource=100), kind)


@pytest.mark.parametrize(("spec", "needle"), [
    ("asha", "pruner='asha' is not a pruner"),
    ({"type": "median", "patience": 3}, "pruner: "),
])
def test_bad_pruners_fail_in_one_line(spec, needle):
    from autotrain_pl.sweep.study import make_pruner

    with pytest.raises(AutotrainError, match=needle):
        make_pruner(spec, max_resource=100)
