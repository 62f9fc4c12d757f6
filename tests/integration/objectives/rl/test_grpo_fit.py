"""GRPO end to end on a builtin Llama: the reward rises, the export loads, bad options fail early."""

import csv
from pathlib import Path

import pytest
import torch
from fit_testing import make_trainer
from lightning.pytorch.loggers import CSVLogger

from autotrain_pl.cli import run_cli
from autotrain_pl.data import ChatDataModule
from autotrain_pl.errors import AutotrainError
from autotrain_pl.objectives import GRPOModule
from autotrain_pl.rl import REWARD_FUNCTIONS

ROOT = Path(__file__).parents[4]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@REWARD_FUNCTIONS.register("test_share_of_sevens")
def share_of_sevens(reply: str, reference, **context) -> float:
    """A reward a random model already earns sometimes, so groups differ from step 1."""
    return reply.count("7") / max(len(reply), 1)


@REWARD_FUNCTIONS.register("test_reply_characters")
def reply_characters(reply: str, reference, **context) -> float:
    """Differs between almost any two samples: every group has something to learn."""
    return float(len(reply))


def train_rewards(root: Path) -> list[float]:
    rows = list(csv.DictReader(open(next(root.glob("**/metrics.csv")))))
    return [float(r["train/reward"]) for r in rows if r.get("train/reward")]


def test_grpo_raises_the_reward_it_is_trained_on(tmp_path):
    torch.manual_seed(0)
    data = ChatDataModule("synthetic:arithmetic?n=256&seed=0", tokenizer="builtin:tiny",
                          chat_format="chatml", batch_size=8, seed=0)
    module = GRPOModule("builtin:tiny", num_generations=8, max_new_tokens=6,
                        rl_reward_fn="test_share_of_sevens", learning_rate=3e-3,
                        lr_scheduler="constant")
    trainer = make_trainer(tmp_path, max_steps=30, logger=CSVLogger(tmp_path), log_every_n_steps=1)
    trainer.fit(module, datamodule=data)
    rewards = train_rewards(tmp_path)
    assert len(rewards) == 30
    first, last = sum(rewards[:5]) / 5, sum(rewards[-5:]) / 5
    assert last > first + 0.1, (first, last)
    assert (tmp_path / "export" / "model.safetensors").exists()


@pytest.mark.parametrize(("options", "field"), [
    ({"num_generations": 1}, "num_generations"),
    ({"rl_env_type": "arithmetc"}, "rl_env_type"),
    ({"rl_reward_fn": "corectness"}, "rl_reward_fn"),
    ({"loss_type": "dapoo"}, "loss_type"),
    ({"max_grad_norm": -1.0}, "max_grad_norm"),
])
def test_bad_options_fail_before_the_model_loads(options, field, monkeypatch):
    import autotrain_pl.objectives.base as base

    monkeypatch.setattr(base, "load_model", lambda *a, **k: pytest.fail("model loaded"))
    with pytest.raises(AutotrainError, match=field):
        GRPOModule("builtin:tiny", **options)


def test_mini_batch_larger_than_the_rollout_batch_is_refused(tmp_path, capsys):
    code = run_cli(["fit", "--config", str(ROOT / "configs" / "grpo.yaml"),
                    "--model.init_args.model_name_or_path", "builtin:tiny",
                    "--model.init_args.rl_mini_batch_size", "1000",
                    "--trainer.max_steps", "1", "--trainer.enable_progress_bar", "false",
                    "--trainer.default_root_dir", str(tmp_path)])
    errors = [line for line in capsys.readouterr().err.splitlines() if "aitrain: error" in line]
    assert code == 2 and len(errors) == 1 and "rl_mini_batch_size" in errors[0], errors


def test_updates_are_clipped_to_max_grad_norm(tmp_path):
    """Manual optimization skips Lightning's clipping; the step code clips at max_grad_norm."""
    torch.manual_seed(0)
    data = ChatDataModule("synthetic:arithmetic?n=64&seed=0", tokenizer="builtin:tiny",
                          chat_format="chatml", batch_size=4, seed=0)
    norms = {}
    for clip in (None, 1e-3):
        module = GRPOModule("builtin:tiny", num_generations=4, max_new_tokens=6,
                            rl_reward_fn="test_reply_characters", max_grad_norm=clip,
                            lr_scheduler="constant", export=False)
        start = [p.detach().clone() for p in module.model.parameters()]
        module.configure_optimizers = lambda m=module: torch.optim.SGD(m.model.parameters(), lr=1.0)
        torch.manual_seed(0)
        make_trainer(tmp_path, max_steps=1).fit(module, datamodule=data)
        moved = torch.cat([(p.detach() - s).flatten()
                           for p, s in zip(module.model.parameters(), start, strict=True)])
        norms[clip] = float(moved.norm())
    assert norms[1e-3] <= 1e-3 * 1.01 < norms[None]


def test_several_iterations_over_mini_batches_step_once_per_mini_batch_pass(tmp_path):
    data = ChatDataModule("synthetic:arithmetic?n=64&seed=0", tokenizer="builtin:tiny",
                          chat_format="chatml", batch_size=4, seed=0)
    module = GRPOModule("builtin:tiny", num_generations=4, max_new_tokens=6, num_iterations=2,
                        rl_mini_batch_size=6, rl_reward_fn="test_reply_characters", export=False)
    trainer = make_trainer(tmp_path, max_steps=4)
    trainer.fit(module, datamodule=data)
    assert trainer.global_step == 4  # 2 batches of rollouts x 2 iterations
