"""Short real fits of the SFT objective on builtin models: learning, LoRA/QLoRA, export, resume."""

from pathlib import Path

import lightning as L
import pytest
import torch
from fit_testing import make_trainer

from autotrain_pl.data import ChatDataModule
from autotrain_pl.models import load_model, load_tokenizer
from autotrain_pl.objectives import SFTModule
from autotrain_pl.rendering import Message, get_renderer


def arithmetic_data(n: int = 64, batch_size: int = 16) -> ChatDataModule:
    return ChatDataModule(f"synthetic:arithmetic?n={n}&seed=0", tokenizer="builtin:tiny",
                          chat_format="chatml", batch_size=batch_size, seed=0)


def eval_loss(module: SFTModule, datamodule: ChatDataModule) -> float:
    loader = datamodule.train_dataloader()
    total, units = 0.0, 0.0
    module.eval()
    with torch.no_grad():
        for batch in loader:
            output = module.compute_loss(batch)
            total += float(output.loss_sum)
            units += float(output.units)
    module.train()
    return total / units


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"lora": {"r": 8, "alpha": 16, "dropout": 0.0}},
        {"lora": {"r": 8, "alpha": 16, "dropout": 0.0}, "quantization": {"bits": 4}},
    ],
    ids=["full", "lora", "qlora-4bit"],
)
def test_fit_lowers_loss(options, tmp_path):
    torch.manual_seed(0)
    datamodule = arithmetic_data()
    datamodule.setup("fit")
    module = SFTModule("builtin:tiny", learning_rate=3e-3, lr_scheduler="constant", export=False,
                       **options)
    module.attach_tokenizer(datamodule.tokenizer, datamodule.renderer)
    before = eval_loss(module, datamodule)
    make_trainer(tmp_path, max_steps=12).fit(module, datamodule=datamodule)
    after = eval_loss(module, datamodule)
    assert after < before - 0.3, (before, after)


@pytest.mark.parametrize("export_mode", ["merged", "adapter", "full"])
def test_export_reload_gives_identical_logits(export_mode, tmp_path):
    torch.manual_seed(0)
    lora = None if export_mode == "full" else {"r": 4, "alpha": 8, "dropout": 0.0}
    module = SFTModule("builtin:tiny", learning_rate=1e-2, lora=lora, export_mode=export_mode)
    make_trainer(tmp_path, max_steps=3).fit(module, datamodule=arithmetic_data(32, 8))
    export = tmp_path / "export"
    assert (export / "autotrain.json").exists()
    reloaded = load_model(str(tmp_path))  # a run directory resolves to its export
    tokenizer = load_tokenizer(str(export))
    assert tokenizer.chat_template  # the renderer's template travels with the tokenizer
    ids = torch.randint(5, 4000, (2, 12))
    module.model.eval()
    reloaded.eval()
    with torch.no_grad():
        expected = module.model(input_ids=ids).logits
        actual = reloaded(input_ids=ids).logits
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4)


class StopAfter(L.Callback):
    """Interrupts a run after ``steps`` optimizer steps, as a crash or a kill would."""

    def __init__(self, steps: int) -> None:
        self.steps = steps

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step >= self.steps:
            trainer.should_stop = True


def test_resume_from_last_checkpoint_matches_uninterrupted_run(tmp_path):
    """Mid-epoch resume replays neither data nor schedule: same weights as one straight run."""

    def run(root: Path, stop_after: int | None = None, ckpt_path: str | None = None):
        L.seed_everything(0)
        module = SFTModule("builtin:tiny", learning_rate=3e-3, warmup_steps=2, export=False)
        callbacks = [L.pytorch.callbacks.ModelCheckpoint(dirpath=root / "checkpoints",
                                                         save_last=True)]
        if stop_after:
            callbacks.append(StopAfter(stop_after))
        trainer = make_trainer(root, 6, enable_checkpointing=True, callbacks=callbacks)
        trainer.fit(module, datamodule=arithmetic_data(64, 8), ckpt_path=ckpt_path)
        return module, trainer

    straight, _ = run(tmp_path / "a")
    _, interrupted = run(tmp_path / "b", stop_after=3)
    assert interrupted.global_step == 3
    resumed, _ = run(tmp_path / "b", ckpt_path="last")
    for (name, p), (_, q) in zip(straight.model.named_parameters(), resumed.model.named_parameters(), strict=True):
        torch.testing.assert_close(q, p, rtol=0, atol=1e-6, msg=name)


def test_trained_assistant_turn_learns_to_stop(tmp_path):
    """After training, greedy generation ends with the format's end-of-turn token by itself."""
    torch.manual_seed(0)
    datamodule = ChatDataModule("synthetic:arithmetic?n=256&seed=1", tokenizer="builtin:tiny",
                                chat_format="chatml", batch_size=32, seed=0)
    module = SFTModule("builtin:tiny", learning_rate=5e-3, lr_scheduler="constant", export=False)
    make_trainer(tmp_path, max_steps=60).fit(module, datamodule=datamodule)
    tokenizer = datamodule.tokenizer
    renderer = get_renderer("chatml", tokenizer)
    end_of_turn = renderer.stop_token_ids()
    stopped = 0
    module.model.eval()
    for a, b in [(12, 34), (50, 7), (81, 19), (3, 66)]:
        prompt = renderer.build_generation_prompt([Message("user", f"What is {a} + {b}?")])
        out = module.model.generate(torch.tensor([prompt]), max_new_tokens=12, do_sample=False,
                                    eos_token_id=end_of_turn, pad_token_id=tokenizer.pad_token_id)
        stopped += int(out[0, -1]) in end_of_turn
    assert stopped == 4
