"""AdamParams validation and the batch layouts of TrainingClient (no model needed)."""

import pytest
import torch

from autotrain_pl.client import AdamParams, OptimStepResult
from autotrain_pl.client.batches import (
    gather_token_values,
    padded_logprobs,
    prepare_batch,
    prompt_token_lists,
)
from autotrain_pl.errors import AutotrainError
from autotrain_pl.objectives.tokens import select_trained_tokens


def test_adam_params_defaults_and_errors():
    params = AdamParams(lr=1e-4)
    assert params.betas == (0.9, 0.95) and params.eps == 1e-8 and params.grad_clip_norm is None
    assert AdamParams(lr=1e-3, betas=[0.8, 0.9]).betas == (0.8, 0.9)
    for bad, field in [({"lr": -1.0}, "lr"), ({"lr": 1e-4, "betas": (0.9, 1.0)}, "betas"),
                       ({"lr": 1e-4, "eps": 0.0}, "eps"),
                       ({"lr": 1e-4, "weight_decay": -0.1}, "weight_decay"),
                       ({"lr": 1e-4, "grad_clip_norm": 0.0}, "grad_clip_norm")]:
        with pytest.raises(AutotrainError, match=f"AdamParams.{field}"):
            AdamParams(**bad)


def test_optim_step_result_metrics():
    result = OptimStepResult(step=3, lr=1e-4, grad_norm=0.5, skipped=False, loss=2.0, units=8.0)
    assert result.metrics == {"step": 3.0, "lr": 1e-4, "grad_norm": 0.5, "skipped": 0.0,
                              "loss": 2.0, "units": 8.0}


def make_batch():
    ids = torch.tensor([[1, 2, 3, 4], [5, 6, 7, 0]])
    weights = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.5, 0.0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    return {"input_ids": ids, "attention_mask": mask, "loss_weights": weights}


def test_token_values_in_three_layouts():
    batch = make_batch()
    selection = select_trained_tokens(batch)  # targets: (0, 2), (0, 3), (1, 1), (1, 2)
    per_row = torch.tensor([10.0, 20.0])
    assert gather_token_values("advantages", per_row, selection, 4).tolist() == [10, 10, 20, 20]
    aligned = torch.arange(8.0).view(2, 4)  # like loss_weights: value t belongs to token t
    assert gather_token_values("a", aligned, selection, 4).tolist() == [2.0, 3.0, 5.0, 6.0]
    targets = torch.arange(6.0).view(2, 3)  # like the returned logprobs
    assert gather_token_values("a", targets, selection, 4).tolist() == [1.0, 2.0, 3.0, 4.0]
    assert gather_token_values("a", 0.5, selection, 4) == 0.5
    with pytest.raises(AutotrainError, match=r"batch\['a'\] has shape \(2, 5\)"):
        gather_token_values("a", torch.zeros(2, 5), selection, 4)


def test_padded_logprobs_round_trip_with_target_layout():
    batch = make_batch()
    selection = select_trained_tokens(batch)
    values = torch.tensor([-1.0, -2.0, -3.0, -4.0], requires_grad=True)
    padded = padded_logprobs(values, selection, batch["input_ids"].shape)
    assert not padded.requires_grad and padded.shape == (2, 3)
    assert padded.tolist() == [[0.0, -1.0, -2.0], [-3.0, -4.0, 0.0]]
    assert gather_token_values("old", padded, selection, 4).tolist() == values.tolist()


def test_prepare_batch_errors_name_the_field():
    with pytest.raises(AutotrainError, match="loss_weights"):
        prepare_batch({"input_ids": torch.zeros(1, 3, dtype=torch.long)}, torch.device("cpu"))
    with pytest.raises(AutotrainError, match="matches input_ids"):
        prepare_batch({"input_ids": torch.zeros(1, 3, dtype=torch.long),
                       "loss_weights": torch.zeros(1, 2)}, torch.device("cpu"))


class FakeRenderer:
    def build_generation_prompt(self, messages):
        return [len(m.content) for m in messages]


def test_prompt_forms():
    renderer = FakeRenderer()
    assert prompt_token_lists([1, 2], None) == [[1, 2]]
    assert prompt_token_lists([[1], [2, 3]], None) == [[1], [2, 3]]
    assert prompt_token_lists(torch.tensor([[4, 5]]), None) == [[4, 5]]
    chat = [{"role": "user", "content": "abc"}]
    assert prompt_token_lists(chat, renderer) == [[3]]
    assert prompt_token_lists([chat, [1, 2]], renderer) == [[3], [1, 2]]
    with pytest.raises(AutotrainError, match="renderer='chatml'"):
        prompt_token_lists(chat, None)
