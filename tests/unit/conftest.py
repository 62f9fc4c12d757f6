"""Unit-test doubles: a fake objective and data module, and a scripted ``generate_and_score``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from torch.utils.data import DataLoader, TensorDataset

import autotrain_pl.models
from autotrain_pl.callbacks import periodic_eval
from autotrain_pl.evaluation.generation import GenerationScores


class FakeObjective(LightningModule):
    """Has what the callbacks read of an objective (``training.PolicyHolder``)."""

    model_name_or_path = "fake"

    def __init__(self) -> None:
        super().__init__()
        self.model = torch.nn.Linear(2, 1)
        self.tokenizer = object()
        self.renderer = object()

    def export(self, out_dir) -> Path:
        """As objectives do, through ``models.export_model`` (tests that export replace it)."""
        return autotrain_pl.models.export_model(self.model, self.tokenizer, out_dir)

    def training_step(self, batch, batch_idx):
        loss = self.model(batch[0]).pow(2).mean()
        self.log("train/loss", loss, on_step=True, on_epoch=False)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val/loss", self.model(batch[0]).pow(2).mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


class FakeData(LightningDataModule):
    def __init__(self, n_train: int = 40, n_eval: int = 10) -> None:
        super().__init__()
        self.n_train, self.n_eval = n_train, n_eval

    def train_dataloader(self):
        return DataLoader(TensorDataset(torch.randn(self.n_train, 2)), batch_size=4)

    def val_dataloader(self):
        return DataLoader(TensorDataset(torch.randn(8, 2)), batch_size=4)

    def eval_conversations(self, stage: str = "validate") -> list[int]:
        return list(range(self.n_eval))


class ScriptedScores:
    """Stands in for ``generate_and_score``: returns the next scripted value per call."""

    def __init__(self, values: list[float]) -> None:
        self.values: Iterator[float] = iter(values)
        self.calls: list[int] = []  # number of conversations of each call

    def __call__(self, model, tokenizer, renderer, conversations, metric_names, **kwargs):
        self.calls.append(len(conversations))
        value = next(self.values)
        records = [{"prompt": [{"role": "user", "content": "What is 1 + 1?"}],
                    "prediction": "2", "reference": "2"}]
        return GenerationScores({name: value for name in metric_names}, records)


@pytest.fixture
def scripted(monkeypatch):
    def install(values: list[float]) -> ScriptedScores:
        fake = ScriptedScores(values)
        monkeypatch.setattr(periodic_eval, "generate_and_score", fake)
        return fake

    return install


def _make_trainer(root, callbacks, **kwargs) -> Trainer:
    options = dict(default_root_dir=root, max_steps=6, log_every_n_steps=1, logger=False,
                   enable_progress_bar=False, enable_model_summary=False,
                   enable_checkpointing=False, accelerator="cpu", num_sanity_val_steps=0)
    options.update(kwargs)
    return Trainer(callbacks=callbacks, **options)


@pytest.fixture
def fakes():
    """``fakes.objective()``, ``fakes.data(...)``, ``fakes.trainer(root, callbacks, **kw)``."""

    class Fakes:
        objective = FakeObjective
        data = FakeData
        trainer = staticmethod(_make_trainer)

    return Fakes
