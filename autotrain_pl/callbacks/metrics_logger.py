"""``MetricsLoggerCallback``: every logged metric in one JSON-lines file, plus PNG curves.

A run's numbers should be readable without TensorBoard: ``<default_root_dir>/metrics.jsonl``
gets one row per logging call and at the end of fit
``<default_root_dir>/plots/`` gets ``loss.png`` (train and validation loss) and one PNG per other
validation (``val/``) or held-out evaluation (``eval/``) metric.

How: at ``on_fit_start`` (after every callback's ``setup``, so checkpoint and log directories are
already resolved) it adds a small Lightning ``Logger`` to ``trainer.loggers``. Whatever reaches
the loggers therefore reaches the file, at the step Lightning logs it, including values other
callbacks send to the loggers directly (``PeriodicEvalCallback``'s start and end evaluations).
Train-step rows follow ``trainer.log_every_n_steps``, as in every logger. A fresh fit starts a
new file; a resumed fit (``ckpt_path``) appends, and the plots keep the last value per step.

A row holds ``step`` (optimizer steps done when the values were measured: the row of the first
optimizer step says 1, a validation or evaluation before any training says 0; the same count as
``trainer.global_step``, checkpoints and ``best.json``), ``global_step`` (the same number, under
Lightning's name), ``epoch`` (0-based: the epoch of the latest training step, so a validation at
the end of an epoch, or an evaluation after the last one, belongs to that epoch), ``time`` (unix
seconds), ``elapsed_s`` and the metrics, e.g. ``train/loss_step`` or ``val/exact_match``. (Other
loggers, e.g. TensorBoard or CSV, get Lightning's own step, which is one less for train rows:
Lightning logs the metrics of the k-th optimizer step at k - 1.) Plots use ``step``.
"""

from __future__ import annotations

import json
import math
import re
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only

from autotrain_pl.errors import AutotrainError


def _number(value: Any) -> float | None:
    try:
        number = float(value.item() if hasattr(value, "item") else value)
    except (TypeError, ValueError, RuntimeError):
        return None
    return number


class JsonlMetricsLogger(Logger):
    """A Lightning logger that appends one JSON object per ``log_metrics`` call to a file.

    Args:
        path: the ``.jsonl`` file.
        save_dir: reported as the logger's directory (the run directory).
        version: reported version; the other loggers' one, so Lightning's ``v_num`` stays
            unchanged.
        trainer: read for ``global_step`` and ``epoch`` (held weakly). Without one, a row's
            step is the step Lightning passes.

    Attributes:
        train_epoch: the epoch of the latest training step, set by ``MetricsLoggerCallback``;
            while None, rows take ``trainer.current_epoch``.
    """

    def __init__(self, path: str | Path, save_dir: str | Path, version: int | str = 0,
                 trainer: Trainer | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self._save_dir = str(save_dir)
        self._version = version
        self._trainer = weakref.ref(trainer) if trainer is not None else None
        self._start = time.time()
        self.train_epoch: int | None = None

    @property
    def name(self) -> str:
        return "metrics_jsonl"

    @property
    def version(self) -> int | str:
        return self._version

    @property
    def save_dir(self) -> str:
        return self._save_dir

    @rank_zero_only
    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        """Hyperparameters live in the exported run config, not in the metrics file."""

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        values = {key: _number(value) for key, value in metrics.items()}
        logged_epoch = values.pop("epoch", None)
        trainer = self._trainer() if self._trainer is not None else None
        if trainer is not None:
            step = trainer.global_step  # optimizer steps done, for every row alike
            epoch = self.train_epoch if self.train_epoch is not None else trainer.current_epoch
        else:
            epoch = None if logged_epoch is None else int(logged_epoch)
        now = time.time()
        row = {"step": step, "global_step": step, "epoch": epoch, "time": round(now, 3),
               "elapsed_s": round(now - self._start, 3)}
        row.update({key: (None if value is None or math.isnan(value) else value)
                    for key, value in values.items()})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as file:
            file.write(json.dumps(row) + "\n")


class MetricsLoggerCallback(Callback):
    """Append every logged metric to ``<default_root_dir>/<filename>``; plot curves at the end.

    Args:
        filename: the JSON-lines file, relative to ``trainer.default_root_dir``.
        plots: write ``plots/loss.png`` and ``plots/val_<metric>.png`` at the end of fit.
    """

    def __init__(self, filename: str = "metrics.jsonl", plots: bool = True) -> None:
        if not filename or Path(filename).is_absolute() or ".." in Path(filename).parts:
            raise AutotrainError(
                f"MetricsLoggerCallback.filename={filename!r} must be a relative file name, "
                "e.g. metrics.jsonl (it goes in trainer.default_root_dir)"
            )
        self.filename = filename
        self.plots = bool(plots)
        self.logger: JsonlMetricsLogger | None = None

    def metrics_path(self, trainer: Trainer) -> Path:
        return Path(trainer.default_root_dir) / self.filename

    def plots_dir(self, trainer: Trainer) -> Path:
        return Path(trainer.default_root_dir) / "plots"

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        path = self.metrics_path(trainer)
        if trainer.is_global_zero and trainer.ckpt_path is None and path.exists():
            path.unlink()  # a fresh run starts a fresh file; a resumed run appends
        others = [lg for lg in trainer.loggers if not isinstance(lg, JsonlMetricsLogger)]
        version = others[0].version if others and others[0].version is not None else 0
        self.logger = JsonlMetricsLogger(path, trainer.default_root_dir, version, trainer)
        # Lightning has no hook through which a callback contributes a logger, and only a logger
        # sees every value at the step it is logged (including values other callbacks send to
        # the loggers directly), so the public ``loggers`` setter adds it here; ``teardown``
        # takes it out again, leaving the trainer as it was.
        trainer.loggers = [*others, self.logger]

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any,
                             batch_idx: int) -> None:
        # Lightning's own epoch is already the next one in hooks after an epoch ends (a final
        # evaluation, say); rows carry the epoch the latest step was trained in.
        if self.logger is not None:
            self.logger.train_epoch = trainer.current_epoch

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.plots and trainer.is_global_zero:
            path = self.metrics_path(trainer)
            if path.exists():
                write_plots(read_metrics(path), self.plots_dir(trainer))

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self.logger is not None and self.logger in trainer.loggers:
            trainer.loggers = [lg for lg in trainer.loggers if lg is not self.logger]


