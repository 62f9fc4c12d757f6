"""A short real fit with periodic generation eval, early stopping, best-model export and plots."""

import json
from pathlib import Path

import pytest
import torch
from lightning.pytorch import Trainer, seed_everything
from lightning.pytorch.callbacks import EarlyStopping

from autotrain_pl.callbacks import BestModelCallback, MetricsLoggerCallback, PeriodicEvalCallback
from autotrain_pl.callbacks.metrics_logger import read_metrics
from autotrain_pl.data import ChatDataModule
from autotrain_pl.objectives import SFTModule

DATA = "synthetic:arithmetic?n=256&n_valid=12&seed=0"


def _datamodule() -> ChatDataModule:
    return ChatDataModule(DATA, valid_path=DATA + "&split=valid", tokenizer="builtin:tiny",
                          chat_format="chatml", batch_size=4, max_length=24)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("evalfit")
    seed_everything(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 1M-parameter model runs faster on one thread, more so on busy CI
    periodic = PeriodicEvalCallback(metrics=["exact_match", "token_f1"], eval_at_start=True,
                                    limit=12, batch_size=12, max_new_tokens=4,
                                    num_samples_to_log=2, summary="test: accuracy")
    # exact_match lies in [0, 1], so it can never improve by min_delta=1: patience runs out.
    stopper = EarlyStopping(monitor="val/exact_match", mode="max", patience=2, min_delta=1.0)
    best = BestModelCallback(monitor="val/loss", mode="min")
    metrics_logger = MetricsLoggerCallback()
    # EarlyStopping first: its order in the list must not matter.
    trainer = Trainer(
        default_root_dir=root, max_steps=30, val_check_interval=3, log_every_n_steps=1,
        callbacks=[stopper, best, periodic, metrics_logger], enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False, accelerator="cpu",
        num_sanity_val_steps=0,
    )
    module = SFTModule(model_name_or_path="builtin:tiny", learning_rate=1e-3, export=False)
    try:
        trainer.fit(module, datamodule=_datamodule())
    finally:
        torch.set_num_threads(threads)
    return {"root": Path(root), "trainer": trainer, "periodic": periodic, "stopper": stopper,
            "best": best}


def test_early_stopping_stops_when_patience_runs_out(run):
    # Validations at steps 3 (first value), 6 and 9 (no improvement twice): stop at 9 of 30.
    assert run["trainer"].global_step == 9
    assert run["stopper"].stopped_epoch == 0 and run["trainer"].should_stop


def test_periodic_eval_history_and_summary(run, capsys):
    periodic = run["periodic"]
    assert [h["when"] for h in periodic.history] == ["start", "validation", "validation",
                                                     "validation"]
    assert [h["step"] for h in periodic.history] == [0, 3, 6, 9]
    assert periodic.end_metrics == {k: periodic.history[-1][k] for k in periodic.end_metrics}
    line = periodic.summary_line()
    assert line.startswith("test: accuracy before=") and " after=" in line


def test_metrics_file_has_train_and_val_rows(run):
    rows = read_metrics(run["root"] / "metrics.jsonl")
    assert any("train/loss_step" in r for r in rows)
    val_rows = [r for r in rows if "val/exact_match" in r]
    assert [r["global_step"] for r in val_rows] == [0, 3, 6, 9]
    assert [r["step"] for r in val_rows] == [0, 3, 6, 9]  # optimizer steps done, as above
    first_train = next(r for r in rows if "train/loss_step" in r)
    assert first_train["step"] == first_train["global_step"] == 1
    assert all({"step", "global_step", "epoch", "time", "elapsed_s"} <= set(r) for r in rows)
    assert any("val/loss" in r for r in rows) and any("val/token_f1" in r for r in rows)


def test_best_export_matches_best_logged_value(run):
    best_dir = run["root"] / "best"
    record = json.loads((best_dir / "best.json").read_text())
    rows = read_metrics(run["root"] / "metrics.jsonl")
    losses = {r["global_step"]: r["val/loss"] for r in rows if r.get("val/loss") is not None}
    best_step = min(losses, key=losses.get)
    assert record["value"] == pytest.approx(losses[best_step], rel=1e-6)
    assert record["step"] == best_step and record["monitor"] == "val/loss"
    assert (best_dir / "autotrain.json").exists() and (best_dir / "config.json").exists()


def test_plots_written(run):
    plots = run["root"] / "plots"
    for name in ("loss.png", "val_exact_match.png", "val_token_f1.png", "val_ppl.png"):
        assert (plots / name).stat().st_size > 1000
