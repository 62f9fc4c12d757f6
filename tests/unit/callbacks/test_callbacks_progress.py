"""AutotrainProgressBar: short metric names, readable values, steps, within 80 columns; few
lines when the output is not a terminal; validate, test and predict runs."""

import io
import time

import pytest
import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.loggers import CSVLogger
from rich.cells import cell_len
from rich.console import Console

from autotrain_pl.callbacks import AutotrainModelSummary, AutotrainProgressBar, BestModelCallback
from autotrain_pl.callbacks import progress as progress_module
from autotrain_pl.callbacks.progress import format_metric


class LogsLikeAnObjective(LightningModule):
    """Logs the names, flags and kinds of value that ``objectives/base.py`` logs."""

    def __init__(self) -> None:
        super().__init__()
        self.model = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        loss = self.model(batch[0]).pow(2).mean() + 1.234
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=1)
        self.log("train/ppl", loss.exp(), on_step=True, on_epoch=False, batch_size=1)
        self.log("train/lr", 2e-4, prog_bar=True, on_step=True, batch_size=1)
        self.log("train/tokens_per_s", 12370.126, prog_bar=True, on_step=True, batch_size=1)
        self.log("train/grad_norm", 0.5, on_step=True, batch_size=1)
        self.log("train/skipped_steps", 0.0, on_step=True, batch_size=1)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val/loss", 1.478, prog_bar=True)
        self.log("val/ppl", 4.38)
        self.log("val/exact_match", 0.12)  # as PeriodicEvalCallback logs it: no prog_bar

    def test_step(self, batch, batch_idx):
        self.log("test/loss", 1.5)

    def predict_step(self, batch, batch_idx):
        return batch[0]

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _loader(n: int = 40):
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(n, 2)),
                                       batch_size=4)


def _fit(tmp_path, callbacks, bar=None, train=None, **kwargs):
    bar = bar or AutotrainProgressBar()
    options = dict(default_root_dir=tmp_path, log_every_n_steps=1, accelerator="cpu",
                   enable_model_summary=False, enable_checkpointing=False,
                   num_sanity_val_steps=0, logger=CSVLogger(tmp_path))  # a logger: a v_num
    options.update(kwargs)
    trainer = Trainer(callbacks=[bar, *callbacks], **options)
    module = LogsLikeAnObjective()
    trainer.fit(module, train_dataloaders=_loader() if train is None else train,
                val_dataloaders=_loader(8))
    return bar, trainer, module


