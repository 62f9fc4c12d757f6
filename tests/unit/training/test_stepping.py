"""StepController: exact normalization, clipping, the non-finite guard (no model needed)."""

import math

import pytest
import torch

from autotrain_pl.errors import AutotrainError
from autotrain_pl.training import (
    LossOutput,
    MeanAccumulator,
    NonFiniteGradientWarning,
    StepController,
    check_loss_output,
)


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
        controller.accumulate(LossOutput.from_sum(loss, w.sum(), {"twice": 2 * loss},
                                                  tokens=len(x)))
    outcome = controller.finish([weight])
    reference = torch.nn.Parameter(weight.detach().clone())
    big = weighted_sum_loss(reference, torch.cat(xs), torch.cat(ws)) / torch.cat(ws).sum()
    big.backward()
    torch.testing.assert_close(weight.grad, reference.grad)
    assert outcome.micro_batches == 3 and not outcome.skipped
    assert math.isclose(outcome.loss, float(big), rel_tol=1e-6)
    assert math.isclose(outcome.units, float(torch.cat(ws).sum()), rel_tol=1e-6)
    assert math.isclose(outcome.metrics["twice"], 2 * float(big), rel_tol=1e-6)
    assert outcome.tokens_per_s > 0
    assert controller.micro_batches == 0 and not controller.pending


def test_world_size_undoes_the_ranks_averaging():
    """DDP averages gradients over ranks; the step multiplies by the world size before dividing
    by the units summed over ranks (``reduce``), so two ranks equal one process."""
    weight = torch.nn.Parameter(torch.zeros(2))
    weight.grad = torch.tensor([3.0, 5.0])  # the average of two ranks' summed gradients
    controller = StepController()
    controller.accumulate(LossOutput.from_sum(torch.tensor(4.0), 2.0))
    outcome = controller.finish([weight], reduce=lambda totals: totals * 2, world_size=2)
    torch.testing.assert_close(weight.grad, torch.tensor([3.0, 5.0]) * 2 / 4.0)
    assert outcome.units == 4.0 and outcome.loss == 2.0


def test_a_step_without_any_gradient_updates_nothing_at_any_world_size():
    """A DDP rank with nothing to learn backpropagates zeros to stay in step with the others.
    If no micro-batch on any rank carried a gradient, the gradients are cleared, as in one
    process where nothing was backpropagated (else AdamW would count a step and decay)."""
    weight = torch.nn.Parameter(torch.zeros(2))
    weight.grad = torch.zeros(2)
    controller = StepController()
    controller.accumulate(LossOutput.from_sum(torch.tensor(0.0), 2.0), carries_gradient=False)
    controller.finish([weight], reduce=lambda totals: totals * 2, world_size=2)
    assert weight.grad is None
    weight.grad = torch.tensor([2.0, 0.0])  # the other rank learned something: keep it

    def other_rank_carried_one(totals):
        totals = totals * 2
        totals[-2] += 1  # the graded-micro-batch count, just before the token count
        return totals

    controller.accumulate(LossOutput.from_sum(torch.tensor(0.0), 2.0), carries_gradient=False)
    controller.finish([weight], reduce=other_rank_carried_one, world_size=2)
    torch.testing.assert_close(weight.grad, torch.tensor([1.0, 0.0]))


def test_clipping_and_extra_grads():
    weight = torch.nn.Parameter(torch.zeros(3))
    weight.grad = torch.tensor([30.0, 40.0, 0.0])  # summed over 10 units -> [3, 4, 0]
    controller = StepController(gradient_clip_norm=1.0)
    controller.accumulate(LossOutput.from_sum(torch.tensor(0.0), 10.0))
    outcome = controller.finish([weight], extra_grads=[torch.tensor([0.0, 0.0, 12.0])])
    assert math.isclose(outcome.grad_norm, 13.0, rel_tol=1e-6)  # |[3, 4, 12]|, before clipping
    torch.testing.assert_close(weight.grad, torch.tensor([3.0, 4.0, 12.0]) / 13.0)


def test_non_finite_step_is_skipped_and_grads_cleared():
    weight = torch.nn.Parameter(torch.zeros(2))
    weight.grad = torch.tensor([1.0, float("nan")])
    controller = StepController()
    controller.accumulate(LossOutput.from_sum(torch.tensor(1.0), 2.0))
    outcome = controller.finish([weight])
    assert outcome.skipped and weight.grad is None and controller.skipped_steps == 1
    with pytest.warns(NonFiniteGradientWarning, match="step 7"):
        StepController.warn_skipped(7, outcome, "test")


def test_state_dict_round_trip():
    controller = StepController()
    controller.accumulate(LossOutput.from_sum(torch.tensor(3.0), 4.0, {"m": torch.tensor(1.0)}))
    controller.skipped_steps, controller.consecutive_skips = 2, 1
    restored = StepController()
    restored.load_state_dict(controller.state_dict())
    assert restored.micro_batches == 1 and restored.skipped_steps == 2
    assert restored.consecutive_skips == 1
    weight = torch.nn.Parameter(torch.zeros(1))
    weight.grad = torch.ones(1)
    outcome = restored.finish([weight])
    assert outcome.loss == 0.75 and outcome.units == 4.0 and outcome.metrics == {"m": 0.25}
    # the pending micro-batch carried a gradient: the restored step still updates
    torch.testing.assert_close(weight.grad, torch.tensor([0.25]))


@pytest.mark.parametrize("value", [0, -1.0, float("inf"), "1", True])
def test_bad_clip_norm_is_a_user_error(value):
    with pytest.raises(AutotrainError, match="gradient_clip_norm"):
        StepController(gradient_clip_norm=value)


def test_a_mean_cannot_pass_for_a_sum():
    """``compute_loss`` states its reduction: a bare tensor (a mean, say) is refused."""
    with pytest.raises(AutotrainError, match="returned Tensor; return LossOutput.from_sum"):
        check_loss_output(torch.tensor(0.5), "MyObjective")
    with pytest.raises(AutotrainError, match="returned tuple"):
        check_loss_output((torch.tensor(0.5), {}), "MyObjective")
    mean = LossOutput.from_mean(torch.tensor(0.5), 4.0, {"acc": torch.tensor(0.25)})
    assert float(mean.loss_sum) == 2.0 and float(mean.metric_sums["acc"]) == 1.0
    assert check_loss_output(mean, "MyObjective") is mean


def test_metric_names_must_not_change_within_a_step():
    controller = StepController()
    controller.accumulate(LossOutput.from_sum(torch.tensor(1.0), 1.0, {"a": torch.tensor(1.0)}))
    with pytest.raises(AutotrainError, match="same metric names"):
        controller.accumulate(LossOutput.from_sum(torch.tensor(1.0), 1.0,
                                                  {"b": torch.tensor(1.0)}))


def test_mean_accumulator_weights_batches_by_units():
    means = MeanAccumulator()
    means.update(LossOutput.from_sum(torch.tensor(3.0), 1.0, {"acc": torch.tensor(1.0)}))
    means.update(LossOutput.from_sum(torch.tensor(3.0), 3.0, {"acc": torch.tensor(0.0)}))
    assert means.compute() == {"loss": 1.5, "acc": 0.25}
    assert means.compute() == {}, "compute resets"
