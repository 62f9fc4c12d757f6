"""Short real DPO fits on builtin models: learning, the three kinds of reference, bad rows."""

import json

import pytest
import torch
from fit_testing import make_trainer

from autotrain_pl.data import ChatDataModule
from autotrain_pl.errors import AutotrainError
from autotrain_pl.models import LoraOptions
from autotrain_pl.objectives import DPOModule


def pairs(n: int = 64, split: str = "train", batch_size: int = 16, **kwargs) -> ChatDataModule:
    ref = f"synthetic:preference?n={n}&n_valid=32&seed=0&split={split}"
    valid = "synthetic:preference?n=64&n_valid=32&seed=0&split=valid"
    return ChatDataModule(ref, valid_path=valid, tokenizer="builtin:tiny", chat_format="chatml",
                          batch_size=batch_size, max_length=64, seed=0, **kwargs)


def val_metrics(module: DPOModule, datamodule: ChatDataModule,
                split: str = "val") -> dict[str, float]:
    """Means per pair over the validation (or training) pairs."""
    datamodule.use_encoding(module.example_encoding())
    loader = datamodule.val_dataloader() if split == "val" else datamodule.train_dataloader()
    module.eval()
    totals: dict[str, float] = {}
    units = 0.0
    with torch.no_grad():
        for batch in loader:
            output = module.compute_loss(batch)
            units += float(output.units)
            for name, value in {"loss": output.loss_sum, **output.metric_sums}.items():
                totals[name] = totals.get(name, 0.0) + float(value)
    module.train()
    return {name: value / units for name, value in totals.items()}


def test_dpo_learns_to_prefer_held_out_correct_answers(tmp_path):
    torch.manual_seed(0)
    module = DPOModule("builtin:tiny", learning_rate=3e-3, export=False)
    data = pairs(n=256)
    trainer = make_trainer(tmp_path, max_steps=24)
    trainer.fit(module, datamodule=data)
    held_out = val_metrics(module, data)
    assert held_out["loss"] < 0.69  # log 2 = 0.693: the loss of a policy equal to its reference
    assert held_out["rewards/margins"] > 0
    trained = val_metrics(module, data, "train")
    assert trained["rewards/accuracies"] > 0.55


def test_precomputed_reference_is_cached_and_a_second_run_never_loads_it(tmp_path):
    cache = tmp_path / "ref_cache"
    first = DPOModule("builtin:tiny", precompute_ref_log_probs=True, ref_cache_dir=str(cache),
                      export=False)
    make_trainer(tmp_path / "a", max_steps=2, limit_val_batches=1).fit(first, datamodule=pairs())
    assert first.reference.frozen.forward_calls > 0
    assert len(list(cache.glob("ref-logps-*"))) == 2  # training and validation pairs
    assert all(c.complete for c in first.reference.caches.values())

    second = DPOModule("builtin:tiny", precompute_ref_log_probs=True, ref_cache_dir=str(cache),
                       export=False)
    make_trainer(tmp_path / "b", max_steps=2, limit_val_batches=1).fit(second, datamodule=pairs())
    assert second.reference.frozen.forward_calls == 0
    assert not second.reference.frozen.loaded

    live = DPOModule("builtin:tiny", export=False)
    data = pairs()
    data.use_encoding(live.example_encoding())
    data.setup("fit")
    batch = next(iter(data.val_dataloader()))
    cached = second.reference(batch, second.pair_scores, torch.device("cpu"))
    computed = live.reference(batch, live.pair_scores, torch.device("cpu"))
    for a, b in zip(cached, computed, strict=True):
        torch.testing.assert_close(a, b)


def test_lora_reference_is_the_adapter_disabled_policy(tmp_path):
    module = DPOModule("builtin:tiny", lora=LoraOptions(r=4, alpha=8), learning_rate=1e-2,
                       export=False)
    assert module.reference.frozen.shares_policy
    data = pairs()
    trainer = make_trainer(tmp_path, max_steps=4)
    trainer.fit(module, datamodule=data)
    # The reference is the base: with the adapter off the policy scores what a fresh copy does.
    fresh = DPOModule("builtin:tiny", export=False)
    batch = next(iter(data.val_dataloader()))
    reference = module.reference(batch, module.pair_scores, torch.device("cpu"))
    expected = fresh.reference(batch, fresh.pair_scores, torch.device("cpu"))
    for a, b in zip(reference, expected, strict=True):
        torch.testing.assert_close(a, b)
    assert val_metrics(module, data)["rewards/margins"] != 0  # and the adapter did train


