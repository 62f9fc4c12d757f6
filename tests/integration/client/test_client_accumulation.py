"""Exact normalization: uneven micro-batches give the update of one big batch."""

import copy

import lightning as L
import torch
from client_test_helpers import assert_params_close, make_batches, pad_and_concat, params_of
from torch.utils.data import DataLoader

from autotrain_pl.callbacks import StepControlCallback
from autotrain_pl.client import AdamParams, TrainingClient
from autotrain_pl.models import load_model
from autotrain_pl.objectives import SFTModule

# eps >> |g| makes Adam's first step ~ lr * g / eps: SGD-like, so it sees the gradient's scale.
SGD_LIKE = AdamParams(lr=1.0, eps=1.0)


def test_client_micro_batches_equal_one_big_batch_and_handwritten_update():
    batches = make_batches()
    accumulated = TrainingClient("builtin:tiny", accelerator="cpu")
    before = params_of(accumulated.model)
    results = [accumulated.forward_backward(b) for b in batches]
    step = accumulated.optim_step(SGD_LIKE)

    single = TrainingClient("builtin:tiny", accelerator="cpu")
    big = single.forward_backward(pad_and_concat(batches))
    single.optim_step(SGD_LIKE)
    assert_params_close(params_of(accumulated.model), params_of(single.model))

    # The same update written by hand: full logits, weighted CE mean, AdamW.
    model = load_model("builtin:tiny")
    batch = pad_and_concat(batches)
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    nll = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]), batch["input_ids"][:, 1:].reshape(-1),
        reduction="none")
    weights = (batch["loss_weights"][:, 1:] * batch["attention_mask"][:, 1:]).reshape(-1)
    loss = (nll * weights).sum() / weights.sum()
    loss.backward()
    torch.optim.AdamW(model.parameters(), lr=1.0, betas=(0.9, 0.95), eps=1.0,
                      weight_decay=0.0).step()
    assert_params_close(params_of(accumulated.model), params_of(model))

    assert step.units == big.units == float(weights.sum())
    assert abs(step.loss - float(loss)) < 1e-4
    units = [r.units for r in results]
    mean = sum(r.loss * u for r, u in zip(results, units, strict=True)) / sum(units)
    assert abs(mean - float(loss)) < 1e-4  # per-batch losses are per-unit means
    assert any(not torch.equal(before[n], p) for n, p in params_of(accumulated.model).items())


def test_logprobs_layout_is_target_aligned():
    client = TrainingClient("builtin:tiny", accelerator="cpu")
    batch = make_batches()[1]
    result = client.forward(batch)
    ids = batch["input_ids"]
    assert result.logprobs.shape == (ids.shape[0], ids.shape[1] - 1)
    with torch.no_grad():
        logits = client.model(input_ids=ids, attention_mask=batch["attention_mask"]).logits
    expected = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, 1:, None])[..., 0]
    trained = (batch["loss_weights"][:, 1:] * batch["attention_mask"][:, 1:]) != 0
    torch.testing.assert_close(result.logprobs[trained], expected[trained], rtol=1e-4, atol=1e-5)
    assert torch.all(result.logprobs[~trained] == 0)


def _fit(module, batches, callbacks, max_steps=1):
    trainer = L.Trainer(
        accelerator="cpu", max_steps=max_steps, max_epochs=1, logger=False, callbacks=callbacks,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )
    trainer.fit(module, train_dataloaders=DataLoader(batches, batch_size=None, shuffle=False))
    return trainer


def test_step_control_frequency_equals_one_big_batch():
    base = SFTModule("builtin:tiny", learning_rate=1e-2, lr_scheduler="constant", export=False,
                     optimizer="torch.optim.SGD")
    accumulated, single = copy.deepcopy(base), copy.deepcopy(base)
    batches = make_batches()
    trainer = _fit(accumulated, batches, [StepControlCallback(optimizer_step_frequency=3)])
    _fit(single, [pad_and_concat(batches)], [])
    assert trainer.global_step == 1
    assert_params_close(params_of(accumulated.model), params_of(single.model))
    assert any(not torch.equal(p, q) for p, q in zip(
        params_of(base.model).values(), params_of(accumulated.model).values(), strict=True))
    metrics = trainer.callback_metrics
    for name in ("train/loss", "train/grad_norm", "train/lr", "train/skipped_steps"):
        assert name in metrics, name
    assert float(metrics["train/skipped_steps"]) == 0
    # Left as found: the module's mode and the trainer's own accumulation setting.
    assert accumulated.automatic_optimization and trainer.accumulate_grad_batches == 1


def test_step_control_clips_like_the_client_and_steps_a_partial_window():
    batches = make_batches()
    module = SFTModule("builtin:tiny", learning_rate=1e-2, lr_scheduler="constant", export=False,
                       optimizer="torch.optim.SGD")
    start = params_of(module.model)
    # 3 batches, frequency 2: one full window, then the epoch's partial window steps too.
    trainer = _fit(module, batches, [StepControlCallback(2, gradient_clip_norm=0.05)],
                   max_steps=-1)
    assert trainer.global_step == 2

    # The same two clipped SGD steps by hand on the TrainingClient's primitives.
    client = TrainingClient("builtin:tiny", accelerator="cpu")
    optimizer = torch.optim.SGD(client.params, lr=1e-2)
    for window in (batches[:2], batches[2:]):
        for batch in window:
            client.forward_backward(batch)
        outcome = client.controller.finish(client.params, clip_norm=0.05)
        assert outcome.grad_norm > 0.05  # clipping was active
        clipped = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in client.params]))
        assert abs(float(clipped) - 0.05) < 1e-5
        optimizer.step()
        optimizer.zero_grad()
    assert_params_close(params_of(module.model), params_of(client.model))
    embeddings = module.model.model.embed_tokens.weight
    assert not torch.equal(start["model.embed_tokens.weight"], embeddings)
