"""Hyperparameter sweeps on optuna over the configs ``aitrain fit`` runs, or any Python function."""

from autotrain_pl.sweep.reporting import SweepTrialReporter
from autotrain_pl.sweep.runner import (
                                       HyperparameterSweep,
                                       SweepSettings,
                                       load_settings,
                                       run_autotrain_sweep,
                                       run_fit_sweep,
)
from autotrain_pl.sweep.space import ParameterRange
from autotrain_pl.sweep.study import SweepResult

__all__ = ["HyperparameterSweep", "ParameterRange", "SweepResult", "SweepSettings",
           "SweepTrialReporter", "load_settings", "run_autotrain_sweep", "run_fit_sweep"]
