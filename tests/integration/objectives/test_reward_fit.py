"""Short real fits of the reward objective on builtin models: learning, export, scorer, LoRA,
QLoRA, the CLI config and the refusal of chat data."""

import json
from pathlib import Path

import pytest
import torch
from fit_testing import make_trainer
from transformers import AutoModelForSequenceClassification

from autotrain_pl.cli import run_cli
from autotrain_pl.data import ChatDataModule, synthetic_rows, write_jsonl
from autotrain_pl.data.pair_batches import PairCollator
from autotrain_pl.models import RewardScorer
from autotrain_pl.models.heads import unwrapped
from autotrain_pl.objectives import RewardModule

ROOT = Path(__file__).parents[3]
pytestmark = pytest.mark.usefixtures("one_torch_thread")
TWO_STEPS = ["--trainer.max_steps", "2", "--trainer.max_epochs", "1",
             "--trainer.limit_val_batches", "1", "--trainer.enable_progress_bar", "false"]


def preference_data(tmp_path: Path, n_train: int = 1024, n_valid: int = 128) -> ChatDataModule:
    """Single-digit addition pairs; the held-out pairs are none of the trained ones."""
    train = synthetic_rows(f"synthetic:preference?n={n_train}&digits=1&seed=0")
    seen = {(r["prompt"], r["chosen"], r["rejected"]) for r in train}
    held_out = [r for r in synthetic_rows("synthetic:preference?n=600&digits=1&seed=1")
                if (r["prompt"], r["chosen"], r["rejected"]) not in seen][:n_valid]
    assert len(held_out) == n_valid
    return ChatDataModule(str(write_jsonl(train, tmp_path / "train.jsonl")),
                          valid_path=str(write_jsonl(held_out, tmp_path / "valid.jsonl")),
                          tokenizer="builtin:tiny", chat_format="chatml", batch_size=16,
                          eval_batch_size=64, seed=0)


def module_rewards(module: RewardModule, features: list[dict]) -> torch.Tensor:
    """Chosen then rejected rewards of encoded pairs, as the module scores them in training."""
    batch = PairCollator(module.tokenizer.pad_token_id)(features)
    module.eval()
    with torch.no_grad():
        chosen, rejected = module.forward_rewards(module.model, batch)
    module.train()
    return torch.cat([chosen, rejected])


def hf_rewards(model, features: list[dict]) -> torch.Tensor:
    """The same rewards from a plain ``transformers`` classifier on right-padded sequences."""
    sequences = [f["prompt_ids"] + f[f"{side}_ids"] for side in ("chosen", "rejected")
                 for f in features]
    width = max(len(s) for s in sequences)
    ids = torch.tensor([s + [0] * (width - len(s)) for s in sequences])
    mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in sequences])
    model.eval()
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask).logits[:, 0]


