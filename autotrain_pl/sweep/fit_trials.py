"""Trials that are ``aitrain fit`` runs: the base config with the trial's values at dotted keys.

Each trial runs in its own directory (``<sweep_dir>/trial_<n>``) from its own ``trial.yaml``, in
this process (the default: no start-up cost) or in a subprocess (``isolation: subprocess``: a
crash or a leak cannot touch the sweep). Its metric is the last validation's value of the
monitored key, written by ``SweepTrialReporter`` during the run: a trial that never validated,
never logged the key, or validated to NaN fails with that reason instead of scoring a stale or
missing value.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
import yaml

from autotrain_pl.errors import AutotrainError
from autotrain_pl.sweep.reporting import SweepTrialReporter, read_result
from autotrain_pl.sweep.space import ParameterRange
from autotrain_pl.sweep.study import TrialFailed

ISOLATIONS = ("in_process", "subprocess")


def set_dotted(config: dict, key: str, value: Any) -> None:
    """``config[a][b][c] = value`` for ``a.b.c``, making sections that are unset (``None``)."""
    node = config
    parts = key.split(".")
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            where = ".".join(parts[: depth + 1])
            raise AutotrainError(f"search space key {key!r}: {where} is a value ({child!r}), "
                                 "not a section with keys")
        node = child
    node[parts[-1]] = value


def trial_config(base: Mapping[str, Any], values: Mapping[str, Any], run_dir: Path,
                 callbacks: Sequence[dict] = ()) -> dict:
    """The fit config of one trial: ``base`` with ``values`` set, its own run directory, and
    ``callbacks`` added to the base's."""
    config = copy.deepcopy(dict(base))
    for key, value in values.items():
        set_dotted(config, key, value)
    trainer = config.setdefault("trainer", {}) or {}
    config["trainer"] = trainer
    trainer["default_root_dir"] = str(run_dir)
    if callbacks:
        given = trainer.get("callbacks") or []
        trainer["callbacks"] = [*(given if isinstance(given, list) else [given]), *callbacks]
    return config


def write_config(config: Mapping[str, Any], path: Path, header: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(dict(config), sort_keys=False)
    path.write_text(f"{header}{text}", encoding="utf-8")
    return path


def check_keys(base: Mapping[str, Any], values: Mapping[str, Any], scratch: Path) -> None:
    """Fail before any trial runs when a swept key is not an option of the fit config (or its
    value has the wrong type): the fit parser reads the base config with ``values`` set (one
    value of each swept range, and the fixed ones)."""
    name = f".check-{os.getpid()}"  # workers starting together each check their own file
    path = write_config(trial_config(base, values, scratch / name), scratch / f"{name}.yaml")
    try:
        code, _, err = _in_process(["fit", "--config", str(path), "--print_config"])
    finally:
        path.unlink(missing_ok=True)
    if code != 0:
        message = err.strip().splitlines()[-1] if err.strip() else f"exit code {code}"
        message = message.removeprefix("aitrain: error: ").replace(f" (in {path})", "")
        raise AutotrainError(f"search space: {message} (the sweep's base config with the swept "
                             "keys; see aitrain fit --config <base> --print_config)")


def run_fit_trial(trial: optuna.Trial, base: Mapping[str, Any], ranges: Sequence[ParameterRange],
                  fixed: Mapping[str, Any], sweep_dir: Path, storage: str, monitor: str,
                  pruner: str | dict | None = None, max_resource: int | None = None,
                  isolation: str = "in_process") -> float:
    """One trial: suggest its values, run ``aitrain fit`` on its config, return its metric."""
    values = {**fixed, **{r.name: r.suggest(trial) for r in ranges}}
    run_dir = sweep_dir / f"trial_{trial.number}"
    reporter = {"class_path": f"{SweepTrialReporter.__module__}.SweepTrialReporter",
                "init_args": {"storage": storage, "study_name": trial.study.study_name,
                              "trial_id": trial._trial_id, "monitor": monitor,
                              "result_dir": str(run_dir), "pruner": pruner,
                              "max_resource": max_resource}}
    path = write_config(trial_config(base, values, run_dir, [reporter]), run_dir / "trial.yaml",
                        header=f"# trial {trial.number} of sweep {trial.study.study_name}\n")
    argv = ["fit", "--config", str(path), "--overwrite", "true"]
    if isolation == "subprocess":
        code, reason = _in_subprocess(argv, run_dir / "trial.log")
    else:
        code, _, err = _in_process(argv, echo=True)
        reason = _error_line(err)
    result = read_result(run_dir)
    trial.set_user_attr("steps", int(result.get("steps") or 0))
    if code != 0:
        raise TrialFailed(reason or f"aitrain fit exited with code {code}")
    return metric_of(result, monitor)


def metric_of(result: Mapping[str, Any], monitor: str) -> float:
    """The trial's value from its result, or the reason there is none."""
    if result.get("pruned"):
        raise optuna.TrialPruned(f"pruned at step {result.get('step')}")
    value = result.get("value")
    if result.get("step") is None:
        raise TrialFailed(f"the run never validated, so it has no {monitor}; give the base "
                          "config a data.init_args.valid_path and a trainer.val_check_interval "
                          "that falls inside max_steps")
    if value is None:
        known = ", ".join(k for k in result.get("known", []) if not k.startswith("train")) or \
            "none"
        raise TrialFailed(f"metric {monitor!r} was not logged at validation (logged: {known}); "
                          "set metric to one of them")
    if not math.isfinite(value):
        raise TrialFailed(f"diverged: {monitor} is {value} at step {result.get('step')}")
    return float(value)


class _Tee(io.StringIO):
    """Keeps what is written and passes it on, so an in-process trial still shows its output."""

    def __init__(self, stream) -> None:
        super().__init__()
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(text)
        return super().write(text)

    def isatty(self) -> bool:
        return False


def _in_process(argv: list[str], echo: bool = False) -> tuple[int, str, str]:
    from autotrain_pl.cli import run_cli

    out = _Tee(sys.stdout) if echo else io.StringIO()
    err = _Tee(sys.stderr) if echo else io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run_cli(argv)
    return code, out.getvalue(), err.getvalue()


def _in_subprocess(argv: list[str], log_path: Path) -> tuple[int, str | None]:
    with log_path.open("w", encoding="utf-8") as log:
        code = subprocess.call([sys.executable, "-m", "autotrain_pl", *argv], stdout=log,
                               stderr=subprocess.STDOUT)
    text = log_path.read_text(encoding="utf-8", errors="replace")
    return code, _error_line(text) or (text.strip().splitlines() or [None])[-1]


def _error_line(text: str) -> str | None:
    lines = [line for line in text.splitlines() if line.startswith("aitrain: error: ")]
    return lines[-1].removeprefix("aitrain: error: ") if lines else None
