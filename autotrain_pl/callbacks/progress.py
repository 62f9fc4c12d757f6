"""What the console shows during a fit: ``AutotrainProgressBar`` and ``AutotrainModelSummary``.

``AutotrainProgressBar`` is Lightning's ``RichProgressBar`` with one bar for the whole run, in
optimizer steps, and a short metrics line under it::

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

``AutotrainModelSummary`` is Lightning's ``RichModelSummary`` without the FLOPs column and
``Total FLOPs: 0`` line when no FLOPs were measured (Lightning measures them only for a module
with an ``example_input_array``, which objectives do not set).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import RichModelSummary, RichProgressBar
from lightning.pytorch.callbacks.progress.rich_progress import (
    BatchesProcessedColumn,
    CustomBarColumn,
    CustomProgress,
    CustomTimeColumn,
    ProcessingSpeedColumn,
    RichProgressBarTheme,
)
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.progress import Task, TextColumn
from rich.text import Text

__all__ = ["AutotrainModelSummary", "AutotrainProgressBar", "format_metric"]

# Display name -> logged names, first found wins ("train/loss_step" when logged on step and epoch).
CORE_METRICS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("loss", ("train/loss_step", "train/loss")),
    ("lr", ("train/lr",)),
    ("tok/s", ("train/tokens_per_s",)),
    ("val loss", ("val/loss",)),
)
_CORE_NAMES = frozenset(name for _, names in CORE_METRICS for name in names)


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


class _ProgressWithMetricsLine(CustomProgress):
    """Lightning's progress display with the metrics on their own line under the bars."""

    metrics_line: Any = None  # a callable returning a renderable or None

    def get_renderables(self) -> Iterable[Any]:
        yield self.make_tasks_table(self.tasks)
        line = self.metrics_line() if self.metrics_line is not None else None
        if line is not None:
            yield line


class _CountColumn(BatchesProcessedColumn):
    """``3/12`` batches for validation, test and predict bars; the train bar's label has it."""

    def __init__(self, bar: AutotrainProgressBar, style: Any) -> None:
        super().__init__(style)
        self._bar = bar

    def render(self, task: Task) -> Any:
        if task.id == self._bar.train_progress_bar_id:
            return Text("")
        return super().render(task)