def conversations(rows: list[dict], side: str) -> list[list[dict]]:
    return [[{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": r[side]}]
            for r in rows]


def test_fit_raises_held_out_accuracy_and_the_export_scores_alike(tmp_path):
    torch.manual_seed(0)
    data = preference_data(tmp_path)
    module = RewardModule("builtin:tiny", learning_rate=5e-4, lr_scheduler="constant")
    trainer = make_trainer(tmp_path, max_steps=300, gradient_clip_val=1.0)
    before = trainer.validate(module, datamodule=data, verbose=False)[0]["val/accuracy"]
    trainer.fit(module, datamodule=data)
    after = trainer.validate(module, datamodule=data, verbose=False)[0]["val/accuracy"]
    assert after >= 0.65 and after >= before + 0.15, (before, after)

    # The export is a plain sequence classifier that scores as the module does.
    export = tmp_path / "export"
    assert json.loads((export / "autotrain.json").read_text())["head"] == "reward"
    exported = AutoModelForSequenceClassification.from_pretrained(export)
    features = [data.val_dataset[i] for i in range(32)]
    expected = module_rewards(module, features)
    torch.testing.assert_close(hf_rewards(exported, features), expected, rtol=0, atol=1e-5)

    # RewardScorer renders conversations as training did and ranks chosen above rejected.
    held_out = [json.loads(line) for line in (tmp_path / "valid.jsonl").read_text().splitlines()]
    scorer = RewardScorer.load(str(tmp_path))  # a run directory resolves to its export
    chosen = scorer.score(conversations(held_out, "chosen"), batch_size=50)
    rejected = scorer.score(conversations(held_out, "rejected"), batch_size=50)
    pairs = len(expected) // 2
    torch.testing.assert_close(torch.tensor(chosen[:pairs] + rejected[:pairs]), expected,
                               rtol=0, atol=1e-5)
    ranked = sum(c > r for c, r in zip(chosen, rejected, strict=True)) / len(held_out)
    assert ranked == pytest.approx(after, abs=1e-6)
    from_module = RewardScorer.from_module(module).score(conversations(held_out[:4], "chosen"))
    torch.testing.assert_close(torch.tensor(from_module), torch.tensor(chosen[:4]), rtol=0,
                               atol=1e-5)


@pytest.mark.parametrize("quantization", [None, {"bits": 4}], ids=["lora", "qlora-4bit"])
def test_lora_trains_the_score_head_and_exports_merged(quantization, tmp_path):
    torch.manual_seed(0)
    module = RewardModule("builtin:tiny", lora={"r": 4, "alpha": 8, "dropout": 0.0},
                          quantization=quantization, learning_rate=1e-2, lr_scheduler="constant")
    score = unwrapped(module.model).score  # peft's copy of the head trains, the original not
    trained, original = score.modules_to_save["default"].weight, score.original_module.weight
    start = trained.detach().clone()
    assert trained.requires_grad and not original.requires_grad
    frozen = [n for n, p in module.model.named_parameters()
              if p.requires_grad and "lora_" not in n and "modules_to_save" not in n]
    assert frozen == []
    data = ChatDataModule("synthetic:preference?n=24&seed=0", tokenizer="builtin:tiny",
                          chat_format="chatml", batch_size=8, seed=0)
    make_trainer(tmp_path, max_steps=3).fit(module, datamodule=data)
    assert not torch.equal(trained.detach(), start)
    assert not torch.equal(original, trained.detach())

    exported = AutoModelForSequenceClassification.from_pretrained(tmp_path / "export")
    torch.testing.assert_close(exported.score.weight, trained.detach())
    if quantization is None:  # a 4-bit base merges into full precision: close, not equal
        features = [data.train_dataset[i] for i in range(8)]
        torch.testing.assert_close(hf_rewards(exported, features),
                                   module_rewards(module, features), rtol=0, atol=1e-5)


def test_reward_config_runs_from_the_cli(tmp_path):
    code = run_cli(["fit", "--config", str(ROOT / "configs" / "reward.yaml"), *TWO_STEPS,
                    "--model.init_args.model_name_or_path", "builtin:tiny",
                    "--data.init_args.data_path", "synthetic:preference?n=64&digits=1",
                    "--trainer.default_root_dir", str(tmp_path)])
    assert code == 0
    config = json.loads((tmp_path / "export" / "config.json").read_text())
    assert config["architectures"] == ["LlamaForSequenceClassification"]
    assert config["num_labels"] == 1 if "num_labels" in config else len(config["id2label"]) == 1


def test_chat_data_is_refused_before_the_model_loads(tmp_path, monkeypatch, capsys):
    import autotrain_pl.objectives.base as base

    def no_model_load(*args, **kwargs):
        raise AssertionError("a model was loaded before the data was checked")

    monkeypatch.setattr(base, "load_model", no_model_load)
    code = run_cli(["fit", "--config", str(ROOT / "configs" / "reward.yaml"), *TWO_STEPS,
                    "--model.init_args.model_name_or_path", "builtin:tiny",
                    "--data.init_args.data_path", "synthetic:arithmetic?n=16",
                    "--data.init_args.valid_path", "null",
                    "--trainer.default_root_dir", str(tmp_path)])
    errors = [line for line in capsys.readouterr().err.splitlines() if "aitrain: error" in line]
    assert code == 2
    assert len(errors) == 1 and "RewardModule does not train on" in errors[0], errors