def _render(bar: AutotrainProgressBar, width: int) -> list[str]:
    console = Console(width=width, file=io.StringIO(), record=True, color_system=None)
    console.print(bar.progress.get_renderable())
    return [line.rstrip() for line in console.export_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def step_run(tmp_path_factory):
    stopper = EarlyStopping(monitor="val/exact_match", mode="max", patience=100)
    return _fit(tmp_path_factory.mktemp("bar"), [stopper], max_steps=6, val_check_interval=3)


def test_metrics_by_short_name_with_the_monitored_one(step_run):
    bar, trainer, module = step_run
    shown = bar.get_metrics(trainer, module)
    assert list(shown) == ["loss", "lr", "tok/s", "val loss", "val exact_match"]
    assert shown["lr"] == "2.0e-04" and shown["tok/s"] == "12.4k"
    assert shown["val loss"] == "1.478" and shown["val exact_match"] == "0.120"
    assert float(shown["loss"]) > 1.2  # the last step's loss
    assert "v_num" not in shown  # a CSV logger is attached, so Lightning would show it


def test_label_counts_optimizer_steps(step_run):
    bar, trainer, _ = step_run
    assert bar.train_description(trainer) == "step 6/6"


@pytest.mark.parametrize("width", [80, 120])
def test_rendered_bar_fits_the_width(step_run, width):
    bar, _, _ = step_run
    lines = _render(bar, width)
    assert all(cell_len(line) <= width for line in lines), lines
    text = "\n".join(lines)
    assert lines[0].startswith("step 6/6 ")
    for item in ("loss 1.", "lr 2.0e-04", "tok/s 12.4k", "val loss 1.478",
                 "val exact_match 0.120"):
        assert sum(item in line for line in lines) == 1, (item, lines)  # whole, on one line
    assert "v_num" not in text and "train/" not in text and "Epoch" not in text
    if width == 120:
        assert len(lines) == 2  # bar, then all metrics on one line


def test_narrow_terminal_breaks_between_metrics_only(step_run):
    bar, _, _ = step_run
    lines = _render(bar, 40)
    metric_lines = lines[next(i for i, line in enumerate(lines) if line.startswith("loss ")):]
    assert len(metric_lines) == 2, lines
    assert all(cell_len(line) <= 40 for line in metric_lines)
    for item in ("lr 2.0e-04", "tok/s 12.4k", "val loss 1.478", "val exact_match 0.120"):
        assert sum(item in line for line in metric_lines) == 1, (item, metric_lines)


def test_best_model_monitor_and_extra_metrics(tmp_path):
    bar = AutotrainProgressBar(metrics=["train/grad_norm"])
    trainer = Trainer(callbacks=[bar, BestModelCallback(monitor="val/ppl")],
                      default_root_dir=tmp_path, accelerator="cpu", logger=False)
    trainer.callback_metrics.update({"val/ppl": torch.tensor(4.38), "train/grad_norm":
                                     torch.tensor(0.5), "val/loss": torch.tensor(1.5)})
    assert bar.get_metrics(trainer, LogsLikeAnObjective()) == {
        "val loss": "1.500", "val ppl": "4.380", "train grad_norm": "0.500"}


@pytest.mark.parametrize(("limits", "label"), [
    (dict(max_epochs=2, limit_train_batches=3), "epoch 2/2 step 6/6"),
    (dict(max_epochs=1, max_steps=100, limit_train_batches=4), "epoch 1/1 step 4/4"),
    (dict(max_epochs=1, max_steps=3), "step 3/3"),  # 10 batches: max_steps ends the run
])
def test_epochs_show_only_when_max_epochs_ends_the_run(tmp_path, limits, label):
    bar, trainer, _ = _fit(tmp_path, [], limit_val_batches=0, **limits)
    assert bar.train_description(trainer) == label
    assert _render(bar, 80)[0].startswith(label + " ")


@pytest.mark.parametrize(("name", "value", "text"), [
    ("lr", 2e-4, "2.0e-04"), ("lr", 0.0, "0.0e+00"),
    ("tok/s", 950.4, "950"), ("tok/s", 12370.1, "12.4k"), ("tok/s", 2.5e6, "2.5M"),
    ("loss", 8.0299, "8.030"), ("loss", 12.345, "12.35"), ("val ppl", 3993.88, "3993.9"),
    ("loss", 0.0, "0.000"), ("loss", 1.2e-4, "1.20e-04"), ("val ppl", 2.5e5, "2.50e+05"),
    ("loss", float("nan"), "nan"),
])
def test_format_metric(name, value, text):
    assert format_metric(name, value) == text


def test_model_summary_without_flops_when_none_were_measured(tmp_path, capsys):
    trainer = Trainer(callbacks=[AutotrainModelSummary()], default_root_dir=tmp_path,
                      accelerator="cpu", logger=False, max_steps=1, enable_progress_bar=False,
                      enable_checkpointing=False, limit_val_batches=0)
    trainer.fit(LogsLikeAnObjective(), train_dataloaders=_loader())
    out = capsys.readouterr().out
    assert "Total params" in out and "Linear" in out
    assert "FLOPs" not in out


def test_validate_shows_a_validation_bar(tmp_path):
    bar = AutotrainProgressBar()
    trainer = Trainer(callbacks=[bar], default_root_dir=tmp_path, accelerator="cpu",
                      logger=False, enable_model_summary=False)
    module = LogsLikeAnObjective()
    trainer.validate(module, _loader(8))
    lines = _render(bar, 80)
    assert lines[0].startswith("Validation") and "2/2" in lines[0]
    assert not any(line.startswith("loss ") or "val loss" in line for line in lines)


def test_test_and_predict_show_their_bars(tmp_path):
    bar = AutotrainProgressBar()
    trainer = Trainer(callbacks=[bar], default_root_dir=tmp_path, accelerator="cpu",
                      logger=False, enable_model_summary=False)
    module = LogsLikeAnObjective()
    trainer.test(module, _loader(12))
    assert _render(bar, 80)[0].startswith("Testing") and "3/3" in _render(bar, 80)[0]
    trainer.predict(module, _loader(8))
    lines = _render(bar, 80)
    assert lines[0].startswith("Predicting") and "2/2" in lines[0] and len(lines) == 1


def test_sanity_check_leaves_no_bar_behind(tmp_path):
    bar, _, _ = _fit(tmp_path, [], max_steps=4, num_sanity_val_steps=2, val_check_interval=2)
    lines = _render(bar, 80)
    assert lines[0].startswith("step 4/4 ")
    assert not any("Sanity" in line or "Validation" in line for line in lines), lines


def test_unknown_length_pulses_with_a_step_count(tmp_path):
    class Endless(torch.utils.data.IterableDataset):
        def __iter__(self):
            for _ in range(20):
                yield torch.randn(2),

    train = torch.utils.data.DataLoader(Endless(), batch_size=4)
    bar, trainer, _ = _fit(tmp_path, [], train=train, max_epochs=1, limit_val_batches=0)
    assert bar.train_description(trainer) == "epoch 1/1 step 5"
    assert _render(bar, 80)[0].startswith("epoch 1/1 step 5 ")


def test_refresh_rate_zero_shows_nothing(tmp_path, capsys):
    bar, _, _ = _fit(tmp_path, [], bar=AutotrainProgressBar(refresh_rate=0), max_steps=3)
    assert bar.progress is None
    assert "step" not in capsys.readouterr().out


def _printed(capsys) -> list[str]:
    return [line for line in capsys.readouterr().out.splitlines() if line.strip()]


def test_off_a_terminal_the_last_frame_prints_once(tmp_path, capsys):
    capsys.readouterr()
    _fit(tmp_path, [], max_steps=10, val_check_interval=2)  # pytest's stdout: not a terminal
    lines = _printed(capsys)
    assert len(lines) == 2, lines  # the bar and the metrics, not a frame per step
    assert lines[0].startswith("step 10/10 ") and lines[1].startswith("loss ")


def test_off_a_terminal_snapshots_are_spaced_in_time(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(progress_module, "NON_TTY_EVERY_S", 0.0)  # one per step or batch
    capsys.readouterr()
    _fit(tmp_path, [], max_steps=4, limit_val_batches=0)
    steps = [line for line in _printed(capsys) if line.startswith("step ")]
    assert [line.split()[1] for line in steps] == ["1/4", "2/4", "3/4", "4/4", "4/4"], steps


def test_on_a_terminal_the_display_redraws_in_place(tmp_path, monkeypatch):
    out = io.StringIO()
    terminal = Console(file=out, force_terminal=True, force_interactive=True, width=80,
                       color_system=None)
    monkeypatch.setattr(progress_module, "get_console", lambda: terminal)
    start = time.monotonic()
    bar, _, _ = _fit(tmp_path, [], max_steps=6, val_check_interval=3)
    seconds = time.monotonic() - start
    text = out.getvalue()
    assert "\x1b[" in text  # cursor moves: one display redrawn, not lines appended
    frames = text.count("step ")
    # Rich redraws when a bar is added (the train bar, one per validation), at stop, and at
    # most 4 times a second in between: never once per step.
    bars_added = 1 + 2
    assert 1 <= frames <= bars_added + 1 + 4 * seconds + 1, frames
    last = text[text.rindex("step "):]
    assert last.startswith("step 6/6 ") and "val loss 1.478" in last
