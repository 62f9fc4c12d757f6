"""ChatDataModule end to end: synthetic and file sources, every stage, a real Lightning loop."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from autotrain_pl.data import BatchSamplerLoader, ChatDataModule, arithmetic, write_jsonl

TRAIN = "synthetic:arithmetic?n=120&n_valid=16&seed=0"
VALID = "synthetic:arithmetic?n=120&n_valid=16&seed=0&split=valid"


class TinyLM(L.LightningModule):
    """Weighted next-token CE on the batch convention; records what it was fed."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        config = LlamaConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=1,
            vocab_size=vocab_size,
        )
        self.model = LlamaForCausalLM(config)
        self.seen: list[tuple[int, list[int]]] = []
        self.val_batches = 0
        self.predictions: list[list[str]] = []

    def _loss(self, batch):
        inputs = {
            k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "position_ids")
        }
        logits = self.model(**inputs).logits[:, :-1]
        targets, weights = batch["input_ids"][:, 1:], batch["loss_weights"][:, 1:]
        ce = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
        return (ce * weights).sum() / weights.sum()

    def training_step(self, batch, batch_idx):
        self.seen.append((self.current_epoch, batch["input_ids"][:, 0:8].sum(1).tolist()))
        return self._loss(batch)

    def validation_step(self, batch, batch_idx):
        self.val_batches += 1
        return self._loss(batch)

    def predict_step(self, batch, batch_idx):
        self.predictions.append(batch["references"])
        return batch["input_ids"]

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _trainer(**kwargs) -> L.Trainer:
    return L.Trainer(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **kwargs,
    )


def test_synthetic_token_budget_fit_two_epochs(tokenizer):
    dm = ChatDataModule(
        TRAIN,
        valid_path=VALID,
        tokenizer=tokenizer,
        chat_format="chatml",
        max_length=64,
        max_tokens_per_batch=512,
        eval_batch_size=8,
    )
    model = TinyLM(len(dm.tokenizer))
    _trainer(max_epochs=2).fit(model, datamodule=dm)
    assert dm.kind == "sft"
    assert dm.stats["train"].samples == 120 and dm.stats["val"].samples == 16
    assert isinstance(dm.train_dataloader(), BatchSamplerLoader)
    epochs = [[s for e, s in model.seen if e == epoch] for epoch in (0, 1)]
    assert len(epochs[0]) == len(epochs[1]) > 0
    assert epochs[0] != epochs[1]  # set_epoch reached the batch sampler: a new order
    assert sum(len(b) for b in epochs[0]) == 120
    assert model.val_batches > 0


def test_jsonl_with_valid_fraction(tmp_path, tokenizer):
    path = write_jsonl(arithmetic(n=50, seed=4), tmp_path / "train.jsonl")
    dm = ChatDataModule(
        str(path),
        tokenizer=tokenizer,
        chat_format="chatml",
        valid_fraction=0.2,
        batch_size=4,
        max_length=64,
    )
    dm.setup("fit")
    assert (len(dm.train_dataset), len(dm.val_dataset)) == (40, 10)
    train_ids = {tuple(x) for x in dm.train_dataset["input_ids"]}
    assert not train_ids & {tuple(x) for x in dm.val_dataset["input_ids"]}
    batch = next(iter(dm.train_dataloader()))
    assert batch["input_ids"].shape == batch["loss_weights"].shape == batch["attention_mask"].shape
    assert batch["input_ids"].shape[0] == 4
    again = ChatDataModule(
        str(path), tokenizer=tokenizer, chat_format="chatml", valid_fraction=0.2, max_length=64
    )
    again.setup("fit")
    assert again.val_dataset["input_ids"] == dm.val_dataset["input_ids"]  # seeded split


def test_packing_fit_and_predict(tmp_path, tokenizer):
    predict = write_jsonl(
        [{"messages": [{"role": "user", "content": "What is 1 + 2?"}], "reference": "3"}] * 3,
        tmp_path / "predict.jsonl",
    )
    dm = ChatDataModule(
        "synthetic:arithmetic?n=60",
        tokenizer=tokenizer,
        chat_format="chatml",
        packing=True,
        max_length=64,
        batch_size=2,
        predict_path=str(predict),
        eval_batch_size=2,
    )
    model = TinyLM(len(dm.tokenizer))
    _trainer(max_steps=3).fit(model, datamodule=dm)
    batch = next(iter(dm.train_dataloader()))
    assert batch["attention_mask"].dim() == 4 and "position_ids" in batch
    assert len(dm.train_dataset) < 60
    outputs = _trainer().predict(model, datamodule=dm)
    assert sum(len(o) for o in outputs) == 3
    assert model.predictions == [["3", "3"], ["3"]]


def test_preference_module_batches(tokenizer):
    dm = ChatDataModule(
        "synthetic:preference?n=20",
        tokenizer=tokenizer,
        chat_format="chatml",
        batch_size=4,
        group_by_length=True,
        max_length=64,
    )
    assert dm.kind == "preference"
    dm.setup("fit")
    assert set(dm.train_dataset.column_names) >= {"prompt_ids", "chosen_ids", "rejected_ids"}
    batch = next(iter(dm.train_dataloader()))
    assert batch["chosen_input_ids"].shape == batch["rejected_input_ids"].shape
    with pytest.raises(Exception, match="packing=true works for SFT data only"):
        ChatDataModule(
            "synthetic:preference?n=4", tokenizer=tokenizer, chat_format="chatml", packing=True
        ).setup("fit")


@pytest.mark.parametrize("batching", [{"max_tokens_per_batch": 1024},
                                      {"packing": True, "batch_size": 2}], ids=["budget", "packed"])
def test_ddp_ranks_get_disjoint_equal_token_budget_batches(tokenizer, batching):
    from types import SimpleNamespace

    shards = []
    for rank in (0, 1):
        dm = ChatDataModule(
            "synthetic:mixed_chat?n=200",
            tokenizer=tokenizer,
            chat_format="chatml",
            max_length=256,
            **batching,
        )
        dm.trainer = SimpleNamespace(world_size=2, global_rank=rank, lightning_module=None)
        dm.setup("fit")
        loader = dm.train_dataloader()
        shards.append([b["input_ids"].shape for b in loader])
        shards[-1] = (shards[-1], [list(b) for b in loader.sampler])
    (shapes0, batches0), (shapes1, batches1) = shards
    assert len(batches0) == len(batches1) == len(shapes0) == len(shapes1)
    seen0 = {i for b in batches0 for i in b}
    seen1 = {i for b in batches1 for i in b}
    assert not seen0 & seen1 and seen0 | seen1 == set(range(len(dm.train_dataset)))
    assert all(s[0] * s[1] <= 1024 for s in shapes0 + shapes1)