_ROW_FIELDS = frozenset({"step", "global_step", "epoch", "time", "elapsed_s"})


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a ``metrics.jsonl`` file."""
    with Path(path).open(encoding="utf-8") as file:
        return [json.loads(line) for line in file if line.strip()]


def metric_series(rows: list[dict[str, Any]]) -> dict[str, tuple[list[int], list[float]]]:
    """Per metric, steps and values sorted by step (the last value at a step wins)."""
    series: dict[str, dict[int, float]] = {}
    for row in rows:
        step = row.get("global_step", row.get("step"))  # files before steps matched: global
        if step is None:
            continue
        for key, value in row.items():
            if key in _ROW_FIELDS or value is None:
                continue
            series.setdefault(key, {})[int(step)] = float(value)
    return {key: (sorted(points), [points[s] for s in sorted(points)])
            for key, points in series.items()}


def write_plots(rows: list[dict[str, Any]], out_dir: str | Path) -> list[Path]:
    """``loss.png`` (train and validation loss) and ``val_<metric>.png`` per validation metric
    (``eval_<metric>.png`` per held-out evaluation metric)."""
    out = Path(out_dir)
    written = []
    for name, figure in plot_figures(rows).items():
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{name}.png"
        figure.savefig(path, dpi=100)
        written.append(path)
    return written


def plot_figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures ``write_plots`` saves, by file stem: ``loss``, ``val_<metric>`` and
    ``eval_<metric>``.

    Uses matplotlib's object API with the Agg canvas, so no GUI backend or pyplot state is
    touched (safe in notebooks and on headless machines). Step ticks are whole numbers.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    series = metric_series(rows)
    figures: dict[str, list[tuple[str, str]]] = {}
    train_loss = next((k for k in ("train/loss_step", "train/loss") if k in series), None)
    loss_curves = [(k, label) for k, label in ((train_loss, "train"), ("val/loss", "validation"))
                   if k in series]
    if loss_curves:
        figures["loss"] = loss_curves
    for key in sorted(series):
        if key.startswith(("val/", "eval/")) and key != "val/loss":
            label = key.partition("/")[2]
            figures[re.sub(r"[^A-Za-z0-9_.-]+", "_", key)] = [(key, label)]
    drawn = {}
    for name, curves in figures.items():
        figure = Figure(figsize=(6.4, 4.0), layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        for key, label in curves:
            steps, values = series[key]
            marker = "o" if len(steps) <= 30 or key.startswith(("val/", "eval/")) else None
            axes.plot(steps, values, label=label, marker=marker, markersize=3)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        steps = [step for key, _ in curves for step in series[key][0]]
        if max(steps) - min(steps) < 2:  # too short a span for whole-number ticks
            axes.set_xlim(max(min(steps) - 1, 0), max(steps) + 1)
        axes.set_xlabel("optimizer step")
        axes.set_ylabel("loss" if name == "loss" else curves[0][1])
        axes.set_title(name if name == "loss" else curves[0][0])
        axes.grid(alpha=0.3)
        if len(curves) > 1:
            axes.legend()
        drawn[name] = figure
    return drawn
