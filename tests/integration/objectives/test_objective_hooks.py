"""The base objective assumes nothing about a batch, and both Lightning paths share one step."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from autotrain_pl.client import TrainingClient
from autotrain_pl.data import ChatDataModule
from autotrain_pl.errors import AutotrainError
from autotrain_pl.objectives import LossOutput, ObjectiveModule, SFTModule
from autotrain_pl.rendering import ChatMLRenderer, Renderer


def pair_batches(count: int = 6, seed: int = 0) -> list[dict]:
    """Batches with no top-level ``input_ids`` or ``loss_weights``: a nested ``good`` side only.

    Every row ends with the same two tokens, which the objective learns to make likely.
    """
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(count):
        ids = torch.randint(20, 4000, (3, 6), generator=generator)
        ids[:, -2:] = torch.tensor([11, 12])
        weights = torch.zeros(3, 6)
        weights[:, -2:] = 1.0
        batches.append({"good": {"input_ids": ids, "attention_mask": torch.ones_like(ids),
                                 "loss_weights": weights}})
    return batches


class RowLikelihood(ObjectiveModule):
    """A minimal objective: per row, the negative log-likelihood of its trained tokens; the unit
    is a row, and it reports how many rows put more than half their mass on the targets."""

    def compute_loss(self, batch):
        logprobs, selection = self.forward_logprobs(self.model, batch["good"])
        per_row = selection.per_sequence_sum(logprobs)
        rows = torch.tensor(float(selection.batch_size))
        likely = (per_row > 2 * torch.log(torch.tensor(0.5))).float().sum()
        return LossOutput.from_sum(-per_row.sum(), rows, {"likely_rows": likely})


def trainer(max_steps: int, **kwargs) -> L.Trainer:
    return L.Trainer(accelerator="cpu", max_steps=max_steps, logger=False,
                     enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, num_sanity_val_steps=0, **kwargs)


def test_minimal_objective_trains_on_batches_without_top_level_ids(one_torch_thread):
    torch.manual_seed(0)
    module = RowLikelihood("builtin:tiny", learning_rate=5e-3, lr_scheduler="constant",
                           export=False)
    batches = pair_batches()
    before = [float(module.compute_loss(b).loss_sum) for b in batches]
    fit = trainer(12, limit_val_batches=2, val_check_interval=6)
    fit.fit(module, DataLoader(batches, batch_size=None), DataLoader(batches, batch_size=None))
    after = [float(module.compute_loss(b).loss_sum) for b in batches]
    assert sum(after) < sum(before) / 2
    metrics = fit.callback_metrics
    assert {"train/loss_step", "train/likely_rows", "val/loss", "val/likely_rows"} <= set(metrics)
    assert not any(name.endswith("/ppl") for name in metrics)  # no perplexity for this objective
    assert 0.0 <= float(metrics["val/likely_rows"]) <= 1.0  # a share of rows: sum / rows
    assert float(metrics["val/likely_rows"]) == 1.0


class MeanReturner(SFTModule):
    def compute_loss(self, batch):
        output = super().compute_loss(batch)
        return output.loss_sum / output.units  # a bare mean: the step could not normalize it


def test_a_compute_loss_returning_a_mean_is_caught(one_torch_thread):
    module = MeanReturner("builtin:tiny", export=False)
    batches = [b["good"] for b in pair_batches(2)]
    with pytest.raises(AutotrainError, match="returned Tensor; return LossOutput.from_sum"):
        trainer(1).fit(module, DataLoader(batches, batch_size=None))


class TwoUpdatesPerBatch(SFTModule):
    """Lightning manual optimization, as PPO and GRPO use it: two optimizer steps per batch,
    each on one half of the batch's rows."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.automatic_optimization = False

    def training_step(self, batch, batch_idx):
        for half in (slice(0, 2), slice(2, 3)):
            output = self.compute_loss({key: value[half] for key, value in batch.items()})
            self.backward_micro_batch(output)
            self.finish_optimizer_step()


def test_manual_optimization_runs_the_same_step_as_the_client(one_torch_thread):
    batches = [b["good"] for b in pair_batches(2)]
    module = TwoUpdatesPerBatch("builtin:tiny", learning_rate=1e-2, lr_scheduler="constant",
                                optimizer="torch.optim.SGD", export=False)
    module.step_controller.gradient_clip_norm = 0.05
    fit = trainer(4)
    fit.fit(module, DataLoader(batches, batch_size=None))
    assert fit.global_step == 4 and float(fit.callback_metrics["train/skipped_steps"]) == 0

    client = TrainingClient("builtin:tiny", accelerator="cpu")
    sgd = torch.optim.SGD(client.params, lr=1e-2)
    for batch in batches:
        for half in (slice(0, 2), slice(2, 3)):
            client.forward_backward({key: value[half] for key, value in batch.items()})
            assert client.controller.finish(client.params, clip_norm=0.05).grad_norm > 0.05
            sgd.step()
            sgd.zero_grad()
    for (name, ours), (_, theirs) in zip(module.model.named_parameters(),
                                         client.model.named_parameters(), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6, msg=name)


class NoTemplate(ChatMLRenderer):
    """A user's chat format that never wrote its Jinja template."""

    def chat_template(self) -> str:
        return Renderer.chat_template(self)


def test_a_format_without_template_fails_before_training(tmp_path, one_torch_thread):
    data = ChatDataModule("synthetic:arithmetic?n=16", tokenizer="builtin:tiny",
                          chat_format=f"{__name__}.NoTemplate", batch_size=4)
    module = SFTModule("builtin:tiny", export=True)
    fit = trainer(2, default_root_dir=str(tmp_path))
    with pytest.raises(AutotrainError, match="defines no Jinja chat template"):
        fit.fit(module, datamodule=data)
    assert fit.global_step == 0
    assert not (tmp_path / "export").exists()
