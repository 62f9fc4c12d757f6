"""MetricsLoggerCallback: one row per logging call, loggers restored, readable PNG curves."""

import pytest
from lightning.pytorch.loggers import CSVLogger

from autotrain_pl.callbacks import MetricsLoggerCallback, PeriodicEvalCallback
from autotrain_pl.callbacks.metrics_logger import (
    metric_series,
    plot_figures,
    read_metrics,
    write_plots,
)
from autotrain_pl.errors import AutotrainError


def test_rows_for_train_val_and_direct_logs(tmp_path, fakes, scripted):
    callback = MetricsLoggerCallback()
    trainer = fakes.trainer(tmp_path, [PeriodicEvalCallback(eval_at_start=True), callback],
                            max_steps=4, val_check_interval=2, limit_val_batches=1)
    scripted([0.1, 0.2, 0.3])
    trainer.fit(fakes.objective(), datamodule=fakes.data())
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["global_step"] for r in rows if "train/loss" in r] == [1, 2, 3, 4]
    assert [(r["global_step"], r["val/exact_match"]) for r in rows if "val/exact_match" in r] == [
        (0, pytest.approx(0.1)), (2, pytest.approx(0.2)), (4, pytest.approx(0.3))]
    assert all(isinstance(r["time"], float) and r["epoch"] == 0 for r in rows)
    assert trainer.loggers == []  # the trainer had no logger and gets none left behind
    assert {p.name for p in (tmp_path / "plots").iterdir()} == {"loss.png",
                                                                "val_exact_match.png"}


def test_keeps_other_loggers_and_their_version(tmp_path, fakes):
    csv = CSVLogger(tmp_path, name="logs")
    trainer = fakes.trainer(tmp_path, [MetricsLoggerCallback(plots=False)], max_steps=2,
                            logger=csv)
    trainer.fit(fakes.objective(), datamodule=fakes.data())
    assert trainer.loggers == [csv] and not (tmp_path / "plots").exists()
    assert len(read_metrics(tmp_path / "metrics.jsonl")) >= 2


def test_fresh_fit_starts_a_fresh_file(tmp_path, fakes):
    (tmp_path / "metrics.jsonl").write_text('{"step": 99, "train/loss": 1.0}\n')
    trainer = fakes.trainer(tmp_path, [MetricsLoggerCallback(plots=False)], max_steps=1)
    trainer.fit(fakes.objective(), datamodule=fakes.data())
    assert all(r["step"] != 99 for r in read_metrics(tmp_path / "metrics.jsonl"))


def test_series_keep_the_last_value_per_step_and_plot(tmp_path):
    rows = [{"step": 0, "global_step": 1, "train/loss_step": 2.0},
            {"step": 1, "global_step": 2, "train/loss_step": 1.5, "val/loss": 1.8},
            {"step": 1, "global_step": 2, "val/loss": 1.7, "val/bleu": 0.1}]
    series = metric_series(rows)
    assert series["val/loss"] == ([2], [1.7]) and series["train/loss_step"] == ([1, 2], [2.0, 1.5])
    written = write_plots(rows, tmp_path)
    assert sorted(p.name for p in written) == ["loss.png", "val_bleu.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in written)


def test_filename_must_be_relative():
    with pytest.raises(AutotrainError, match="filename"):
        MetricsLoggerCallback(filename="/abs/metrics.jsonl")


def test_row_steps_count_optimizer_steps_and_evaluations_keep_their_epoch(tmp_path, fakes,
                                                                          scripted):
    # Two epochs of 3 batches; PeriodicEval at the start, at the validations (the 2nd batch of
    # each epoch: steps 2 and 5) and at the end (step 6), after the last epoch has closed.
    scripted([0.1, 0.2, 0.3, 0.4])
    periodic = PeriodicEvalCallback(eval_at_start=True)
    trainer = fakes.trainer(tmp_path, [periodic, MetricsLoggerCallback(plots=False)],
                            max_steps=-1, max_epochs=2, limit_train_batches=3,
                            val_check_interval=2, limit_val_batches=1)
    trainer.fit(fakes.objective(), datamodule=fakes.data())
    assert trainer.current_epoch == 2  # what Lightning itself reports after the last epoch
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert all(r["step"] == r["global_step"] for r in rows)
    train = [(r["step"], r["epoch"]) for r in rows if "train/loss" in r]
    assert train == [(1, 0), (2, 0), (3, 0), (4, 1), (5, 1), (6, 1)]  # first step: step 1
    evals = [(r["step"], r["epoch"]) for r in rows if "val/exact_match" in r]
    # The end evaluation belongs to the last epoch (1), not to "epoch 2".
    assert evals == [(0, 0), (2, 0), (5, 1), (6, 1)]
    assert [h["when"] for h in periodic.history] == ["start", "validation", "validation", "end"]


def test_one_epoch_run_ends_in_epoch_zero(tmp_path, fakes, scripted):
    scripted([0.1, 0.2, 0.3])
    trainer = fakes.trainer(tmp_path, [PeriodicEvalCallback(eval_at_start=True),
                                       MetricsLoggerCallback(plots=False)],
                            max_steps=-1, max_epochs=1, limit_train_batches=3,
                            val_check_interval=2, limit_val_batches=1)
    trainer.fit(fakes.objective(), datamodule=fakes.data())
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert {r["epoch"] for r in rows} == {0}
    assert [r["step"] for r in rows if "val/exact_match" in r] == [0, 2, 3]  # 3: the end


def test_step_ticks_are_whole_numbers():
    rows = [{"step": s, "global_step": s, "train/loss_step": 2.0 / s} for s in range(1, 6)]
    rows.append({"step": 5, "global_step": 5, "val/loss": 0.5, "val/exact_match": 0.2})
    figures = plot_figures(rows)
    assert set(figures) == {"loss", "val_exact_match"}
    for figure in figures.values():
        figure.canvas.draw()
        ticks = figure.axes[0].get_xticks()
        assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks)
