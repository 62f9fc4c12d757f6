"""BestModelCallback: exports on an improvement (a tie at a later step keeps the later model),
at the step that was scored."""

import json
from pathlib import Path

import pytest
import torch

import autotrain_pl.models
from autotrain_pl.callbacks import BestModelCallback, PeriodicEvalCallback
from autotrain_pl.errors import AutotrainError

WEIGHTS = "weights.pt"


@pytest.fixture
def exports(monkeypatch):
    calls: list[dict] = []

    def fake_export(model, tokenizer, out_dir, **kwargs):
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), out / WEIGHTS)  # what a real export would write
        calls.append({"out": out, **kwargs})
        return out

    monkeypatch.setattr(autotrain_pl.models, "export_model", fake_export)
    return calls


def test_is_better_by_mode():
    best = BestModelCallback(monitor="val/exact_match", mode="max")
    assert best.is_better(0.0)
    best.best_value, best.best_step = 0.5, 4
    assert best.is_better(0.6) and not best.is_better(0.4) and not best.is_better(float("nan"))
    # A tie is an improvement only at a later step: a plateau keeps the later model.
    assert best.is_better(0.5, step=6)
    assert not best.is_better(0.5, step=4) and not best.is_better(0.5)
    low = BestModelCallback(mode="min")
    low.best_value, low.best_step = 1.0, 2
    assert low.is_better(0.9) and low.is_better(1.0, step=3) and not low.is_better(1.0, step=2)


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


def scripted_val_loss(base: type, losses: list[float]):
    """A ``base`` objective that logs ``val/loss`` from ``losses``, one value per validation
    run, and keeps the weights each run scored, keyed by the global step."""

    class ScriptedValLoss(base):
        def __init__(self) -> None:
            super().__init__()
            self.scored: dict[int, dict[str, torch.Tensor]] = {}

        def on_validation_epoch_start(self) -> None:
            self.scored[self.global_step] = {k: v.detach().clone()
                                             for k, v in self.model.state_dict().items()}

        def validation_step(self, batch, batch_idx):
            self.log("val/loss", losses[len(self.scored) - 1])

    return ScriptedValLoss()


def test_monitors_val_loss_and_restores_state(tmp_path, fakes, exports):
    # Validations at steps 2, 4, 6, 8 score 0.5, 0.2, 0.2, 0.3: the tie at step 6 is an
    # improvement (a plateau keeps the later, more trained model), so the export holds the
    # weights of step 6; the stale 0.2 at steps 7 and 8 exports nothing more.
    objective = scripted_val_loss(fakes.objective, [0.5, 0.2, 0.2, 0.3])
    best = BestModelCallback()
    trainer = fakes.trainer(tmp_path, [best], max_steps=8, val_check_interval=2)
    trainer.fit(objective, datamodule=fakes.data())
    assert sorted(objective.scored) == [2, 4, 6, 8]
    assert best.best_step == 6 and best.best_value == pytest.approx(0.2)
    assert len(exports) == 3  # 0.5 at step 2, 0.2 at step 4, the tie at step 6
    record = json.loads((tmp_path / "best" / "best.json").read_text())
    assert (record["monitor"], record["mode"], record["step"]) == ("val/loss", "min", 6)
    assert record["value"] == pytest.approx(0.2)
    saved = torch.load(tmp_path / "best" / WEIGHTS)
    assert saved.keys() == objective.scored[6].keys()
    for name, weights in objective.scored[6].items():
        assert torch.equal(saved[name], weights)
    # The weights moved between the validations, so the check above tells 4, 6 and 8 apart.
    assert not torch.equal(objective.scored[4]["weight"], objective.scored[6]["weight"])
    assert not torch.equal(objective.scored[6]["weight"], objective.scored[8]["weight"])
    restored = BestModelCallback()
    restored.load_state_dict(best.state_dict())
    assert (restored.best_value, restored.best_step) == (best.best_value, best.best_step)
    assert "val/loss" in best.state_key


def test_plateau_of_step_evaluations_follows_the_latest(tmp_path, fakes, scripted, exports):
    # exact_match 1.0 from the start: each new evaluation (steps 0, 2, 4, 6 and the end at 7)
    # ties and moves best/ to the later model; the hooks that re-read a value already
    # judged (every other optimizer step) export nothing.
    scripted([1.0, 1.0, 1.0, 1.0, 1.0])
    best = BestModelCallback(monitor="val/exact_match", mode="max")
    periodic = PeriodicEvalCallback(every_n_steps=2, eval_at_start=True)
    trainer = fakes.trainer(tmp_path, [periodic, best], max_steps=7)
    trainer.fit(fakes.objective(), datamodule=fakes.data())
    assert [h["step"] for h in periodic.history] == [0, 2, 4, 6, 7]
    assert len(exports) == 5 and best.best_step == 7
    assert json.loads((tmp_path / "best" / "best.json").read_text())["step"] == 7


def test_warns_when_the_metric_never_appears(tmp_path, fakes, exports):
    trainer = fakes.trainer(tmp_path, [BestModelCallback(monitor="val/nothing")], max_steps=2)
    with pytest.warns(UserWarning, match="val/nothing"):
        trainer.fit(fakes.objective(), datamodule=fakes.data())
    assert not exports
