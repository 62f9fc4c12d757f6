"""BestModelCallback: exports on strict improvement only, at the step that was scored."""

import json
from pathlib import Path

import pytest

import autotrain_pl.models
from autotrain_pl.callbacks import BestModelCallback, PeriodicEvalCallback
from autotrain_pl.errors import AutotrainError


@pytest.fixture
def exports(monkeypatch):
    calls: list[dict] = []

    def fake_export(model, tokenizer, out_dir, **kwargs):
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        calls.append({"out": out, **kwargs})
        return out

    monkeypatch.setattr(autotrain_pl.models, "export_model", fake_export)
    return calls


def test_is_better_by_mode():
    best = BestModelCallback(monitor="val/exact_match", mode="max")
    assert best.is_better(0.0)
    best.best_value = 0.5
    assert best.is_better(0.6) and not best.is_better(0.5) and not best.is_better(float("nan"))
    low = BestModelCallback(mode="min")
    low.best_value = 1.0
    assert low.is_better(0.9) and not low.is_better(1.0)


def test_bad_mode():
    with pytest.raises(AutotrainError, match="mode"):
        BestModelCallback(mode="highest")


def test_best_of_step_evaluations_whatever_the_callback_order(tmp_path, fakes, scripted, exports):
    # Start 0.2, then steps 2, 4, 6 -> 0.5, 0.4, 0.7, end (step 7) -> 0.6.
    scripted([0.2, 0.5, 0.4, 0.7, 0.6])
    best = BestModelCallback(monitor="val/exact_match", mode="max")
    periodic = PeriodicEvalCallback(every_n_steps=2, eval_at_start=True)
    trainer = fakes.trainer(tmp_path, [best, periodic], max_steps=7)  # best runs first
    trainer.fit(fakes.objective(), datamodule=fakes.data())
    record = json.loads((tmp_path / "best" / "best.json").read_text())
    assert record["value"] == pytest.approx(0.7) and record["step"] == 6
    assert record["monitor"] == "val/exact_match" and best.best_step == 6
    assert len(exports) == 3  # 0.2 at step 0, 0.5 at step 2, 0.7 at step 6
    assert all(call["out"] == tmp_path / "best" for call in exports)


def test_final_evaluation_can_be_the_best(tmp_path, fakes, scripted, exports):
    scripted([0.1, 0.9])
    best = BestModelCallback(monitor="val/exact_match", mode="max", dirpath=tmp_path / "keep")
    trainer = fakes.trainer(tmp_path, [best, PeriodicEvalCallback(eval_at_start=True)],
                            max_steps=3, limit_val_batches=0)
    trainer.fit(fakes.objective(), datamodule=fakes.data())
    record = json.loads((tmp_path / "keep" / "best.json").read_text())
    assert record["value"] == pytest.approx(0.9) and record["step"] == 3


def test_monitors_val_loss_and_restores_state(tmp_path, fakes, exports):
    best = BestModelCallback()
    trainer = fakes.trainer(tmp_path, [best], max_steps=6, val_check_interval=2)
    trainer.fit(fakes.objective(), datamodule=fakes.data())
    assert best.best_value is not None and best.best_step in (2, 4, 6)
    restored = BestModelCallback()
    restored.load_state_dict(best.state_dict())
    assert (restored.best_value, restored.best_step) == (best.best_value, best.best_step)
    assert "val/loss" in best.state_key


def test_warns_when_the_metric_never_appears(tmp_path, fakes, exports):
    trainer = fakes.trainer(tmp_path, [BestModelCallback(monitor="val/nothing")], max_steps=2)
    with pytest.warns(UserWarning, match="val/nothing"):
        trainer.fit(fakes.objective(), datamodule=fakes.data())
    assert not exports
