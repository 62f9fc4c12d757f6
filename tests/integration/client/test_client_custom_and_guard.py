"""Custom losses match inline autograd; non-finite steps are skipped with a warning."""

import lightning as L
import pytest
import torch
from client_test_helpers import assert_params_close, make_batches, params_of
from torch.utils.data import DataLoader

from autotrain_pl.callbacks import StepControlCallback
from autotrain_pl.client import AdamParams, NonFiniteGradientWarning, TrainingClient
from autotrain_pl.losses import get_loss
from autotrain_pl.models import load_model
from autotrain_pl.objectives import SFTModule

SGD_LIKE = AdamParams(lr=1.0, eps=1.0)


def sequence_loss(logprobs, selection):
    """Mean over rows of the per-row mean logprob, plus a nonlinear per-token penalty."""
    weights = selection.weights
    per_row = selection.per_sequence_sum(logprobs)
    counts = torch.zeros(selection.batch_size).index_add(0, selection.rows, weights)
    loss = -(per_row / counts).mean() + 0.1 * (weights * logprobs.square()).sum() / weights.sum()
    return loss, {"rows": float(selection.batch_size)}


def inline_sequence_loss(model, batch):
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    logprobs = torch.log_softmax(logits[:, :-1], -1).gather(-1, batch["input_ids"][:, 1:, None])
    logprobs = logprobs[..., 0]
    weights = batch["loss_weights"][:, 1:] * batch["attention_mask"][:, 1:]
    per_row = (logprobs * weights).sum(-1) / weights.sum(-1)
    return -per_row.mean() + 0.1 * (weights * logprobs.square()).sum() / weights.sum()


def test_custom_loss_gradient_equals_inline_autograd():
    batch = make_batches()[1]
    client = TrainingClient("builtin:tiny", accelerator="cpu")
    result = client.forward_backward_custom(batch, sequence_loss)
    client.optim_step(SGD_LIKE)

    model = load_model("builtin:tiny")
    loss = inline_sequence_loss(model, batch)
    loss.backward()
    torch.optim.AdamW(model.parameters(), lr=1.0, betas=(0.9, 0.95), eps=1.0,
                      weight_decay=0.0).step()
    assert abs(result.loss - float(loss)) < 1e-5
    assert result.metrics["rows"] == 3.0
    assert_params_close(params_of(client.model), params_of(model))


def test_custom_and_normalized_losses_share_one_step():
    """Custom gradients are added as-is after the units division of forward_backward ones."""
    first, second = make_batches()[:2]
    client = TrainingClient("builtin:tiny", accelerator="cpu")
    client.forward_backward(first)
    client.forward_backward_custom(second, "test_client_custom_and_guard.sequence_loss")
    client.optim_step(SGD_LIKE)

    model = load_model("builtin:tiny")
    logits = model(input_ids=first["input_ids"], attention_mask=first["attention_mask"]).logits
    nll = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2),
                                            first["input_ids"][:, 1:], reduction="none")
    weights = first["loss_weights"][:, 1:] * first["attention_mask"][:, 1:]
    loss = (nll * weights).sum() / weights.sum() + inline_sequence_loss(model, second)
    loss.backward()
    torch.optim.AdamW(model.parameters(), lr=1.0, betas=(0.9, 0.95), eps=1.0,
                      weight_decay=0.0).step()
    assert_params_close(params_of(client.model), params_of(model))


def nan_loss(inputs):
    return get_loss("ce")(inputs) * float("nan")


def test_client_skips_non_finite_step_with_warning():
    client = TrainingClient("builtin:tiny", accelerator="cpu")
    batch = make_batches()[0]
    before = params_of(client.model)
    client.forward_backward(batch, nan_loss)
    with pytest.warns(NonFiniteGradientWarning, match="skipped optimizer step 1"):
        result = client.optim_step(AdamParams(lr=1e-2))
    assert result.skipped and result.step == 1
    assert client.controller.skipped_steps == 1
    for name, param in params_of(client.model).items():
        assert torch.equal(param, before[name]), name
    assert all(p.grad is None for p in client.params)
    assert not client.optimizer.state  # Adam moments untouched
    client.forward_backward(batch)
    assert not client.optim_step(AdamParams(lr=1e-2)).skipped  # training goes on


class NaNFirstStep(SFTModule):
    """Returns a NaN loss until the first optimizer step has happened."""

    def compute_loss(self, batch):
        output = super().compute_loss(batch)
        if self.trainer.global_step == 0:
            output.loss_sum = output.loss_sum * float("nan")
        return output


def test_objective_skips_non_finite_step_with_warning():
    module = NaNFirstStep("builtin:tiny", export=False, lr_scheduler="constant")
    before = params_of(module.model)
    callback = StepControlCallback(optimizer_step_frequency=2)
    trainer = L.Trainer(accelerator="cpu", max_steps=1, max_epochs=1, logger=False,
                        callbacks=[callback], enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    with pytest.warns(NonFiniteGradientWarning, match="not finite"):
        trainer.fit(module, DataLoader(make_batches(), batch_size=None))
    assert trainer.global_step == 1  # the skipped step counts
    assert module.step_controller.skipped_steps == 1
    assert float(trainer.callback_metrics["train/skipped_steps"]) == 1.0
    for name, param in params_of(module.model).items():
        assert torch.equal(param, before[name]), name
    optimizer = trainer.optimizers[0]
    assert all(not optimizer.state[p] for p in module.parameters())  # AdamW state untouched