class AutotrainProgressBar(RichProgressBar):
    """A Rich progress bar in optimizer steps with a short, readable metrics line.

    Args:
        refresh_rate: refreshes per second; 0 disables the display.
        leave: accepted for ``RichProgressBar`` compatibility; the run's one bar always stays.
        theme: Rich styles, as for ``RichProgressBar``.
        console_kwargs: arguments for the Rich console, as for ``RichProgressBar``.
        metrics: more logged metric names to show, e.g. ``[train/grad_norm]``; shown as
            ``train grad_norm``.
    """

    def __init__(self, refresh_rate: int = 100, leave: bool = True,
                 theme: RichProgressBarTheme | None = None,
                 console_kwargs: dict[str, Any] | None = None,
                 metrics: Sequence[str] = ()) -> None:
        super().__init__(refresh_rate=refresh_rate, leave=leave,
                         theme=theme if theme is not None else RichProgressBarTheme(),
                         console_kwargs=console_kwargs)
        self.metrics = [str(name) for name in metrics]
        self._shown: dict[str, str] = {}
        self._total_steps: float = math.inf
        self._epoch_bounded = False
        self._epoch = 0  # the epoch of the latest training batch

    # -- what shows ---------------------------------------------------------------------------
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

    def train_description(self, trainer: Trainer) -> str:
        """``step 83/700``, or ``epoch 2/3 step 83/183`` when ``max_epochs`` ends the run."""
        total = f"/{int(self._total_steps)}" if math.isfinite(self._total_steps) else ""
        text = f"step {trainer.global_step}{total}"
        if self._epoch_bounded:
            text = f"epoch {self._epoch + 1}/{trainer.max_epochs} {text}"
        return text

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

    def _metrics_line(self) -> _MetricsLine | None:
        trainer = self._trainer
        if (trainer is None or trainer.state.fn != "fit" or trainer.sanity_checking
                or not self._shown):
            return None
        return _MetricsLine((f"{k} {v}" for k, v in self._shown.items()), self.theme.metrics)

    # -- Lightning hooks and RichProgressBar internals ----------------------------------------
    def configure_columns(self, trainer: Trainer) -> list:
        return [
            TextColumn("[progress.description]{task.description}"),
            CustomBarColumn(bar_width=None, complete_style=self.theme.progress_bar,
                            finished_style=self.theme.progress_bar_finished,
                            pulse_style=self.theme.progress_bar_pulse),
            _CountColumn(self, style=self.theme.batch_progress),
            CustomTimeColumn(style=self.theme.time),
            ProcessingSpeedColumn(style=self.theme.processing_speed),
        ]

    def _init_progress(self, trainer: Trainer) -> None:
        super()._init_progress(trainer)
        progress = self.progress
        if progress is not None and not isinstance(progress, _ProgressWithMetricsLine):
            # RichProgressBar builds its CustomProgress inline; this subclass only adds a
            # rendering method, so switching the class keeps the started display intact.
            progress.__class__ = _ProgressWithMetricsLine
            progress.columns = tuple(c for c in progress.columns
                                     if c is not self._metric_component)
            progress.metrics_line = self._metrics_line

    def _styled(self, description: str) -> str:
        style = self.theme.description
        return f"[{style}]{description}" if style else description

    def _initialize_train_progress_bar_id(self) -> None:
        trainer = self.trainer
        if self.progress is None:
            return
        self.train_progress_bar_id = self.progress.add_task(
            self._styled(self.train_description(trainer)), total=self._total_steps,
            completed=trainer.global_step)

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._plan(trainer)
        super().on_train_start(trainer, pl_module)

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._epoch = trainer.current_epoch
        if self.is_disabled:
            return
        self._init_progress(trainer)
        if self.progress is None:
            return
        if self.train_progress_bar_id is None:
            self._initialize_train_progress_bar_id()
        else:
            self.progress.update(self.train_progress_bar_id, visible=True,
                                 description=self._styled(self.train_description(trainer)))
        self.refresh()

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        self._epoch = trainer.current_epoch
        if self.is_disabled:
            return
        if self.train_progress_bar_id is None:  # resumed mid-epoch
            self._initialize_train_progress_bar_id()
        if self.progress is not None and self.train_progress_bar_id is not None:
            self.progress.update(self.train_progress_bar_id, completed=trainer.global_step,
                                 description=self._styled(self.train_description(trainer)))
        self._update_metrics(trainer, pl_module)
        self.refresh()

    def _update_metrics(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.is_enabled:
            self._shown = self.get_metrics(trainer, pl_module)


class AutotrainModelSummary(RichModelSummary):
    """``RichModelSummary`` without the FLOPs column and total when no FLOPs were measured."""

    @staticmethod
    def summarize(summary_data: list[tuple[str, list[str]]], total_parameters: int,
                  trainable_parameters: int, model_size: float,
                  total_training_modes: dict[str, int], total_flops: int,
                  **summarize_kwargs: Any) -> None:
        if total_flops:
            RichModelSummary.summarize(summary_data, total_parameters, trainable_parameters,
                                       model_size, total_training_modes, total_flops,
                                       **summarize_kwargs)
            return
        from lightning.pytorch.utilities.model_summary import get_human_readable_count
        from lightning.pytorch.utilities.model_summary.model_summary import (
            get_formatted_model_size,
        )
        from rich import get_console
        from rich.table import Table

        columns = [(name, values) for name, values in summary_data if name != "FLOPs"]
        table = Table(header_style=summarize_kwargs.get("header_style", "bold magenta"))
        for name, _ in columns:
            if name == " ":
                table.add_column(name, style="dim")
            elif name == "Name":
                table.add_column(name, justify="left", no_wrap=True)
            elif name in ("Type", "Mode"):
                table.add_column(name)
            else:
                table.add_column(name, justify="right")
        for row in zip(*(values for _, values in columns), strict=True):
            table.add_row(*row)
        grid = Table.grid(expand=True)
        grid.add_column()
        frozen = total_parameters - trainable_parameters
        for label, value in (
            ("Trainable params", get_human_readable_count(int(trainable_parameters))),
            ("Non-trainable params", get_human_readable_count(int(frozen))),
            ("Total params", get_human_readable_count(int(total_parameters))),
            ("Total estimated model params size (MB)", get_formatted_model_size(model_size)),
            ("Modules in train mode", total_training_modes["train"]),
            ("Modules in eval mode", total_training_modes["eval"]),
        ):
            grid.add_row(f"[bold]{label}[/]: {value}")
        console = get_console()
        console.print(table)
        console.print(grid)
