"""``aitrain sweep`` over real fit configs (builtin:tiny): it finds a learning rate that matters,
pruning saves steps, failures are kept with their reason, a killed sweep resumes without
repeating a trial, and two workers share one study in SQLite and in PostgreSQL."""

import contextlib
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from conftest import tiny_fit_config, write_sweep
from optuna.trial import TrialState

from autotrain_pl.cli import run_cli
from autotrain_pl.sweep.study import FAIL_REASON, RETRY_OF, WORKER, superseded

pytestmark = pytest.mark.usefixtures("one_torch_thread")
LEARNING_RATES = {"model.init_args.learning_rate": [1e-5, 2e-5, 1e-4, 3e-3]}


def counted(sweep_dir: Path, study_name: str | None = None, storage: str | None = None) -> list:
    """The trials that count (not interrupted ones) of the study named after ``sweep_dir``."""
    study = optuna.load_study(study_name=study_name or sweep_dir.name,
                              storage=storage or f"sqlite:///{sweep_dir}/study.db")
    trials = study.get_trials()
    gone = superseded(trials)
    return [t for t in trials if t.number not in gone]


def sweep(config: Path, *flags: str) -> int:
    return run_cli(["sweep", "--config", str(config), *flags])


def test_the_sweep_finds_a_learning_rate_and_pruning_cuts_steps(tmp_path, capsys):
    base = tiny_fit_config(max_steps=20, val_every=5)
    plain = write_sweep(tmp_path / "plain.yaml", base_config=base, search_space=LEARNING_RATES,
                        sampler="grid", sweep_dir=str(tmp_path / "plain"))
    assert sweep(plain) == 0
    out = capsys.readouterr().out
    trials = counted(tmp_path / "plain")
    values = [t.value for t in trials]
    assert len(trials) == 4 and all(t.state == TrialState.COMPLETE for t in trials)
    assert min(values) < max(values) - 1.0, values  # the learning rate matters
    best = json.loads((tmp_path / "plain" / "best.json").read_text())
    assert best["params"] == {"model.init_args.learning_rate": 3e-3}
    assert best["value"] == pytest.approx(min(values))
    assert "4 complete, 0 pruned, 0 failed; 80 optimizer steps" in out
    for plot in ("history", "importances", "slice"):
        assert (tmp_path / "plain" / f"plot_{plot}.png").stat().st_size > 1000
    # best.yaml is the base config with the best value, ready for aitrain fit
    assert run_cli(["fit", "--config", str(tmp_path / "plain" / "best.yaml"),
                    "--print_config"]) == 0
    resolved = yaml.safe_load(capsys.readouterr().out)
    assert resolved["model"]["init_args"]["learning_rate"] == 3e-3
    assert resolved["trainer"]["default_root_dir"] == str(tmp_path / "plain" / "best")

    pruned = write_sweep(tmp_path / "pruned.yaml", base_config=base, search_space=LEARNING_RATES,
                         sampler="grid", pruner={"type": "median", "n_startup_trials": 2},
                         sweep_dir=str(tmp_path / "pruned"))
    assert sweep(pruned) == 0
    steps = sum(t.user_attrs["steps"] for t in counted(tmp_path / "pruned"))
    assert steps < 80
    assert any(t.state == TrialState.PRUNED for t in counted(tmp_path / "pruned"))


def test_failed_trials_keep_their_reason_and_the_study_goes_on(tmp_path):
    config = write_sweep(tmp_path / "sweep.yaml", base_config=tiny_fit_config(max_steps=5),
                         search_space={"model.init_args.learning_rate": [1e-3, -1.0]},
                         sampler="grid")
    assert sweep(config) == 0
    by_rate = {t.params["model.init_args.learning_rate"]: t for t in counted(tmp_path / "sweep")}
    assert by_rate[1e-3].state == TrialState.COMPLETE
    assert by_rate[-1.0].state == TrialState.FAIL
    assert "learning_rate=-1.0 must be > 0" in by_rate[-1.0].user_attrs[FAIL_REASON]


def one_trial(tmp_path: Path, **settings):
    """Run a one-trial sweep of a 5-step fit and return its trial."""
    config = write_sweep(tmp_path / "sweep.yaml", base_config=tiny_fit_config(max_steps=5),
                         search_space={"model.init_args.learning_rate": [1e-3]},
                         sampler="grid", **settings)
    assert sweep(config) == 0
    (trial,) = counted(tmp_path / "sweep")
    return trial


def test_a_metric_the_run_never_logs_fails_the_trial_instead_of_scoring_it(tmp_path):
    trial = one_trial(tmp_path, metric="val/accuracy")
    assert trial.state == TrialState.FAIL and trial.value is None
    assert "'val/accuracy' was not logged" in trial.user_attrs[FAIL_REASON]
    assert "val/loss" in trial.user_attrs[FAIL_REASON]


