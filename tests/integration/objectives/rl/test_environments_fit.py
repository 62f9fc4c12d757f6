"""The reward-model environment trains end to end: GRPO raises the reward model's score."""

import csv
from pathlib import Path

import pytest
import torch
from fit_testing import make_trainer
from lightning.pytorch.loggers import CSVLogger

from autotrain_pl.data import ChatDataModule
from autotrain_pl.models import load_model, load_tokenizer
from autotrain_pl.objectives import GRPOModule

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def logged(root: Path, name: str) -> list[float]:
    rows = list(csv.DictReader(open(next(root.glob("**/metrics.csv")))))
    return [float(r[name]) for r in rows if r.get(name)]


def test_grpo_raises_the_score_of_a_reward_model(tmp_path):
    torch.manual_seed(0)
    reward_model = tmp_path / "reward_model"
    load_model("builtin:tiny", head="reward").save_pretrained(reward_model)
    load_tokenizer("builtin:tiny").save_pretrained(reward_model)
    data = ChatDataModule("synthetic:rl_prompts?n=256&seed=0", tokenizer="builtin:tiny",
                          chat_format="chatml", batch_size=8, seed=0)
    module = GRPOModule("builtin:tiny", num_generations=8, max_new_tokens=6,
                        rl_env_type="reward_model", rl_reward_model_path=str(reward_model),
                        learning_rate=3e-3, lr_scheduler="constant")
    root = tmp_path / "run"
    trainer = make_trainer(root, max_steps=30, logger=CSVLogger(root), log_every_n_steps=1)
    trainer.fit(module, datamodule=data)
    rewards = logged(root, "train/reward")
    assert len(rewards) == 30
    first, last = sum(rewards[:5]) / 5, sum(rewards[-5:]) / 5
    assert last > first + 0.05, (first, last)