@pytest.mark.parametrize("loss_type", ["simpo", "orpo", "cpo"])
def test_reference_free_types_load_no_reference_and_fit_their_pairs(tmp_path, loss_type):
    beta = 2.0 if loss_type == "simpo" else 0.1  # SimPO's rewards are length averages
    module = DPOModule("builtin:tiny", loss_type=loss_type, beta=beta, learning_rate=3e-3,
                       export=False)
    assert module.reference is None
    data = pairs()
    before = val_metrics(module, data, "train")
    make_trainer(tmp_path, max_steps=6).fit(module, datamodule=data)
    after = val_metrics(module, data, "train")
    assert after["loss"] < before["loss"]


def test_bad_rows_are_dropped_with_their_lines_or_refused(tmp_path, caplog):
    rows = [
        {"prompt": "What is 2 + 2?", "chosen": "4", "rejected": "5"},
        {"prompt": "What is 3 + 3?", "chosen": "", "rejected": "7"},
        {"prompt": "What is 4 + 4?", "chosen": "8", "rejected": "8"},
        {"prompt": "What is 5 + 5? " + "very long " * 40, "chosen": "10", "rejected": "11"},
        {"prompt": "What is 6 + 6?", "chosen": "12", "rejected": "13"},
    ]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = ChatDataModule(str(path), tokenizer="builtin:tiny", chat_format="chatml",
                          max_length=48)
    with caplog.at_level("WARNING"):
        data.setup("fit")
    assert len(data.train_dataset) == 2
    stats = data.stats["train"]
    assert (stats.dropped_empty_chosen, stats.dropped_identical_pair,
            stats.dropped_prompt_too_long) == (1, 1, 1)
    warning = " ".join(r.getMessage() for r in caplog.records)
    for line in ("line 2", "line 3", "line 4"):
        assert f"{path} {line}" in warning

    strict = ChatDataModule(str(path), tokenizer="builtin:tiny", chat_format="chatml",
                            max_length=48, bad_rows="error")
    with pytest.raises(AutotrainError, match=rf"{path} line 2: the chosen reply is empty"):
        strict.setup("fit")


def test_hh_rlhf_conversations_share_their_prompt_by_messages(tmp_path):
    chosen = "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: 2+2?\n\nAssistant: 4"
    rejected = "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: 2+2?\n\nAssistant: 5"
    path = tmp_path / "hh.jsonl"
    path.write_text(json.dumps({"chosen": chosen, "rejected": rejected}) + "\n")
    data = ChatDataModule(str(path), tokenizer="builtin:tiny", chat_format="chatml")
    data.setup("fit")
    row = data.train_dataset[0]
    prompt = data.tokenizer.decode(row["prompt_ids"])
    assert "Hello!" in prompt and "2+2?" in prompt
    assert data.tokenizer.decode(row["chosen_ids"]).startswith("4")
    assert data.tokenizer.decode(row["rejected_ids"]).startswith("5")


def test_kto_fits_unpaired_feedback_with_a_cached_reference(tmp_path):
    from autotrain_pl.objectives import KTOModule

    data = ChatDataModule("synthetic:unpaired_preference?n=64&seed=0", tokenizer="builtin:tiny",
                          chat_format="chatml", batch_size=16, seed=0)
    module = KTOModule("builtin:tiny", learning_rate=3e-3, precompute_ref_log_probs=True,
                       ref_cache_dir=str(tmp_path / "cache"), export=False)
    before = val_metrics(module, data, "train")
    make_trainer(tmp_path, max_steps=8).fit(module, datamodule=data)
    after = val_metrics(module, data, "train")
    assert after["loss"] < before["loss"]
    assert all(c.complete for c in module.reference.caches.values())
    means = module.derived_metrics(after)
    assert means["rewards/chosen"] > means["rewards/rejected"]


@pytest.mark.parametrize(("module_name", "data_ref", "expected"), [
    ("SFTModule", "synthetic:preference?n=8", "holds preference pairs"),
    ("DPOModule", "synthetic:arithmetic?n=8", "does not hold preference pairs"),
    ("KTOModule", "synthetic:preference?n=8", "does not hold unpaired feedback"),
])
def test_data_of_another_kind_is_refused_in_one_line(tmp_path, module_name, data_ref, expected):
    import autotrain_pl.objectives as objectives

    module = getattr(objectives, module_name)("builtin:tiny", export=False)
    data = ChatDataModule(data_ref, tokenizer="builtin:tiny", chat_format="chatml")
    with pytest.raises(AutotrainError, match=expected):
        make_trainer(tmp_path, max_steps=1).fit(module, datamodule=data)
