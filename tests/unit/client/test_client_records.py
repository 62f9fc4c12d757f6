"""The TrainingClient records (AdamParams, OptimStepResult) and batch layouts (no model needed)."""

import json
import math
from dataclasses import FrozenInstanceError, asdict, fields

import pytest
import torch

from autotrain_pl.client import AdamParams, ForwardBackwardResult, OptimStepResult
from autotrain_pl.client.batches import (
    gather_token_values,
    padded_logprobs,
    prepare_batch,
    prompt_token_lists,
)
from autotrain_pl.errors import AutotrainError
from autotrain_pl.training.tokens import select_trained_tokens


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"lr": -1.0}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"lr": float("inf")}, "lr"),
        ({"lr": True}, "lr"),
        ({"lr": "1e-4"}, "lr"),
        ({"lr": 1e-4, "betas": (0.9, 1.0)}, "betas"),
        ({"lr": 1e-4, "betas": (-0.1, 0.9)}, "betas"),
        ({"lr": 1e-4, "betas": (0.9, 0.99, 0.999)}, "betas"),
        ({"lr": 1e-4, "betas": (float("nan"), 0.9)}, "betas"),
        ({"lr": 1e-4, "eps": 0.0}, "eps"),
        ({"lr": 1e-4, "eps": float("nan")}, "eps"),
        ({"lr": 1e-4, "weight_decay": -0.1}, "weight_decay"),
        ({"lr": 1e-4, "grad_clip_norm": 0.0}, "grad_clip_norm"),
        ({"lr": 1e-4, "grad_clip_norm": float("inf")}, "grad_clip_norm"),
        ({"lr": 1e-4, "grad_clip_norm": True}, "grad_clip_norm"),
    ],
)
def test_adam_params_reject_bad_values_in_one_line_naming_the_field(kwargs, field):
    with pytest.raises(AutotrainError) as caught:
        AdamParams(**kwargs)
    message = str(caught.value)
    assert message.startswith(f"AdamParams.{field}={kwargs[field]!r} ")
    assert "\n" not in message


@pytest.mark.parametrize("kwargs", [{"betas": ("x", 0.9)}, {"betas": 0.9}, {"eps": "1e-8"},
                                    {"eps": True}, {"weight_decay": None}])
def test_adam_params_reject_wrong_types_as_autotrain_errors(kwargs):
    with pytest.raises(AutotrainError, match=f"AdamParams.{next(iter(kwargs))}="):
        AdamParams(lr=1e-4, **kwargs)


def test_adam_params_accept_the_edges_of_their_ranges():
    assert AdamParams(lr=0).lr == 0  # lr=0 is a valid (frozen) step
    assert AdamParams(lr=1e-4, betas=(0.0, 0.0)).betas == (0.0, 0.0)
    assert AdamParams(lr=1e-4, weight_decay=0.0, grad_clip_norm=1e-6).grad_clip_norm == 1e-6


def test_adam_params_normalize_betas_so_equal_settings_compare_equal():
    # A YAML/JSON config gives lists and ints; they become the tuple of floats torch expects.
    from_config = AdamParams(**json.loads('{"lr": 1e-3, "betas": [0, 0.9]}'))
    assert type(from_config.betas) is tuple
    assert [type(b) for b in from_config.betas] == [float, float]
    assert from_config == AdamParams(lr=1e-3, betas=(0.0, 0.9))
    assert hash(from_config) == hash(AdamParams(lr=1e-3, betas=(0.0, 0.9)))
    with pytest.raises(FrozenInstanceError):
        from_config.lr = 1.0  # type: ignore[misc]


def test_adam_params_survive_the_client_state_round_trip(tmp_path):
    # save_client_state stores asdict(adam_params) with torch.save; load_client_state reads it
    # back with weights_only=True and rebuilds AdamParams(**stored).
    params = AdamParams(lr=3e-5, betas=[0.8, 0.99], eps=1e-6, weight_decay=0.1, grad_clip_norm=1.0)
    torch.save({"adam_params": asdict(params)}, tmp_path / "state.pt")
    stored = torch.load(tmp_path / "state.pt", weights_only=True)["adam_params"]
    assert AdamParams(**stored) == params


def optim_result(**overrides) -> OptimStepResult:
    values = {"step": 3, "lr": 1e-4, "grad_norm": 0.5, "skipped": False, "loss": 2.0,
              "units": 8.0, "tokens_per_s": 1000.0}
    return OptimStepResult(**{**values, **overrides})


def test_optim_step_result_metrics_cover_every_field_as_floats():
    result = optim_result(skipped=True)
    metrics = result.metrics
    assert set(metrics) == {f.name for f in fields(OptimStepResult)}
    assert all(type(value) is float for value in metrics.values())
    assert metrics["skipped"] == 1.0 and optim_result(skipped=False).metrics["skipped"] == 0.0
    # Loggers get the same numbers back: rebuilding the result from its metrics loses nothing.
    rebuilt = OptimStepResult(**{**metrics, "step": int(metrics["step"]),
                                 "skipped": bool(metrics["skipped"])})
    assert rebuilt == result


def test_optim_step_result_metrics_keep_non_finite_values_of_a_skipped_step():
    metrics = optim_result(grad_norm=float("inf"), skipped=True, loss=float("nan")).metrics
    assert metrics["grad_norm"] == math.inf and math.isnan(metrics["loss"])


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


def test_logprobs_times_loss_weights_give_each_rows_log_likelihood():
    # ForwardBackwardResult.logprobs promise: (logprobs * loss_weights[:, 1:]).sum(-1) is each
    # row's weighted log-likelihood. By hand: row 0 scores tokens 2, 3 (weights 1, 1) with -1, -2;
    # row 1 scores tokens 1, 2 (weights 1, 0.5) with -3, -4.
    batch = make_batch()
    selection = select_trained_tokens(batch)
    padded = padded_logprobs(torch.tensor([-1.0, -2.0, -3.0, -4.0]), selection,
                             batch["input_ids"].shape)
    result = ForwardBackwardResult(loss=0.0, logprobs=padded)
    weighted = (result.logprobs * batch["loss_weights"][:, 1:]).sum(-1)
    assert weighted.tolist() == [-1.0 * 1 + -2.0 * 1, -3.0 * 1 + -4.0 * 0.5]


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