def _worker(config: Path, *flags: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "autotrain_pl", "sweep", "--config",
                             str(config), *flags], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _ran(output: str) -> int:
    return int(re.search(r"this worker ran (\d+) trial", output).group(1))


def test_a_killed_sweep_resumes_and_repeats_no_trial(tmp_path, capsys):
    config = write_sweep(tmp_path / "sweep.yaml", base_config=tiny_fit_config(max_steps=10),
                         search_space={"model.init_args.learning_rate":
                                       {"type": "float", "low": 1e-4, "high": 1e-2,
                                        "log": True}},
                         n_trials=4, sampler="random")
    worker = _worker(config)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and worker.poll() is None:
        time.sleep(0.5)
        if not (tmp_path / "sweep" / "study.db").exists():
            continue
        with contextlib.suppress(KeyError):  # KeyError: the study is not made yet
            if sum(t.state == TrialState.COMPLETE for t in counted(tmp_path / "sweep")) >= 2:
                break
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    first = {t.number: t.params for t in counted(tmp_path / "sweep")
             if t.state == TrialState.COMPLETE}
    assert len(first) == 2, first
    assert sweep(config) == 0
    assert _ran(capsys.readouterr().out) == 2
    trials = counted(tmp_path / "sweep")
    assert len(trials) == 4 and all(t.state == TrialState.COMPLETE for t in trials)
    assert {t.number: t.params for t in trials if t.number in first} == first
    params = [t.params["model.init_args.learning_rate"] for t in trials]
    assert len(set(params)) == 4  # none repeated
    assert all(t.user_attrs.get(RETRY_OF) not in first for t in trials)


def _two_workers(config: Path, sweep_dir: Path, *flags: str, study_name: str | None = None,
                 storage: str | None = None):
    workers = [_worker(config, *flags)]
    time.sleep(1.0)
    workers.append(_worker(config, *flags))
    done = [w.communicate(timeout=300) for w in workers]
    outputs = [out for out, _ in done]
    assert [w.returncode for w in workers] == [0, 0], [err[-2000:] for _, err in done]
    trials = counted(sweep_dir, study_name, storage)
    ran = [_ran(out) for out in outputs]
    owners = [{t.number for t in trials if t.user_attrs[WORKER].endswith(f":{w.pid}")}
              for w in workers]
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert sum(ran) == len(trials) >= 6  # the totals add up
    assert [len(o) for o in owners] == ran and not owners[0] & owners[1]  # disjoint
    assert all(n > 0 for n in ran), ran


TWO_WORKER_SPACE = {"model.init_args.learning_rate": {"type": "float", "low": 1e-4,
                                                       "high": 1e-2, "log": True}}


def test_two_workers_share_one_sqlite_study(tmp_path):
    config = write_sweep(tmp_path / "sweep.yaml", base_config=tiny_fit_config(max_steps=5),
                         search_space=TWO_WORKER_SPACE, n_trials=6)
    _two_workers(config, tmp_path / "sweep")


def test_two_workers_share_one_postgresql_study(tmp_path, postgres_url):
    config = write_sweep(tmp_path / "sweep.yaml", base_config=tiny_fit_config(max_steps=5),
                         search_space=TWO_WORKER_SPACE, n_trials=6,
                         study_name=f"two-workers-{tmp_path.name}")
    _two_workers(config, tmp_path / "sweep", "--storage", postgres_url,
                 study_name=f"two-workers-{tmp_path.name}", storage=postgres_url)
    assert not (tmp_path / "sweep" / "study.db").exists()


def test_the_shipped_sweep_config_runs_in_a_short_form(tmp_path, capsys):
    config = Path(__file__).parents[3] / "configs" / "sweep.yaml"
    code = run_cli(["sweep", "--config", str(config), "--n_trials", "2", "--sweep_dir",
                    str(tmp_path / "sweep"), "--fixed", "trainer.max_steps=4",
                    "--fixed", "trainer.val_check_interval=2",
                    "--fixed", "model.init_args.model_name_or_path=builtin:tiny",
                    "--fixed", "trainer.enable_progress_bar=false"])
    assert code == 0
    trials = counted(tmp_path / "sweep")
    assert len(trials) == 2 and all(t.user_attrs["steps"] <= 4 for t in trials)
    assert (tmp_path / "sweep" / "best.yaml").exists()
    assert "best config: aitrain fit --config" in capsys.readouterr().out


def test_isolated_trials_run_in_their_own_process(tmp_path):
    trial = one_trial(tmp_path, isolation="subprocess")
    assert trial.state == TrialState.COMPLETE and trial.user_attrs["steps"] == 5
    log = (tmp_path / "sweep" / "trial_0" / "trial.log").read_text()
    assert "max_steps=5" in log  # the child's own output went to the trial's log
