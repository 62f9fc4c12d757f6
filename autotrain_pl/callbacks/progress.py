"""What the console shows during a fit: ``AutotrainProgressBar``.

``AutotrainProgressBar`` is a Lightning ``ProgressBar`` drawn with Rich: one bar for the whole
run, in optimizer steps, and a short metrics line under it::

    step 83/700 ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━ 0:00:21 • 0:02:35 3.94it/s
    loss 1.234  lr 2.0e-04  tok/s 12.4k  val loss 1.478  val exact_match 0.120

- The bar counts optimizer steps (``trainer.global_step``), so its rate and time left hold with
  gradient accumulation too. Its label is ``step 83/700`` when ``max_steps`` ends the run and
  ``epoch 2/3 step 83/183`` when ``max_epochs`` does (epochs counted from 1).
- The metrics line shows, by name and when logged: ``loss`` (``train/loss``, the latest step),
  ``lr`` (``train/lr``, scientific notation), ``tok/s`` (``train/tokens_per_s``), ``val loss``
  (``val/loss``), every metric a callback of the trainer monitors (``EarlyStopping``,
  ``ModelCheckpoint(monitor=...)``, ``BestModelCallback``; ``val/exact_match`` shows as
  ``val exact_match``) and the names given in ``metrics``. Values come from
  ``trainer.callback_metrics``, so ``prog_bar`` flags do not decide what shows; ``v_num`` never
  does. The line breaks between metrics, never inside one, to fit the terminal.
- Validation (and sanity checking, ``trainer.validate/test/predict``) shows as a second bar of
  batches, ``Validation ━━━ 3/12``, while it runs.
- On a terminal (or in Jupyter) the display redraws in place a few times a second, from Rich's
  own refresh thread; a training step only updates numbers. When the output is not a terminal
  (a pipe, a CI or cluster log) nothing redraws: the same lines are printed at most once every
  ``NON_TTY_EVERY_S`` seconds and once when the run ends.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import ProgressBar
from lightning.pytorch.callbacks.progress.rich_progress import RichProgressBarTheme
from rich import get_console, reconfigure
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TaskID, TextColumn
from rich.text import Text

__all__ = ["AutotrainProgressBar", "format_metric"]

# Display name -> logged names, first found wins ("train/loss_step" when logged on step and epoch).
CORE_METRICS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("loss", ("train/loss_step", "train/loss")),
    ("lr", ("train/lr",)),
    ("tok/s", ("train/tokens_per_s",)),
    ("val loss", ("val/loss",)),
)
_CORE_NAMES = frozenset(name for _, names in CORE_METRICS for name in names)

MAX_REFRESH_PER_S = 10.0  # more is invisible, and each redraw takes the GIL from training
NON_TTY_EVERY_S = 60.0  # seconds between printed snapshots when the output is not a terminal


def format_metric(display_name: str, value: float) -> str:
    """``value`` as the bar shows it: lr in scientific notation, rates as 12.4k, others with
    about four significant digits (scientific below 0.001 and from 10000)."""
    if not math.isfinite(value):
        return str(value)
    if display_name == "lr":
        return f"{value:.1e}"
    magnitude = abs(value)
    if display_name == "tok/s":
        if magnitude >= 1e6:
            return f"{value / 1e6:.1f}M"
        return f"{value / 1e3:.1f}k" if magnitude >= 1e3 else f"{value:.0f}"
    if magnitude == 0:
        return "0.000"
    if magnitude < 1e-3 or magnitude >= 1e4:
        return f"{value:.2e}"
    return f"{value:.{3 if magnitude < 10 else 2 if magnitude < 100 else 1}f}"


def _display_name(name: str) -> str:
    return name.replace("/", " ", 1)


def _as_float(value: Any) -> float | None:
    try:
        return float(value.item() if hasattr(value, "item") else value)
    except (TypeError, ValueError, RuntimeError):
        return None


def _rich_total(total: float) -> float | None:
    """Lightning's batch or step count as Rich's task total: ``None`` (a pulsing bar) when
    unknown."""
    return float(total) if math.isfinite(total) and total >= 0 else None


def monitored_metrics(trainer: Trainer) -> list[str]:
    """The metrics the trainer's callbacks monitor (``EarlyStopping``, ``ModelCheckpoint``,
    ``BestModelCallback``, ...), in callback order, without repeats."""
    names: list[str] = []
    for callback in trainer.callbacks:
        monitor = getattr(callback, "monitor", None)
        if isinstance(monitor, str) and monitor and monitor not in names:
            names.append(monitor)
    return names


class _MetricsLine:
    """``name value`` items on as few lines as the width allows, broken only between items."""

    def __init__(self, items: Iterable[str], style: Any = "") -> None:
        self.items = list(items)
        self.style = style

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        lines: list[str] = []
        for item in self.items:
            if lines and cell_len(lines[-1]) + 2 + cell_len(item) <= options.max_width:
                lines[-1] += "  " + item
            else:
                lines.append(item)
        yield Text("\n".join(lines), style=self.style)


class _ProgressWithMetricsLine(Progress):
    """Rich's ``Progress`` with the metrics on their own line under the bars."""

    def __init__(self, *columns: ProgressColumn,
                 metrics_line: Callable[[], RenderableType | None], **kwargs: Any) -> None:
        self.metrics_line = metrics_line  # before Progress.__init__, which may render
        super().__init__(*columns, **kwargs)

    def get_renderables(self) -> Iterable[RenderableType]:
        tasks = self.tasks
        if any(task.visible for task in tasks):
            yield self.make_tasks_table(tasks)
        line = self.metrics_line()
        if line is not None:
            yield line


