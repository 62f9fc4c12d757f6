"""What a finished sweep leaves in its directory: the best parameters (``best.json``), a
ready-to-run ``best.yaml``, a summary table, and optuna's matplotlib plots."""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from optuna.trial import TrialState

from autotrain_pl.sweep.fit_trials import trial_config, write_config
from autotrain_pl.sweep.study import FAIL_REASON, SweepResult, superseded


def write_best(result: SweepResult, sweep_dir: Path) -> Path:
    path = sweep_dir / "best.json"
    path.write_text(json.dumps({"trial": result.best_trial, "metric": result.metric,
                                "value": result.best_value, "params": result.best_params},
                               indent=2), encoding="utf-8")
    return path


def summary_table(result: SweepResult) -> str:
    """One row per trial (state, value, optimizer steps, parameters, why it failed), then the
    totals and the best trial."""
    gone = superseded(result.trials)
    trials = [t for t in result.trials if t.number not in gone]
    names = sorted({name for t in trials for name in t.params})
    header = ["trial", "state", result.metric, "steps", *(n.rsplit(".", 1)[-1] for n in names)]
    rows = [header]
    for t in trials:
        value = "" if t.value is None else f"{t.value:.4g}"
        params = [_short(t.params.get(n)) for n in names]
        row = [str(t.number), t.state.name.lower(), value, str(t.user_attrs.get("steps", "")),
               *params]
        if t.user_attrs.get(FAIL_REASON):
            row.append(str(t.user_attrs[FAIL_REASON])[:120])
        rows.append(row)
    widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) if i < len(widths) else cell
                       for i, cell in enumerate(row)).rstrip() for row in rows]
    steps = sum(int(t.user_attrs.get("steps") or 0) for t in trials)
    lines.append(f"{result.count(TrialState.COMPLETE)} complete, "
                 f"{result.count(TrialState.PRUNED)} pruned, {result.count(TrialState.FAIL)} "
                 f"failed; {steps} optimizer steps in all")
    if result.best_trial is not None:
        lines.append(f"best: trial {result.best_trial}, {result.metric}={result.best_value:.4g}, "
                     f"{json.dumps(result.best_params)}")
    return "\n".join(lines)


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def write_plots(result: SweepResult, sweep_dir: Path) -> dict[str, str]:
    """optuna's optimization history, parameter importances, and a parallel-coordinate plot (a
    slice plot for one parameter) as PNGs. Returns each plot's path, or why it was skipped (too
    few finished trials, say). Importances use PED-ANOVA: optuna's default fANOVA needs
    scikit-learn, which nothing else here does."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as vis
    from optuna.importance import PedAnovaImportanceEvaluator

    study = result.study
    params = sorted({name for t in result.trials for name in t.params})
    plots = {
        "history": lambda: vis.plot_optimization_history(study),
        "importances": lambda: vis.plot_param_importances(
            study, evaluator=PedAnovaImportanceEvaluator()),
        "parallel" if len(params) > 1 else "slice":
            (lambda: vis.plot_parallel_coordinate(study)) if len(params) > 1
            else (lambda: vis.plot_slice(study)),
    }
    written: dict[str, str] = {}
    with warnings.catch_warnings():  # every matplotlib plot of optuna's is "experimental"
        warnings.simplefilter("ignore")
        for name, draw in plots.items():
            path = sweep_dir / f"plot_{name}.png"
            try:
                axes = draw()
                figure = axes.flat[0].figure if hasattr(axes, "flat") else axes.figure
                figure.tight_layout()
                figure.savefig(path, dpi=100)
                plt.close(figure)
                written[name] = str(path)
            except Exception as error:  # noqa: BLE001 - a plot optuna cannot draw is skipped
                written[name] = f"skipped: {' '.join(str(error).split())[:120]}"
    return written


def write_best_config(base: Mapping[str, Any], values: Mapping[str, Any], sweep_dir: Path,
                      result: SweepResult) -> Path:
    """``best.yaml``: the base config with the best trial's values, in its own run directory."""
    config = trial_config(base, values, sweep_dir / "best")
    header = (f"# The best trial ({result.best_trial}) of the sweep in {sweep_dir}: "
              f"{result.metric}={result.best_value:.6g}.\n# aitrain fit --config {sweep_dir}/best.yaml\n")
    return write_config(config, sweep_dir / "best.yaml", header=header)
