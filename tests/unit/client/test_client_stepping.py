"""StepController: exact normalization, clipping, the non-finite guard (no model needed)."""

import math
from types import SimpleNamespace

import lightning as L
import pytest
import torch

from autotrain_pl.callbacks import StepControlCallback
from autotrain_pl.errors import AutotrainError
from autotrain_pl.objectives.manual import ManualStepping
from autotrain_pl.objectives.stepping import NonFiniteGradientWarning, StepController


def weighted_sum_loss(weight: torch.Tensor, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return ((x @ weight).squeeze(-1).square() * w).sum()


def test_uneven_micro_batches_normalize_like_one_batch():
    torch.manual_seed(0)
    xs = [torch.randn(n, 4) for n in (2, 5, 1)]
    ws = [torch.rand(n) for n in (2, 5, 1)]
    weight = torch.nn.Parameter(torch.randn(4, 1))
    controller = StepController()
    for x, w in zip(xs, ws, strict=True):
        loss = weighted_sum_loss(weight, x, w)
        loss.backward()
        controller.accumulate(loss, w.sum())
    outcome = controller.finish([weight])
    reference = torch.nn.Parameter(weight.detach().clone())
    big = weighted_sum_loss(reference, torch.cat(xs), torch.cat(ws)) / torch.cat(ws).sum()
    big.backward()
    torch.testing.assert_close(weight.grad, reference.grad)
    assert outcome.micro_batches == 3 and not outcome.skipped
    assert math.isclose(outcome.loss, float(big), rel_tol=1e-6)
    assert math.isclose(outcome.units, float(torch.cat(ws).sum()), rel_tol=1e-6)
    assert controller.micro_batches == 0 and not controller.pending


def test_clipping_and_extra_grads():
    weight = torch.nn.Parameter(torch.zeros(3))
    weight.grad = torch.tensor([30.0, 40.0, 0.0])  # summed over 10 units -> [3, 4, 0]
    controller = StepController(gradient_clip_norm=1.0)
    controller.accumulate(torch.tensor(0.0), 10.0)
    outcome = controller.finish([weight], extra_grads=[torch.tensor([0.0, 0.0, 12.0])])
    assert math.isclose(outcome.grad_norm, 13.0, rel_tol=1e-6)  # |[3, 4, 12]|, before clipping
    torch.testing.assert_close(weight.grad, torch.tensor([3.0, 4.0, 12.0]) / 13.0)


def test_non_finite_step_is_skipped_and_grads_cleared():
    weight = torch.nn.Parameter(torch.zeros(2))
    weight.grad = torch.tensor([1.0, float("nan")])
    controller = StepController()
    controller.accumulate(torch.tensor(1.0), 2.0)
    outcome = controller.finish([weight])
    assert outcome.skipped and weight.grad is None and controller.skipped_steps == 1
    with pytest.warns(NonFiniteGradientWarning, match="step 7"):
        StepController.warn_skipped(7, outcome, "test")


def test_state_dict_round_trip():
    controller = StepController()
    controller.accumulate(torch.tensor(3.0), 4.0)
    controller.skipped_steps = 2
    restored = StepController()
    restored.load_state_dict(controller.state_dict())
    assert restored.micro_batches == 1 and restored.skipped_steps == 2
    assert float(restored.units) == 4.0 and float(restored.loss_sum) == 3.0


@pytest.mark.parametrize("value", [0, -1.0, float("inf"), "1", True])
def test_bad_clip_norm_is_a_user_error(value):
    with pytest.raises(AutotrainError, match="gradient_clip_norm"):
        StepController(gradient_clip_norm=value)


@pytest.mark.parametrize("value", [0, 1.5, True])
def test_bad_step_frequency_is_a_user_error(value):
    with pytest.raises(AutotrainError, match="optimizer_step_frequency"):
        StepControlCallback(optimizer_step_frequency=value)


def test_forbidden_trainer_settings_are_explained():
    callback = StepControlCallback()
    trainer = L.Trainer(accelerator="cpu", accumulate_grad_batches=4, logger=False)
    with pytest.raises(AutotrainError, match="optimizer_step_frequency: 4 instead"):
        callback.check_trainer(trainer)
    trainer = L.Trainer(accelerator="cpu", gradient_clip_val=1.0, logger=False)
    with pytest.raises(AutotrainError, match="gradient_clip_norm: 1.0 instead"):
        callback.check_trainer(trainer)
    callback.check_trainer(L.Trainer(accelerator="cpu", logger=False))  # the plain trainer is fine


@pytest.mark.parametrize(("batches", "epochs", "max_steps", "expected"), [
    (10, 2, -1, 8),  # ceil(10 / 3) = 4 optimizer steps per epoch
    (10, 2, 5, 5),   # capped by max_steps
    (10, -1, 7, 7),  # endless epochs: max_steps decides
])
def test_schedule_length_counts_optimizer_steps(batches, epochs, max_steps, expected):
    trainer = SimpleNamespace(estimated_stepping_batches=batches * max(epochs, 1),
                              num_training_batches=batches, max_epochs=epochs,
                              max_steps=max_steps)
    stepping = ManualStepping(StepController(), optimizer_step_frequency=3)
    assert stepping.estimated_optimizer_steps(trainer) == expected