class _CountColumn(ProgressColumn):
    """``3/12`` batches for validation, test and predict bars; the train bar's label has it."""

    def __init__(self, style: Any) -> None:
        super().__init__()
        self.style = style

    def render(self, task: Task) -> Text:
        if not task.fields.get("count", True):
            return Text("")
        total = "--" if task.total is None else str(int(task.total))
        return Text(f"{int(task.completed)}/{total}", style=self.style)


class _TimeColumn(ProgressColumn):
    """``0:00:21 • 0:02:35``: time taken and time left."""

    max_refresh = 0.5  # seconds; steadier than a redraw each refresh

    def __init__(self, style: Any) -> None:
        super().__init__()
        self.style = style

    def render(self, task: Task) -> Text:
        elapsed = task.finished_time if task.finished else task.elapsed
        remaining = task.time_remaining

        def clock(seconds: float | None) -> str:
            return "-:--:--" if seconds is None else str(timedelta(seconds=int(seconds)))

        return Text(f"{clock(elapsed)} • {clock(remaining)}", style=self.style)


class _SpeedColumn(ProgressColumn):
    """``3.94it/s``: steps (or batches) a second."""

    def __init__(self, style: Any) -> None:
        super().__init__()
        self.style = style

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed or 0.0:.2f}it/s", style=self.style)


