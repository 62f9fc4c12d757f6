"""The Lightning side of a sweep trial: report each validation to optuna, stop a pruned trial,
and leave the trial's result where the sweep reads it.

optuna-integration's ``PyTorchLightningPruningCallback`` does not fit: it reports once per epoch
(our runs are counted in optimizer steps, often inside one epoch, and optuna ignores a second
report at the same step), it needs a live ``Trial`` object (a trial run from a YAML config, or in
a subprocess, has only the storage URL and the trial id), and it raises out of the validation
hook, skipping the run's checkpoint and export. This callback reports at the global step, loads
the trial from the storage, and stops the fit the way early stopping does.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback

RESULT_FILE = "sweep_result.json"


class SweepTrialReporter(Callback):
    """Reports ``monitor`` after every validation to the trial ``trial_id`` of the study in
    ``storage``, and writes ``sweep_result.json`` (the last validated value, its step, the steps
    run, whether the trial was pruned) into ``result_dir``.

    Args:
        storage: the study's database URL.
        study_name: the study.
        trial_id: optuna's storage id of the trial (``trial._trial_id``).
        monitor: the validation metric, e.g. ``val/loss``.
        result_dir: where to write the result (the trial's run directory).
        pruner: the sweep's pruner (``none``, ``median``, ``hyperband`` or a mapping with
            ``type``): optuna keeps no pruner in the storage, so the trial is told which.
        max_resource: the sweep's step budget per trial (Hyperband's ``max_resource``).
    """

    def __init__(self, storage: str, study_name: str, trial_id: int, monitor: str,
                 result_dir: str, pruner: str | dict | None = None,
                 max_resource: int | None = None) -> None:
        self.storage, self.study_name, self.trial_id = storage, study_name, trial_id
        self.monitor, self.pruner, self.max_resource = monitor, pruner, max_resource
        self.result_path = Path(result_dir) / RESULT_FILE
        self.result: dict = {"value": None, "step": None, "steps": 0, "pruned": False}
        self._trial = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:  # no stale result from an earlier attempt survives a new one
            self._write()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        if trainer.is_global_zero:
            self._report(trainer)
        # Rank 0 asks optuna; under DDP every rank must stop at the same step, or the others
        # would wait at the next all-reduce for a rank that left.
        pruned = trainer.strategy.broadcast(self.result["pruned"], src=0)
        self.result["pruned"] = pruned
        trainer.should_stop = trainer.should_stop or pruned

    def _report(self, trainer: L.Trainer) -> None:
        metric = trainer.callback_metrics.get(self.monitor)
        step = trainer.global_step
        self.result.update(value=None if metric is None else float(metric), step=step,
                           steps=step, known=sorted(trainer.callback_metrics))
        value = self.result["value"]
        if value is not None and math.isfinite(value):
            trial = self._load_trial()
            trial.report(value, step)
            if trial.should_prune():  # never, with no pruner
                self.result["pruned"] = True
        self._write()

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            self.result["steps"] = trainer.global_step
            self._write()

    def _load_trial(self):
        if self._trial is None:
            import optuna

            from autotrain_pl.sweep.study import make_pruner

            study = optuna.load_study(study_name=self.study_name, storage=self.storage,
                                      pruner=make_pruner(self.pruner, self.max_resource))
            self._trial = optuna.trial.Trial(study, self.trial_id)
        return self._trial

    def _write(self) -> None:
        self.result_path.parent.mkdir(parents=True, exist_ok=True)
        self.result_path.write_text(json.dumps(self.result), encoding="utf-8")


def read_result(run_dir: Path) -> dict:
    path = Path(run_dir) / RESULT_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
