"""Sweeps from a YAML config (``aitrain sweep``) and from Python (``HyperparameterSweep``).

A sweep YAML names a base fit config and the dotted keys to vary::

    base_config: quickstart.yaml         # a path (relative to this file), or the config inline
    search_space:
      model.init_args.learning_rate: {type: float, low: 1.0e-4, high: 3.0e-2, log: true}
    fixed: {trainer.max_steps: 60}        # set in every trial (optional)
    metric: val/loss                      # eval_loss (the seed's name) means val/loss
    direction: minimize
    n_trials: 6
    sampler: tpe                          # tpe, random, grid, cmaes
    pruner: median                        # none, median, hyperband (or {type: ..., options})
    sweep_dir: runs/sweep                 # storage: sqlite:///<sweep_dir>/study.db by default

The seed's keys are accepted too: ``sweep_backend`` (optuna, grid, random), ``sweep_n_trials``,
``sweep_metric``, ``sweep_direction`` and ``sweep_params`` (JSON).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from autotrain_pl.errors import AutotrainError
from autotrain_pl.sweep.fit_trials import ISOLATIONS, check_keys, run_fit_trial
from autotrain_pl.sweep.report import summary_table, write_best, write_best_config, write_plots
from autotrain_pl.sweep.space import ParameterRange, parse_range, parse_space
from autotrain_pl.sweep.study import (
    SweepResult,
    check_direction,
    make_pruner,
    normalize_sampler,
    open_storage,
    open_study,
    redacted,
    run_trials,
    storage_url,
)

#: the seed's flag names -> ours
SEED_KEYS = {"sweep_backend": "sampler", "sweep_n_trials": "n_trials", "sweep_metric": "metric",
             "sweep_direction": "direction", "sweep_params": "search_space"}


def metric_key(name: str) -> str:
    """The logged key of a metric: the seed's (Hugging Face's) ``eval_loss`` is ``val/loss``."""
    if name.startswith("eval_"):
        return "val/" + name.removeprefix("eval_")
    return "val/loss" if name == "val_loss" else name


@dataclass
class SweepSettings:
    """A sweep YAML, checked. See the module docstring for the keys."""

    base_config: Any = None
    search_space: Any = None
    fixed: dict[str, Any] = field(default_factory=dict)
    metric: str = "val/loss"
    direction: str = "minimize"
    n_trials: int | None = 10
    timeout: float | None = None
    sampler: str = "tpe"
    pruner: Any = "none"
    seed: int | None = None
    storage: str | None = None
    study_name: str | None = None
    sweep_dir: str = "runs/sweep"
    isolation: str = "in_process"
    source: Path | None = None

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], source: Path | None = None) -> SweepSettings:
        raw = dict(raw)
        for seed_key, ours in SEED_KEYS.items():
            if seed_key in raw:
                if ours in raw:
                    raise AutotrainError(f"{seed_key} and {ours} both given; keep one")
                raw[ours] = raw.pop(seed_key)
        known = {f.name for f in fields(cls)} - {"source"}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise AutotrainError(f"{_where(source)}: unknown sweep key(s) {', '.join(unknown)}; "
                                 f"the keys are {', '.join(sorted(known | set(SEED_KEYS)))}")
        settings = cls(**raw, source=source)
        settings.check()
        return settings

    def check(self) -> None:
        if isinstance(self.search_space, str):  # sweep_params as JSON, as the seed passes it
            try:
                self.search_space = json.loads(self.search_space)
            except json.JSONDecodeError as error:
                raise AutotrainError(f"search_space (sweep_params) is not JSON: {error}") from None
        if self.base_config is None:
            raise AutotrainError(f"{_where(self.source)}: base_config is missing: give the fit "
                                 "config to sweep, as a path or inline")
        self.metric = metric_key(str(self.metric))
        self.sampler = normalize_sampler(self.sampler)
        check_direction(self.direction)
        if self.isolation not in ISOLATIONS:
            raise AutotrainError(f"isolation={self.isolation!r}: use one of "
                                 f"{', '.join(ISOLATIONS)}")
        if self.n_trials is not None and (isinstance(self.n_trials, bool) or
                                          not isinstance(self.n_trials, int) or self.n_trials < 1):
            raise AutotrainError(f"n_trials={self.n_trials!r} must be a whole number >= 1")
        if self.timeout is not None and not (isinstance(self.timeout, int | float) and
                                             self.timeout > 0):
            raise AutotrainError(f"timeout={self.timeout!r} must be a number of seconds > 0")

    def base(self) -> dict[str, Any]:
        """The base fit config as a mapping (read from its file when given as a path)."""
        if isinstance(self.base_config, Mapping):
            return dict(self.base_config)
        path = Path(str(self.base_config))
        if not path.is_absolute() and self.source is not None and \
                (self.source.parent / path).is_file():
            path = self.source.parent / path
        if not path.is_file():
            raise AutotrainError(f"base_config={self.base_config}: no such file (a path is read "
                                 "relative to the sweep config, then to the working directory)")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as error:
            raise AutotrainError(f"base_config={path}: not valid YAML ({error})") from None
        if not isinstance(loaded, dict):
            raise AutotrainError(f"base_config={path}: expected a fit config mapping")
        return loaded


def load_settings(path: str | os.PathLike, overrides: Mapping[str, Any] = ()) -> SweepSettings:
    path = Path(path)
    if not path.is_file():
        raise AutotrainError(f"--config {path}: no such file")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise AutotrainError(f"--config {path}: not valid YAML ({error})") from None
    if not isinstance(raw, dict):
        raise AutotrainError(f"--config {path}: expected a mapping of sweep keys")
    raw.update({k: v for k, v in dict(overrides).items() if v is not None})
    return SweepSettings.from_mapping(raw, source=path)


def run_fit_sweep(settings: SweepSettings, echo: Callable[[str], None] = print) -> SweepResult:
    """Run (or join, or resume) the sweep ``settings`` describe; write its reports."""
    base = settings.base()
    ranges = parse_space(settings.search_space)
    sweep_dir = Path(settings.sweep_dir).resolve()
    sweep_dir.mkdir(parents=True, exist_ok=True)
    fixed = dict(settings.fixed or {})
    check_keys(base, {**fixed, **{r.name: r.sample_value() for r in ranges}}, sweep_dir)
    url = storage_url(settings.storage, sweep_dir)
    storage = open_storage(url)
    max_steps = fixed.get("trainer.max_steps", (base.get("trainer") or {}).get("max_steps"))
    max_steps = max_steps if isinstance(max_steps, int) and max_steps > 0 else None
    pruner = make_pruner(settings.pruner, max_steps)
    seed = settings.seed if settings.seed is not None else int(base.get("seed_everything") or 0)
    study = open_study(settings.study_name or sweep_dir.name, storage, settings.sampler, ranges,
                       settings.direction, seed, pruner)
    ran = run_trials(study, lambda trial: run_fit_trial(
        trial, base, ranges, fixed, sweep_dir, url, settings.metric, settings.pruner, max_steps,
        settings.isolation),
        settings.n_trials, settings.timeout, ranges)
    result = SweepResult.of(study, settings.metric)
    echo(summary_table(result))
    echo(f"this worker ran {ran} trial(s); study {study.study_name!r} in {redacted(url)} "
         f"(optuna-dashboard {redacted(url)} shows it)")
    if result.best_trial is not None:
        write_best(result, sweep_dir)
        best = write_best_config(base, {**fixed, **result.best_params}, sweep_dir, result)
        echo(f"best config: aitrain fit --config {best}")
    plots = write_plots(result, sweep_dir)
    echo("plots: " + "; ".join(f"{name}: {where}" for name, where in plots.items()))
    return result


def _where(source: Path | None) -> str:
    return f"--config {source}" if source else "sweep config"


class HyperparameterSweep:
    """Sweep any Python function: ``objective_function(params) -> float``.

    Example::

        sweep = HyperparameterSweep(objective_function=train, optimization_metric="val/loss",
                                    num_trials=20, backend="optuna")
        sweep.add_parameter(ParameterRange("lr", "log_uniform", low=1e-5, high=1e-2))
        result = sweep.run()
        result.best_params   # {"lr": ...}

    ``storage`` (a database URL) shares the study between processes and machines, and makes a
    second ``run()`` resume it; without one the study lives in memory.
    """

    def __init__(self, objective_function: Callable[[dict[str, Any]], float],
                 optimization_metric: str = "val/loss", num_trials: int | None = 10,
                 backend: str = "optuna", direction: str = "minimize",
                 parameters: Sequence[ParameterRange] | Mapping[str, Any] = (),
                 timeout: float | None = None, pruner: Any = "none", seed: int | None = 0,
                 storage: str | None = None, study_name: str = "sweep") -> None:
        if not callable(objective_function):
            raise AutotrainError("objective_function must be callable: params -> metric value")
        self.objective_function = objective_function
        self.optimization_metric = optimization_metric
        self.num_trials, self.timeout, self.seed = num_trials, timeout, seed
        self.backend = normalize_sampler(backend, field="backend")
        self.direction, self.pruner = direction, pruner
        self.storage, self.study_name = storage, study_name
        self.parameters: list[ParameterRange] = []
        items = parameters.items() if isinstance(parameters, Mapping) else \
            ((None, p) for p in parameters)
        for name, spec in items:
            self.add_parameter(spec if name is None else parse_range(name, spec))

    def add_parameter(self, parameter: ParameterRange) -> HyperparameterSweep:
        if not isinstance(parameter, ParameterRange):
            raise AutotrainError(f"add_parameter takes a ParameterRange, got {parameter!r}")
        self.parameters = [p for p in self.parameters if p.name != parameter.name] + [parameter]
        return self

    def run(self) -> SweepResult:
        ranges = parse_space(self.parameters, field="parameters")
        study = open_study(self.study_name, open_storage(self.storage), self.backend, ranges,
                           self.direction, self.seed, make_pruner(self.pruner, None))

        def objective(trial) -> float:
            return self.objective_function({r.name: r.suggest(trial) for r in ranges})

        run_trials(study, objective, self.num_trials, self.timeout, ranges)
        return SweepResult.of(study, self.optimization_metric)


def run_autotrain_sweep(model_config: Mapping[str, Any], sweep_parameters: Mapping[str, Any],
                        train_function: Callable[[dict[str, Any]], float] | None = None,
                        metric: str = "eval_loss", direction: str = "minimize",
                        n_trials: int = 10, backend: str = "optuna",
                        output_dir: str | None = None, **settings: Any) -> SweepResult:
    """The seed's entry point. With ``train_function``, each trial calls it with
    ``model_config`` updated by the trial's values, and its return value is the metric. Without
    one, ``model_config`` is a fit config, the parameters are its dotted keys, and each trial is
    an ``aitrain fit`` run in ``output_dir``."""
    if train_function is None:
        return run_fit_sweep(SweepSettings.from_mapping(dict(
            base_config=dict(model_config), search_space=dict(sweep_parameters), metric=metric,
            direction=direction, n_trials=n_trials, sampler=backend,
            sweep_dir=output_dir or "runs/sweep", **settings)))
    sweep = HyperparameterSweep(lambda params: train_function({**model_config, **params}),
                                optimization_metric=metric_key(metric), num_trials=n_trials,
                                backend=backend, direction=direction,
                                parameters=sweep_parameters, **settings)
    result = sweep.run()
    if output_dir:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        write_best(result, Path(output_dir))
    return result