class AutotrainProgressBar(ProgressBar):
    """A Rich progress bar in optimizer steps with a short, readable metrics line.

    Args:
        refresh_rate: redraws per second on a terminal (at most ``MAX_REFRESH_PER_S``); 0
            disables the display.
        leave: accepted for ``RichProgressBar`` compatibility; the run's one bar always stays.
        theme: Rich styles, as for ``RichProgressBar``.
        console_kwargs: arguments for the Rich console, as for ``RichProgressBar``.
        metrics: more logged metric names to show, e.g. ``[train/grad_norm]``; shown as
            ``train grad_norm``.
    """

    def __init__(self, refresh_rate: int = 4, leave: bool = True,
                 theme: RichProgressBarTheme | None = None,
                 console_kwargs: dict[str, Any] | None = None,
                 metrics: Sequence[str] = ()) -> None:
        super().__init__()
        self._refresh_rate = refresh_rate
        self.leave = leave
        self.theme = theme if theme is not None else RichProgressBarTheme()
        self.console_kwargs = dict(console_kwargs or {})
        self.metrics = [str(name) for name in metrics]
        self._enabled = True
        self.progress: _ProgressWithMetricsLine | None = None  # the latest display
        self.train_progress_bar_id: TaskID | None = None
        self.eval_progress_bar_id: TaskID | None = None
        self._active = False  # a display is running
        self._live = False  # ... and redraws in place (a terminal), rather than printing
        self._shown: dict[str, str] = {}
        self._metrics_due = 0.0  # time.monotonic() from which to read the metrics again
        self._snapshot_due = 0.0  # the same, for the next printed snapshot (not a terminal)
        self._total_steps: float = math.inf
        self._epoch_bounded = False
        self._epoch = 0  # the epoch of the latest training batch

    # -- ProgressBar's public interface -------------------------------------------------------
    @property
    def refresh_rate(self) -> float:
        return self._refresh_rate

    @property
    def is_enabled(self) -> bool:
        return self._enabled and self._refresh_rate > 0

    @property
    def is_disabled(self) -> bool:
        return not self.is_enabled

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def get_metrics(self, trainer: Trainer, pl_module: LightningModule) -> dict[str, str]:
        """Display name -> formatted value of the metrics the bar shows (see the module doc)."""
        logged: Mapping[str, Any] = {**trainer.callback_metrics, **trainer.progress_bar_metrics}
        shown: dict[str, str] = {}
        for display, names in CORE_METRICS:
            value = next((v for n in names if (v := _as_float(logged.get(n))) is not None), None)
            if value is not None:
                shown[display] = format_metric(display, value)
        for name in [*monitored_metrics(trainer), *self.metrics]:
            display = _display_name(name)
            if name in _CORE_NAMES or display in shown:
                continue
            value = _as_float(logged.get(name))
            if value is not None:
                shown[display] = format_metric(display, value)
        return shown

    def train_description(self, trainer: Trainer) -> str:  # type: ignore[override]
        """``step 83/700``, or ``epoch 2/3 step 83/183`` when ``max_epochs`` ends the run."""
        total = f"/{int(self._total_steps)}" if math.isfinite(self._total_steps) else ""
        text = f"step {trainer.global_step}{total}"
        if self._epoch_bounded:
            text = f"epoch {self._epoch + 1}/{trainer.max_epochs} {text}"
        return text

    def configure_columns(self, trainer: Trainer) -> list[ProgressColumn]:
        """The columns of each bar: label, bar, ``3/12`` (not for the train bar), time, rate."""
        return [
            TextColumn("[progress.description]{task.description}"),
            BarColumn(bar_width=None, complete_style=self.theme.progress_bar,
                      finished_style=self.theme.progress_bar_finished,
                      pulse_style=self.theme.progress_bar_pulse),
            _CountColumn(style=self.theme.batch_progress),
            _TimeColumn(style=self.theme.time),
            _SpeedColumn(style=self.theme.processing_speed),
        ]

    # -- the display --------------------------------------------------------------------------
    def _start(self, trainer: Trainer) -> None:
        """A new display for this fit, validate, test or predict run (if none is running)."""
        if self._active or self.is_disabled:
            return
        if self.console_kwargs:
            reconfigure(**self.console_kwargs)
        console = get_console()  # Rich's shared console, so other Rich output lands above us
        rate = min(float(self._refresh_rate), MAX_REFRESH_PER_S)
        self.progress = _ProgressWithMetricsLine(
            *self.configure_columns(trainer), metrics_line=self._metrics_line,
            console=console, auto_refresh=True, refresh_per_second=rate)
        self.train_progress_bar_id = self.eval_progress_bar_id = None
        self._shown = {}
        self._metrics_due = 0.0
        self._snapshot_due = time.monotonic() + NON_TTY_EVERY_S
        # is_interactive is fixed when the console is made; is_terminal looks at the file now.
        self._live = (console.is_interactive and console.is_terminal) or console.is_jupyter
        if self._live:
            self.progress.start()
        self._active = True

    def _stop(self) -> None:
        """Ends the display; its last frame stays (printed once when not on a terminal)."""
        if not self._active:
            return
        self._active = False
        if self.progress is None:
            return
        if self._live:
            self.progress.stop()
        else:
            self._print_snapshot()

    def _print_snapshot(self) -> None:
        if self.progress is not None and (self._shown or any(t.visible
                                                             for t in self.progress.tasks)):
            self.progress.console.print(self.progress.get_renderable())

    def _tick(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """After a step or batch: fresh metrics now and then, and off a terminal a snapshot
        now and then. Cheap otherwise: reading metrics can wait on the accelerator."""
        now = time.monotonic()
        fitting = trainer.state.fn == "fit" and not trainer.sanity_checking
        if self._live:
            if fitting and now >= self._metrics_due:
                self._update_metrics(trainer, pl_module)
                self._metrics_due = now + 1.0 / min(float(self._refresh_rate), MAX_REFRESH_PER_S)
        elif now >= self._snapshot_due:
            if fitting:
                self._update_metrics(trainer, pl_module)
            self._print_snapshot()
            self._snapshot_due = now + NON_TTY_EVERY_S

    def _update_metrics(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._shown = self.get_metrics(trainer, pl_module)

    def _metrics_line(self) -> _MetricsLine | None:
        shown = self._shown  # read by Rich's refresh thread; replaced, never changed in place
        if not shown:
            return None
        return _MetricsLine((f"{k} {v}" for k, v in shown.items()), self.theme.metrics)

    def _styled(self, description: str) -> str:
        style = self.theme.description
        return f"[{style}]{description}" if style else description

    def _plan(self, trainer: Trainer) -> None:
        """Which limit ends the run, and its length in optimizer steps (inf when unknown)."""
        try:
            estimated = float(trainer.estimated_stepping_batches)
        except Exception:  # e.g. accumulation that changes between epochs
            estimated = math.inf
        if estimated < 0:
            estimated = math.inf
        max_steps, max_epochs = trainer.max_steps, trainer.max_epochs
        steps_bounded = max_steps is not None and max_steps > 0 and estimated >= max_steps
        self._epoch_bounded = not steps_bounded and max_epochs is not None and max_epochs > 0
        self._total_steps = float(max_steps) if steps_bounded else estimated

    @property
    def _drawing(self) -> bool:
        return self._active and self.is_enabled and self.progress is not None

    def _show_steps(self, trainer: Trainer) -> None:
        if not self._drawing:
            return
        assert self.progress is not None
        description = self._styled(self.train_description(trainer))
        if self.train_progress_bar_id is None:
            self.train_progress_bar_id = self.progress.add_task(
                description, total=_rich_total(self._total_steps),
                completed=trainer.global_step, count=False)
        else:
            self.progress.update(self.train_progress_bar_id, completed=trainer.global_step,
                                 description=description)

    def _new_eval_bar(self, description: str, total: float) -> None:
        """A fresh bar for an evaluation run (or its next dataloader), replacing the last one:
        a new task, as Rich cannot turn a task's known total back into an unknown one."""
        self._drop_eval_bar()
        if self._drawing:
            assert self.progress is not None
            self.eval_progress_bar_id = self.progress.add_task(
                self._styled(description), total=_rich_total(total))

    def _advance_eval_bar(self, trainer: Trainer, pl_module: LightningModule,
                          batch_idx: int) -> None:
        if not self._drawing or self.eval_progress_bar_id is None:
            return
        assert self.progress is not None
        self.progress.update(self.eval_progress_bar_id, completed=batch_idx + 1)
        self._tick(trainer, pl_module)

    def _drop_eval_bar(self) -> None:
        if self.progress is not None and self.eval_progress_bar_id is not None:
            self.progress.remove_task(self.eval_progress_bar_id)
        self.eval_progress_bar_id = None

    # -- fit ----------------------------------------------------------------------------------
    def on_sanity_check_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start(trainer)

    def on_sanity_check_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._drop_eval_bar()

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._plan(trainer)
        self._epoch = trainer.current_epoch
        self._start(trainer)
        self._show_steps(trainer)

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._epoch = trainer.current_epoch
        self._show_steps(trainer)

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        self._epoch = trainer.current_epoch
        if not self._drawing:
            return
        self._show_steps(trainer)
        self._tick(trainer, pl_module)

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # After every callback's on_train_end (a last evaluation included), before the
        # objective's export and the teardown summaries, so those print under the last frame.
        if self._drawing:
            if self.train_progress_bar_id is not None:
                self._show_steps(trainer)
            self._update_metrics(trainer, pl_module)
        self._stop()

    # -- validation, test, predict ------------------------------------------------------------
    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start(trainer)  # trainer.validate; in a fit the display is already running

    def on_validation_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any,
                                  batch_idx: int, dataloader_idx: int = 0) -> None:
        if self.is_disabled or not self.has_dataloader_changed(dataloader_idx):
            return
        description = (self.sanity_check_description if trainer.sanity_checking
                       else self.validation_description)
        self._new_eval_bar(description, self.total_val_batches_current_dataloader)

    def on_validation_batch_end(self, trainer: Trainer, pl_module: LightningModule,
                                outputs: Any, batch: Any, batch_idx: int,
                                dataloader_idx: int = 0) -> None:
        self._advance_eval_bar(trainer, pl_module, batch_idx)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.reset_dataloader_idx_tracker()
        if trainer.state.fn != "fit":
            self._stop()  # trainer.validate: its bar stays in the last frame
            return
        self._drop_eval_bar()
        if not trainer.sanity_checking and self._drawing:
            self._update_metrics(trainer, pl_module)

    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start(trainer)

    def on_test_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any,
                            batch_idx: int, dataloader_idx: int = 0) -> None:
        if self.is_enabled and self.has_dataloader_changed(dataloader_idx):
            self._new_eval_bar(self.test_description,
                               self.total_test_batches_current_dataloader)

    def on_test_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any,
                          batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._advance_eval_bar(trainer, pl_module, batch_idx)

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.reset_dataloader_idx_tracker()
        self._stop()

    def on_predict_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start(trainer)

    def on_predict_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any,
                               batch_idx: int, dataloader_idx: int = 0) -> None:
        if self.is_enabled and self.has_dataloader_changed(dataloader_idx):
            self._new_eval_bar(self.predict_description,
                               self.total_predict_batches_current_dataloader)

    def on_predict_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any,
                             batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._advance_eval_bar(trainer, pl_module, batch_idx)

    def on_predict_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.reset_dataloader_idx_tracker()
        self._stop()

    # -- the end, however it comes ------------------------------------------------------------
    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self._stop()

    def on_exception(self, trainer: Trainer, pl_module: LightningModule,
                     exception: BaseException) -> None:
        self._stop()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["progress"] = None  # holds locks and a thread: not picklable
        state["_active"] = False
        return state
