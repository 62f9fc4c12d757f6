"""StepControlCallback chooses the step policy through the knobs that mean the same thing, and
leaves the trainer and the module as it found them."""

from types import SimpleNamespace

import lightning as L
import pytest

from autotrain_pl.callbacks import StepControlCallback
from autotrain_pl.errors import AutotrainError
from autotrain_pl.training import StepController


def module(automatic: bool = True):
    """What the callback reads of an objective: its controller and its optimization mode."""
    return SimpleNamespace(step_controller=StepController(), automatic_optimization=automatic)


@pytest.mark.parametrize("value", [0, 1.5, True])
def test_bad_step_frequency_is_a_user_error(value):
    with pytest.raises(AutotrainError, match="optimizer_step_frequency"):
        StepControlCallback(optimizer_step_frequency=value)


def test_conflicting_trainer_settings_are_explained():
    callback = StepControlCallback()
    trainer = L.Trainer(accelerator="cpu", accumulate_grad_batches=4, logger=False)
    with pytest.raises(AutotrainError, match="optimizer_step_frequency: 4"):
        callback.check_trainer(trainer)
    trainer = L.Trainer(accelerator="cpu", gradient_clip_val=1.0, logger=False)
    with pytest.raises(AutotrainError, match="gradient_clip_norm: 1.0"):
        callback.check_trainer(trainer)
    callback.check_trainer(L.Trainer(accelerator="cpu", logger=False))  # the plain trainer is fine


def test_automatic_objectives_get_lightnings_knobs_and_everything_is_restored():
    trainer = L.Trainer(accelerator="cpu", logger=False)
    objective = module()
    callback = StepControlCallback(3, gradient_clip_norm=0.5, skip_non_finite=False)
    callback.setup(trainer, objective, "fit")
    assert trainer.accumulate_grad_batches == 3 and trainer.gradient_clip_val == 0.5
    assert objective.step_controller.skip_non_finite is False
    callback.teardown(trainer, objective, "fit")
    assert trainer.accumulate_grad_batches == 1 and trainer.gradient_clip_val is None
    assert objective.step_controller.skip_non_finite is True


def test_manual_objectives_get_the_policy_on_their_controller():
    trainer = L.Trainer(accelerator="cpu", logger=False)
    objective = module(automatic=False)
    callback = StepControlCallback(gradient_clip_norm=2.0)
    callback.setup(trainer, objective, "fit")
    assert objective.step_controller.gradient_clip_norm == 2.0
    assert trainer.gradient_clip_val is None  # Lightning forbids it with manual optimization
    callback.teardown(trainer, objective, "fit")
    assert objective.step_controller.gradient_clip_norm is None
    with pytest.raises(AutotrainError, match="steps its optimizer itself"):
        StepControlCallback(optimizer_step_frequency=2).setup(trainer, objective, "fit")


def test_a_plain_lightning_module_is_refused():
    with pytest.raises(AutotrainError, match="needs an autotrain_pl objective"):
        StepControlCallback().setup(L.Trainer(accelerator="cpu", logger=False),
                                    L.LightningModule(), "fit")
