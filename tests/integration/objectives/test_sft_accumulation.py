"""Gradient accumulation must equal one big batch: the loss is normalized per optimizer step."""

import copy

import lightning as L
import torch
from torch.utils.data import DataLoader

from autotrain_pl.objectives import SFTModule


def make_batches(seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """Three micro-batches of uneven lengths and uneven trained-token counts."""
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for rows, length in [(2, 7), (3, 15), (1, 4)]:
        ids = torch.randint(5, 4000, (rows, length), generator=generator)
        weights = (torch.rand(rows, length, generator=generator) > 0.4).float()
        weights[0, -1] = 0.5  # a fractional weight
        mask = torch.ones(rows, length, dtype=torch.long)
        mask[-1, -2:] = 0  # right padding in the last row
        weights = weights * mask
        batches.append({"input_ids": ids, "attention_mask": mask, "loss_weights": weights})
    return batches


def pad_and_concat(batches):
    width = max(b["input_ids"].shape[1] for b in batches)
    out = {}
    for key in ("input_ids", "attention_mask", "loss_weights"):
        out[key] = torch.cat([
            torch.nn.functional.pad(b[key], (0, width - b[key].shape[1])) for b in batches
        ])
    return out


def fit_on(module, batches, accumulate: int):
    trainer = L.Trainer(
        accelerator="cpu", max_steps=1, accumulate_grad_batches=accumulate, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )
    loader = DataLoader(batches, batch_size=None, shuffle=False)
    trainer.fit(module, train_dataloaders=loader)
    return dict(module.model.named_parameters())


def test_accumulated_update_equals_one_big_batch():
    torch.manual_seed(0)
    base = SFTModule("builtin:tiny", learning_rate=1e-2, lr_scheduler="constant", export=False,
                     optimizer="torch.optim.SGD")
    accumulated, single = copy.deepcopy(base), copy.deepcopy(base)
    batches = make_batches()
    after_accumulated = fit_on(accumulated, batches, accumulate=len(batches))
    after_single = fit_on(single, [pad_and_concat(batches)], accumulate=1)
    before = dict(base.model.named_parameters())
    moved = 0
    for name, param in after_single.items():
        torch.testing.assert_close(after_accumulated[name], param, rtol=1e-4, atol=1e-6)
        moved += int(not torch.equal(param, before[name]))
    assert moved > 0  # the step really changed the weights


class StepLoss(L.Callback):
    """The step loss as logged: ``train/loss_step`` after each optimizer step."""

    def __init__(self):
        self.values = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step > len(self.values):
            self.values.append(float(trainer.callback_metrics["train/loss_step"]))


def test_logged_step_loss_is_the_weighted_token_mean_of_the_whole_step():
    """The logged ``train/loss`` of an accumulated step is sum(w * nll) / sum(w) over all its
    micro-batches, computed by hand from the weights before the update."""
    torch.manual_seed(0)
    module = SFTModule("builtin:tiny", export=False, lr_scheduler="constant")
    batches = make_batches()
    total, units = 0.0, 0.0
    with torch.no_grad():
        for batch in batches:
            logits = module.model(input_ids=batch["input_ids"],
                                  attention_mask=batch["attention_mask"]).logits
            nll = torch.nn.functional.cross_entropy(
                logits[:, :-1].reshape(-1, logits.shape[-1]),
                batch["input_ids"][:, 1:].reshape(-1), reduction="none")
            weights = (batch["loss_weights"][:, 1:] * batch["attention_mask"][:, 1:]).reshape(-1)
            total += float((nll * weights).sum())
            units += float(weights.sum())
        means = [mean_of(module, b) for b in batches]  # what per-micro-batch averaging gives
    step_loss = StepLoss()
    trainer = L.Trainer(accelerator="cpu", max_steps=1, accumulate_grad_batches=len(batches),
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[step_loss])
    trainer.fit(module, train_dataloaders=DataLoader(batches, batch_size=None, shuffle=False))
    assert len(step_loss.values) == 1
    assert abs(step_loss.values[0] - total / units) < 1e-4
    assert abs(step_loss.values[0] - sum(means) / len(means)) > 1e-3


def mean_of(module, batch) -> float:
    output = module.compute_loss(batch)
    return float(output.loss_sum / output.units)
